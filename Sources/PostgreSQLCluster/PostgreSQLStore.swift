import Dispatch
import KeyService
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The term of the lease this node holds (set by `Lease`), which every write's fence checks in the database.
final class LeaseHold: Sendable {
    struct Term: Sendable, Equatable {
        var identity: String
        var epoch: Int64
    }
    private let term = Mutex<Term?>(nil)
    var current: Term? { term.withLock { $0 } }
    func set(_ value: Term?) { term.withLock { $0 = value } }
}

/// The cluster's storage on PostgreSQL (issue 17): Vault's table layout (`parent_path`, `path`, `key`, `value`; a
/// path `a/b/c` is path `/a/b/`, parent_path `/a/`, key `c`), holding only what the barrier sealed.
///
/// Every write is fenced inside its own statement or transaction: the lease row is read `FOR SHARE` and must name this
/// node's identity and epoch and be unexpired by the database's clock (`clock_timestamp()`), or nothing is written
/// (`StandbyWriteRefused`). A node taking the lease updates that row, so it waits for such a write to commit or
/// abort: a deposed active node cannot commit after another node's term began. The one exception is a node's own
/// member entry (`core/cluster/members/<node_id>`), which a standby writes when it joins.
///
/// Single writes run at the same time on pooled connections, so that PostgreSQL commits them together (group commit);
/// a transaction runs alone (`WriteGate`), as on SQLite's one writer; reads use the pool. Each connection
/// runs with `synchronous_commit = on`: a write that returned is committed. The calls block their thread on the
/// database, on an event loop of their own (never the HTTP server's).
final class PostgreSQLStore: StorageBackend, ClusterStore, @unchecked Sendable {
    let target: PostgreSQLTarget
    let settings: PostgreSQLSettings
    let cluster: ClusterSettings
    let hold = LeaseHold()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let idle = Mutex<[PostgresConnection]>([])
    private let slots: DispatchSemaphore
    private let writer = WriteGate()
    private let nextID = Atomic<Int>(1)
    let logger: Logger
    var table: String { settings.table }
    var haTable: String { settings.haTable }

    init(cluster: ClusterSettings) throws(PostgreSQLError) {
        self.cluster = cluster
        settings = cluster.postgresql
        target = try PostgreSQLTarget(url: settings.connectionURL)
        slots = DispatchSemaphore(value: settings.maxConnections)
        var logger = Logger(label: "vhsmd.postgresql")
        logger.logLevel = .critical
        self.logger = logger
    }

    var storage: any StorageBackend { self }

    /// A store dropped without `close()` (vhsmd refused to start after opening it) closes its connections here.
    deinit {
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else { return }
        for connection in idle.withLock({ $0 }) { try? connection.close().wait() }
        try? group.syncShutdownGracefully()
    }

    func lease(events: any HAEvents, mayCompete: @escaping @Sendable () -> Bool) -> any ClusterLease {
        Lease(store: self, events: events, mayCompete: mayCompete)
    }

    func close() async {
        let connections = idle.withLock { idle in
            defer { idle.removeAll() }
            return idle
        }
        for connection in connections { try? await connection.close() }
    }

    // MARK: - Connections

    /// A new connection named `application` (pg_stat_activity shows it), with this node's session settings.
    func connect(application: String, statementTimeout: Duration) -> EventLoopFuture<PostgresConnection> {
        let loop = group.next()
        do {
            return PostgresConnection.connect(
                on: loop,
                configuration: try target.configuration(
                    applicationName: application, statementTimeout: statementTimeout),
                id: nextID.add(1, ordering: .relaxed).newValue, logger: logger)
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    /// Runs `body` on a pooled data connection (at most `max_connections` at once; the caller waits for one).
    /// The same, with the database's failures (connect, statement) as `StorageUnavailable` (503 to clients).
    func withConnection<T>(_ operation: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        do { return try pooled(operation, body) } catch let error as PostgreSQLError {
            throw StorageUnavailable("\(error)")
        }
    }

    private func pooled<T>(_ operation: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        slots.wait()
        defer { slots.signal() }
        var connection = idle.withLock { $0.popLast() }
        if connection?.isClosed ?? true {
            do {
                connection = try connect(application: "vhsmd-data-\(cluster.nodeID)", statementTimeout: .seconds(10))
                    .wait()
            } catch {
                throw PostgreSQLError.connect(database: target.name, cause: PostgreSQLError.cause(error))
            }
        }
        guard let connection else { throw PostgreSQLError.connect(database: target.name, cause: "no connection") }
        defer { if !connection.isClosed { idle.withLock { $0.append(connection) } } }
        return try body(connection)
    }

    /// Runs `query` on `connection` and waits for all its rows.
    func run(
        _ query: PostgresQuery, on connection: PostgresConnection, _ operation: String
    ) throws
        -> PostgresQueryResult
    {
        do { return try connection.query(query, logger: logger).wait() } catch {
            throw PostgreSQLError.query(
                database: target.name, operation: operation, cause: PostgreSQLError.cause(error))
        }
    }

    func run(_ query: PostgresQuery, _ operation: String) throws -> PostgresQueryResult {
        try withConnection(operation) { connection in try run(query, on: connection, operation) }
    }

    // MARK: - Paths

    /// Vault's split of a storage path: `a/b/c` → (parent_path `/a/`, path `/a/b/`, key `c`).
    static func split(_ full: String) -> (parent: String, path: String, key: String) {
        let pieces = full.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let key = pieces.last ?? ""
        switch pieces.count {
        case 0, 1: return ("", "/", key)
        case 2: return ("/", "/" + pieces[0] + "/", key)
        default:
            return (
                "/" + pieces.dropLast(2).joined(separator: "/") + "/",
                "/" + pieces.dropLast().joined(separator: "/")
                    + "/", key
            )
        }
    }

    // MARK: - StorageBackend

    func get(_ full: String) throws -> [UInt8]? {
        try withConnection("read") { connection in try Self.get(full, on: connection, store: self) }
    }

    func put(_ full: String, _ value: [UInt8]) throws {
        if full.hasPrefix(ClusterMembers.prefix) {
            // A member entry: written by its own node, active or standby (see the type's documentation).
            let (parent, path, key) = Self.split(full)
            _ = try run(
                """
                INSERT INTO \(unescaped: table) (parent_path, path, key, value) VALUES (\(parent), \(path), \(key), \
                \(ByteBuffer(bytes: value))) ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value
                """, "write the member entry \(full)")
            return
        }
        try fencedWrite("write \(full)") { connection, term in
            let (parent, path, key) = Self.split(full)
            return try self.run(
                """
                WITH fence AS (\(unescaped: fenceSQL(term)) FOR SHARE), \
                written AS (INSERT INTO \(unescaped: table) (parent_path, path, key, value) \
                SELECT \(parent), \(path), \(key), \(ByteBuffer(bytes: value)) FROM fence \
                ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value RETURNING 1) \
                SELECT count(*)::bigint FROM fence
                """, on: connection, "write \(full)")
        }
    }

    func delete(_ full: String) throws {
        try fencedWrite("delete \(full)") { connection, term in
            let (_, path, key) = Self.split(full)
            return try self.run(
                """
                WITH fence AS (\(unescaped: fenceSQL(term)) FOR SHARE), \
                gone AS (DELETE FROM \(unescaped: table) WHERE path = \(path) AND key = \(key) \
                AND EXISTS (SELECT 1 FROM fence) RETURNING 1) \
                SELECT count(*)::bigint FROM fence
                """, on: connection, "delete \(full)")
        }
    }

    func list(prefix: String) throws -> [String] {
        try withConnection("list") { connection in try Self.list(prefix: prefix, on: connection, store: self) }
    }

    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        try writer.alone {
            guard let term = hold.current else { throw StandbyWriteRefused(reason: "it does not hold the lease") }
            return try withConnection("run a transaction") { connection in
                _ = try run("BEGIN", on: connection, "begin a transaction")
                let result: Result
                do {
                    let fence = try run(
                        "SELECT count(*)::bigint FROM (\(unescaped: fenceSQL(term)) FOR SHARE) AS fence",
                        on: connection,
                        "check the lease")
                    guard try fence.first?.decode(Int64.self) == 1 else {
                        throw StandbyWriteRefused(reason: try refusal(term, on: connection))
                    }
                    result = try body(Transaction(store: self, connection: connection))
                } catch {
                    _ = try? run("ROLLBACK", on: connection, "roll back")
                    throw error
                }
                let commit = try run("COMMIT", on: connection, "commit a transaction")
                guard commit.metadata.command == "COMMIT" else {
                    throw PostgreSQLError.query(
                        database: target.name, operation: "commit a transaction",
                        cause: "the server answered \(commit.metadata.command)")
                }
                return result
            }
        }
    }

    // MARK: - Fence

    /// The lease row as this node's term must find it: the SELECT the writes lock `FOR SHARE`. The identity and
    /// epoch are this node's own values (a UUID-based identity and a number), quoted here because the fence sits
    /// inside statements whose binds are the data.
    func fenceSQL(_ term: LeaseHold.Term) -> String {
        // node_id is letters, digits, '.', '_' and '-' (`ClusterDrivers.isNodeID`), the rest a UUID: nothing to quote.
        precondition(!term.identity.contains("'") && !term.identity.contains("\\"), "a lease identity with a quote")
        return "SELECT 1 FROM \(haTable) WHERE ha_key = 'core/lock' AND ha_identity = '\(term.identity)' AND epoch = "
            + "\(term.epoch) AND valid_until > clock_timestamp()"
    }

    /// One fenced write (outside a transaction): the statement counts the fence's rows; 0 means refused.
    private func fencedWrite(
        _ operation: String, _ statement: (PostgresConnection, LeaseHold.Term) throws -> PostgresQueryResult
    ) throws {
        try writer.together {
            guard let term = hold.current else { throw StandbyWriteRefused(reason: "it does not hold the lease") }
            try withConnection(operation) { connection in
                let result = try statement(connection, term)
                guard try result.first?.decode(Int64.self) == 1 else {
                    throw StandbyWriteRefused(reason: try refusal(term, on: connection))
                }
            }
        }
    }

    /// Why the fence refused `term`: who holds the lease row now.
    private func refusal(_ term: LeaseHold.Term, on connection: PostgresConnection) throws -> String {
        let rows = try run(
            """
            SELECT ha_identity, epoch, (valid_until > clock_timestamp()) FROM \(unescaped: haTable) \
            WHERE ha_key = 'core/lock'
            """, on: connection, "read the lease")
        guard let row = rows.first else { return "the lease row is gone" }
        let (identity, epoch, valid) = try row.decode((String, Int64, Bool).self)
        if identity == term.identity, epoch == term.epoch {
            return "its lease (epoch \(epoch)) expired by the database's clock"
        }
        return "the lease is at epoch \(epoch) (this node's term was \(term.epoch))" + (valid ? "" : ", expired")
    }

    // MARK: - Statements shared with transactions

    static func get(_ full: String, on connection: PostgresConnection, store: PostgreSQLStore) throws -> [UInt8]? {
        let (_, path, key) = split(full)
        let rows = try store.run(
            "SELECT value FROM \(unescaped: store.table) WHERE path = \(path) AND key = \(key)", on: connection,
            "read \(full)")
        guard let row = rows.first else { return nil }
        let buffer = try row.decode(ByteBuffer.self)
        return Array(buffer.readableBytesView)
    }

    static func list(prefix: String, on connection: PostgresConnection, store: PostgreSQLStore) throws -> [String] {
        let path = "/" + prefix
        let rows = try store.run(
            """
            SELECT key FROM \(unescaped: store.table) WHERE path = \(path) \
            UNION SELECT substring(substr(path, length(\(path)) + 1) from '^.*?/') FROM \(unescaped: store.table) \
            WHERE starts_with(parent_path, \(path))
            """, on: connection, "list \(prefix)")
        var names = Set<String>()
        for row in rows {
            if let name = try row.decode(String?.self), !name.isEmpty { names.insert(name) }
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The operations inside `transaction(_:)`: on its connection, after its fence.
    private struct Transaction: StorageTransaction {
        let store: PostgreSQLStore
        let connection: PostgresConnection

        func get(_ full: String) throws -> [UInt8]? { try PostgreSQLStore.get(full, on: connection, store: store) }

        func put(_ full: String, _ value: [UInt8]) throws {
            let (parent, path, key) = PostgreSQLStore.split(full)
            _ = try store.run(
                """
                INSERT INTO \(unescaped: store.table) (parent_path, path, key, value) VALUES (\(parent), \(path), \
                \(key), \(ByteBuffer(bytes: value))) ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value
                """, on: connection, "write \(full)")
        }

        func delete(_ full: String) throws {
            let (_, path, key) = PostgreSQLStore.split(full)
            _ = try store.run(
                "DELETE FROM \(unescaped: store.table) WHERE path = \(path) AND key = \(key)", on: connection,
                "delete \(full)")
        }

        func list(prefix: String) throws -> [String] {
            try PostgreSQLStore.list(prefix: prefix, on: connection, store: store)
        }
    }
}

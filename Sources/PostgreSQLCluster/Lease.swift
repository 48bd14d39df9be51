import FoundationEssentials
import KeyService
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Leadership by a lease row timed by the database's clock (issue 17; `ha-postgresql.md` §8), on a connection of its
/// own (`vhsmd-lease-<node_id>`), never an advisory lock:
///
/// - **Acquire** (every `retry_interval` on a standby): insert the row, or update it only when it has expired
///   (`valid_until < clock_timestamp()`), bumping `epoch`. Won when the statement returns the row.
/// - **Renew** (every `renew_interval`): `UPDATE … WHERE ha_identity AND epoch AND unexpired`; it never inserts or
///   takes. 0 rows: the lease is lost, the node demotes itself.
/// - **Demote on its own clock:** a renewal that succeeded extends this node's deadline to the moment the request was
///   *sent* plus `lease_ttl` minus a margin (a third of the TTL, at most 1 s), on the monotonic clock. Past it, the
///   node stops serving even when no query has answered (a paused VM, a dead database), before the row can expire.
/// - **Release** (step-down, shutdown): the row's `valid_until` is set in the past; its epoch stays.
/// - **Fence:** every write checks the row in its own transaction (`PostgreSQLStore`).
///
/// A standby reads the row every retry to name the leader, only while it is unexpired, and never later than
/// the time left it saw (counted from when it asked).
final class Lease: ClusterLease, Sendable {
    private enum Phase: Sendable, Equatable {
        case standby
        /// `own`: this node's advertisement for the term, unsigned (made once: `view()` is asked several times per
        /// request, and each renewal signs it again).
        case active(since: Date, own: LeaderAdvertisement)
    }

    private struct State: Sendable {
        var phase = Phase.standby
        /// When this node must stop serving unless a renewal succeeds first.
        var deadline = ContinuousClock.now
        /// The leader as last seen, and until when that is safe to say.
        var leader: LeaderAdvertisement?
        var leaderUntil = ContinuousClock.now
        /// No elections before this (after a step-down).
        var pausedUntil = ContinuousClock.now
        /// The last leader advertisement that verified (the key never changes, so it verifies for good).
        var verified: LeaderAdvertisement?
    }

    let store: PostgreSQLStore
    let events: any HAEvents
    let mayCompete: @Sendable () -> Bool
    private let state = Mutex(State())
    private let connection = Mutex<PostgresConnection?>(nil)

    var nodeID: String { store.cluster.nodeID }
    var apiAddress: String { store.cluster.apiAddress }
    var ttl: Duration { store.settings.leaseTTL }
    /// How long before the lease could expire the node stops serving.
    var margin: Duration { min(.seconds(1), ttl / 3) }
    /// The longest a lease query may take before its connection is dropped.
    var queryTimeout: Duration { min(.seconds(1), ttl / 3) }

    init(store: PostgreSQLStore, events: any HAEvents, mayCompete: @escaping @Sendable () -> Bool) {
        self.store = store
        self.events = events
        self.mayCompete = mayCompete
    }

    // MARK: - HACoordinator

    func view() -> HAView {
        let now = ContinuousClock.now
        return state.withLock { state in
            if case .active(let since, let own) = state.phase, now < state.deadline {
                return HAView(isActive: true, leader: own, activeSince: since)
            }
            var leader = now < state.leaderUntil ? state.leader : nil
            // Only an advertisement a member signed: the database's operators could rewrite the row, and clients
            // are sent where it points. (Checked here, so a node that just joined trusts it at once.)
            if let advertisement = leader, advertisement != state.verified {
                if events.advertisementKey().map({ advertisement.verifies(with: $0) }) == true {
                    state.verified = advertisement
                } else {
                    leader = nil
                }
            }
            return HAView(isActive: false, leader: leader?.nodeID == nodeID ? nil : leader, activeSince: nil)
        }
    }

    func stepDown() async throws {
        guard case .active = state.withLock({ $0.phase }), let term = store.hold.current else {
            throw LeaseError.notActive(nodeID: nodeID)
        }
        demote(reason: "it stepped down (sys/step-down)")
        state.withLock { $0.pausedUntil = .now + HAView.stepDownPause }
        try await release(term)
    }

    // MARK: - Service

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let started = ContinuousClock.now
                let active = await self.tick()
                let interval = active ? self.store.settings.renewInterval : self.store.settings.retryInterval
                try? await Task.sleep(until: started + interval, clock: .continuous)
            }
        }
        // Shutdown: give a held lease up so a standby takes over at its next retry.
        if let term = store.hold.current {
            demote(reason: "vhsmd is stopping")
            try? await release(term)
        }
        if let connection = connection.withLock({ $0 }) { try? await connection.close() }
    }

    /// One round: renew (active) or read the leader and maybe acquire (standby). Returns whether the node is active.
    private func tick() async -> Bool {
        let (phase, deadline) = state.withLock { ($0.phase, $0.deadline) }
        if case .active = phase {
            if ContinuousClock.now >= deadline {
                demote(reason: "no renewal succeeded for \(ttl - margin), so the lease may expire")
                return false
            }
            return await renewHeld()
        }
        await standbyTick()
        return state.withLock { if case .active = $0.phase { true } else { false } }
    }

    /// Renews the held term (and re-signs the advertisement); false when the node is no longer active.
    private func renewHeld() async -> Bool {
        guard let term = store.hold.current else {
            demote(reason: "it holds no term")
            return false
        }
        let sent = ContinuousClock.now
        do {
            if try await renew(term) {
                // A renewal sent earlier may answer later (`advertisementKeyLearned` renews out of turn).
                state.withLock { $0.deadline = max($0.deadline, sent + ttl - margin) }
            } else {
                demote(reason: "its lease (epoch \(term.epoch)) was taken or expired")
                return false
            }
        } catch {
            // Keep trying until the deadline; the next tick demotes past it.
            complain("vhsmd: renewing the lease failed (serving until the lease may expire): \(error)")
        }
        return true
    }

    func advertisementKeyLearned() {
        guard case .active = state.withLock({ $0.phase }) else { return }
        Task { _ = await self.renewHeld() }
    }

    private func standbyTick() async {
        let sent = ContinuousClock.now
        let current: (LeaderAdvertisement?, Double)?
        do { current = try await readLeader() } catch {
            state.withLock { $0.leader = nil }
            complain("vhsmd: reading the lease failed: \(error)")
            return
        }
        if let (leader, left) = current, left > 0 {
            // Kept as read; `view()` names it only if it verifies. A forged one is reported here; an unsigned one
            // is an active node that took the lease before the cluster was initialised and signs it at once after.
            if let leader, leader.mac != nil, let key = events.advertisementKey(), !leader.verifies(with: key) {
                complain(
                    "vhsmd: the lease row's leader advertisement (node \(leader.nodeID)) does not verify under this "
                        + "cluster's key: ignored; was the row written outside vhsmd?")
            }
            state.withLock { state in
                state.leader = leader
                state.leaderUntil = sent + .milliseconds(Int64(left * 1000))
            }
            return
        }
        state.withLock { $0.leader = nil }
        guard mayCompete(), ContinuousClock.now >= state.withLock({ $0.pausedUntil }) else { return }
        let since = Date()
        let own = LeaderAdvertisement(nodeID: nodeID, apiAddress: apiAddress, activeTime: Self.rfc3339(since))
        let advertisement = events.advertisementKey().map { own.signed(with: $0) } ?? own
        let identity = nodeID + "/" + UUID().uuidString.lowercased()
        let epoch: Int64?
        do { epoch = try await acquire(identity: identity, advertisement: advertisement) } catch {
            complain("vhsmd: taking the lease failed: \(error)")
            return
        }
        guard let epoch else { return }
        let term = LeaseHold.Term(identity: identity, epoch: epoch)
        store.hold.set(term)
        state.withLock { $0.deadline = sent + ttl - margin }
        do {
            // Load everything from the database before serving (the keyring may have been rotated elsewhere).
            try events.becameActive()
        } catch {
            complain("vhsmd: node \(nodeID) took the lease (epoch \(epoch)) but could not load its state: \(error)")
            store.hold.set(nil)
            events.becameStandby(reason: "activation failed")
            state.withLock { $0.pausedUntil = .now + HAView.stepDownPause }
            try? await release(term)
            return
        }
        state.withLock { $0.phase = .active(since: since, own: own) }
        announce("vhsmd: node \(nodeID) is the active node (lease epoch \(epoch))")
    }

    /// Stops serving at once: the term is dropped (writes are refused before any query) and the runtime drops its
    /// services.
    private func demote(reason: String) {
        let wasActive = state.withLock { state in
            defer { state.phase = .standby }
            if case .active = state.phase { return true }
            return false
        }
        store.hold.set(nil)
        events.becameStandby(reason: reason)
        if wasActive { announce("vhsmd: node \(nodeID) is a standby: \(reason)") }
    }

    // MARK: - Statements

    private func acquire(identity: String, advertisement: LeaderAdvertisement) async throws -> Int64? {
        let value = String(decoding: try JSONEncoder().encode(advertisement), as: UTF8.self)
        let milliseconds = Self.milliseconds(ttl)
        let rows = try await query(
            """
            INSERT INTO \(unescaped: store.haTable) AS lease (ha_key, ha_identity, ha_value, valid_until, epoch) \
            VALUES ('core/lock', \(identity), \(value), clock_timestamp() + \(milliseconds) * interval '1 millisecond', \
            1) ON CONFLICT (ha_key) DO UPDATE SET ha_identity = EXCLUDED.ha_identity, ha_value = EXCLUDED.ha_value, \
            valid_until = clock_timestamp() + \(milliseconds) * interval '1 millisecond', epoch = lease.epoch + 1 \
            WHERE lease.valid_until < clock_timestamp() RETURNING epoch
            """, "take the lease")
        return try rows.first?.decode(Int64.self)
    }

    private func renew(_ term: LeaseHold.Term) async throws -> Bool {
        // The advertisement again, signed now if it could not be at acquisition (the cluster was initialised since).
        let own =
            state.withLock { state -> LeaderAdvertisement? in
                if case .active(_, let own) = state.phase { return own }
                return nil
            } ?? LeaderAdvertisement(nodeID: nodeID, apiAddress: apiAddress, activeTime: Self.rfc3339(Date()))
        let advertisement = events.advertisementKey().map { own.signed(with: $0) } ?? own
        let value = String(decoding: try JSONEncoder().encode(advertisement), as: UTF8.self)
        let rows = try await query(
            """
            UPDATE \(unescaped: store.haTable) SET valid_until = clock_timestamp() + \(Self.milliseconds(ttl)) * \
            interval '1 millisecond', ha_value = \(value) WHERE ha_key = 'core/lock' AND ha_identity = \(term.identity) AND epoch = \
            \(term.epoch) AND valid_until > clock_timestamp() RETURNING epoch
            """, "renew the lease")
        return !rows.isEmpty
    }

    private func release(_ term: LeaseHold.Term) async throws {
        _ = try await query(
            """
            UPDATE \(unescaped: store.haTable) SET valid_until = clock_timestamp() - interval '1 millisecond' \
            WHERE ha_key = 'core/lock' AND ha_identity = \(term.identity) AND epoch = \(term.epoch)
            """, "release the lease")
    }

    /// The leader in the row and its time left in seconds (negative: expired); nil without a row.
    private func readLeader() async throws -> (LeaderAdvertisement?, Double)? {
        let rows = try await query(
            """
            SELECT ha_value, extract(epoch from (valid_until - clock_timestamp()))::float8 \
            FROM \(unescaped: store.haTable) WHERE ha_key = 'core/lock'
            """, "read the lease")
        guard let row = rows.first else { return nil }
        let (value, left) = try row.decode((String?, Double).self)
        let leader = value.flatMap(LeaderAdvertisement.init(haValue:))
        return (leader, left)
    }

    /// Runs a lease statement on the lease connection (made again when it was lost), within `queryTimeout`; a query
    /// that does not answer in time closes the connection (PostgreSQL then ends its backend).
    private func query(_ query: PostgresQuery, _ operation: String) async throws -> [PostgresRow] {
        let connection: PostgresConnection
        if let open = self.connection.withLock({ $0 }), !open.isClosed {
            connection = open
        } else {
            let made: PostgresConnection
            do {
                made = try await store.connect(
                    application: "vhsmd-lease-\(nodeID)", statementTimeout: queryTimeout
                ).get()
            } catch {
                throw PostgreSQLError.connect(database: store.target.name, cause: PostgreSQLError.cause(error))
            }
            // A renewal out of turn (`advertisementKeyLearned`) may have connected meanwhile: one connection is kept.
            connection = self.connection.withLock { kept in
                if let open = kept, !open.isClosed { return open }
                kept = made
                return made
            }
            if connection !== made { try? await made.close() }
        }
        let future: EventLoopFuture<PostgresQueryResult> = connection.query(query, logger: store.logger)
        let timeout = connection.eventLoop.scheduleTask(in: .nanoseconds(Self.nanoseconds(queryTimeout))) {
            let _: EventLoopFuture<Void> = connection.close()
        }
        defer { timeout.cancel() }
        do { return try await future.get().rows } catch {
            throw PostgreSQLError.query(
                database: store.target.name, operation: operation, cause: PostgreSQLError.cause(error))
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 { nanoseconds(duration) / 1_000_000 }
    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    static func rfc3339(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

enum LeaseError: Error, CustomStringConvertible {
    case notActive(nodeID: String)
    var description: String {
        switch self {
        case .notActive(let nodeID): "node \(nodeID) is not the active node: step down on the active one"
        }
    }
}

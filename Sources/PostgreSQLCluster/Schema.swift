package import KeyService
import PostgresNIO

/// The cluster's tables, made by numbered migrations recorded in `<table>_schema` (version, applied). Nodes starting
/// together take that table's lock in turn; a database at a newer version than this vhsmd knows is refused.
enum Schema {
    /// Migration n (from 1) is `migrations[n - 1]`: statements run in one transaction.
    static func migrations(table: String, haTable: String) -> [[String]] {
        [
            [
                // Vault's layout (physical/postgresql): only barrier ciphertext is ever stored in `value`.
                """
                CREATE TABLE \(table) (parent_path TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C" NOT NULL, \
                key TEXT COLLATE "C" NOT NULL, value BYTEA NOT NULL, CONSTRAINT \(table)_pkey PRIMARY KEY (path, key))
                """,
                "CREATE INDEX \(table)_parent_path_idx ON \(table) (parent_path)",
                // The lease: one row (`core/lock`), never deleted, so its epoch only grows.
                """
                CREATE TABLE \(haTable) (ha_key TEXT COLLATE "C" NOT NULL PRIMARY KEY, \
                ha_identity TEXT COLLATE "C" NOT NULL, ha_value TEXT COLLATE "C", valid_until TIMESTAMPTZ NOT NULL, \
                epoch BIGINT NOT NULL)
                """,
            ]
        ]
    }

    /// Brings the tables to the newest version and checks the session (synchronous_commit on, PostgreSQL 11+).
    static func migrate(_ store: PostgreSQLStore) throws {
        let migrations = migrations(table: store.table, haTable: store.haTable)
        let versions = "\(store.table)_schema"
        try store.withConnection("migrate the schema") { connection in
            let commit = try store.run("SHOW synchronous_commit", on: connection, "read synchronous_commit")
            let setting = try commit.first?.decode(String.self) ?? "?"
            guard setting == "on" else {
                throw PostgreSQLError.setting(
                    database: store.target.name, name: "synchronous_commit", expected: "on", actual: setting)
            }
            let version = try store.run("SHOW server_version_num", on: connection, "read the server version")
            let number = Int(try version.first?.decode(String.self) ?? "") ?? 0
            guard number >= 110000 else {
                throw PostgreSQLError.setting(
                    database: store.target.name, name: "server_version_num",
                    expected: "110000 or more (PostgreSQL 11+)",
                    actual: String(number))
            }
            // Two nodes creating the table at once: one fails on the catalog's unique index; try again once.
            let create = PostgresQuery(
                unsafeSQL:
                    "CREATE TABLE IF NOT EXISTS \(versions) (version INTEGER PRIMARY KEY, applied TIMESTAMPTZ NOT NULL "
                    + "DEFAULT now())")
            if (try? store.run(create, on: connection, "create \(versions)")) == nil {
                _ = try store.run(create, on: connection, "create \(versions)")
            }
            _ = try store.run("BEGIN", on: connection, "begin the migration")
            do {
                _ = try store.run(
                    PostgresQuery(unsafeSQL: "LOCK TABLE \(versions) IN EXCLUSIVE MODE"), on: connection,
                    "lock \(versions)")
                let rows = try store.run(
                    PostgresQuery(unsafeSQL: "SELECT coalesce(max(version), 0)::bigint FROM \(versions)"),
                    on: connection, "read the schema version")
                let current = Int(try rows.first?.decode(Int64.self) ?? 0)
                guard current <= migrations.count else {
                    throw PostgreSQLError.newerSchema(
                        database: store.target.name, table: store.table, version: current,
                        supported: migrations.count)
                }
                for (index, statements) in migrations.enumerated() where index + 1 > current {
                    for statement in statements {
                        _ = try store.run(
                            PostgresQuery(unsafeSQL: statement), on: connection, "apply migration \(index + 1)")
                    }
                    _ = try store.run(
                        "INSERT INTO \(unescaped: versions) (version) VALUES (\(Int64(index + 1)))", on: connection,
                        "record migration \(index + 1)")
                }
                _ = try store.run("COMMIT", on: connection, "commit the migration")
            } catch {
                _ = try? store.run("ROLLBACK", on: connection, "roll back the migration")
                throw error
            }
        }
    }
}

/// The driver the host `vhsmd` installs (`VHSMDProgram.main(cluster:)`).
package struct PostgreSQLDriver: ClusterDriver {
    package init() {}

    package func open(_ settings: ClusterSettings) async throws -> any ClusterStore {
        let store = try PostgreSQLStore(cluster: settings)
        do {
            // The blocking calls run off the cooperative pool's threads' critical path only briefly, at start.
            try Schema.migrate(store)
        } catch {
            await store.close()
            throw error
        }
        return store
    }
}

import PostgresNIO

/// Why the cluster's database failed: each case names the database (host, port, database) and what to check.
enum PostgreSQLError: Error, CustomStringConvertible {
    case badURL(String, reason: String)
    case connect(database: String, cause: String)
    case query(database: String, operation: String, cause: String)
    case timedOut(database: String, operation: String, after: Duration)
    case newerSchema(database: String, table: String, version: Int, supported: Int)
    case setting(database: String, name: String, expected: String, actual: String)

    var description: String {
        switch self {
        case .badURL(let url, let reason):
            "connection_url '\(PostgreSQLTarget.redacted(url))' is not usable: \(reason); write it as "
                + "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]"
        case .connect(let database, let cause):
            "cannot connect to PostgreSQL at \(database): \(cause); check that it runs, listens there and lets this "
                + "user in"
        case .query(let database, let operation, let cause):
            "PostgreSQL at \(database) failed to \(operation): \(cause)"
        case .timedOut(let database, let operation, let after):
            "PostgreSQL at \(database) did not answer (\(operation)) within \(after)"
        case .newerSchema(let database, let table, let version, let supported):
            "the tables \(table)* at \(database) are at schema version \(version); this vhsmd knows up to "
                + "\(supported): upgrade vhsmd (nodes of one cluster run one version)"
        case .setting(let database, let name, let expected, let actual):
            "PostgreSQL at \(database) runs this node's sessions with \(name) = \(actual), expected \(expected): "
                + "acknowledged writes must be committed (check the server's and the role's settings)"
        }
    }

    /// A PostgreSQL error as one line: the server's message and SQLSTATE when it sent one, else the client's kind
    /// of failure (never the query's binds, which hold ciphertext).
    static func cause(_ error: any Error) -> String {
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] {
                let state = psql.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + state
            }
            if let underlying = psql.underlying { return "\(psql.code): \(underlying)" }
            return "\(psql.code)"
        }
        return "\(error)"
    }
}

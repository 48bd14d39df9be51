import FoundationEssentials
import NIOCore
import NIOSSL
import PostgresNIO

/// Where the database is, from `connection_url`: host, port, user, password, database and TLS.
struct PostgreSQLTarget: Sendable {
    var host: String
    var port: Int
    var user: String
    var password: String?
    var database: String
    var requireTLS: Bool

    /// "HOST:PORT/DATABASE", for errors (never the password).
    var name: String { "\(host):\(port)/\(database)" }

    init(url text: String) throws(PostgreSQLError) {
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql" else {
            throw .badURL(text, reason: "the scheme must be postgres://")
        }
        guard let host = url.host, !host.isEmpty else { throw .badURL(text, reason: "it names no host") }
        guard let user = url.user, !user.isEmpty else { throw .badURL(text, reason: "it names no user") }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw .badURL(text, reason: "it names no database (…/DATABASE)")
        }
        var requireTLS = !["127.0.0.1", "::1", "localhost"].contains(host)
        for item in url.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"?): requireTLS = false
            case ("sslmode", "require"?), ("sslmode", "verify-full"?): requireTLS = true
            case ("sslmode", let value):
                throw .badURL(text, reason: "sslmode '\(value ?? "")' is not disable, require or verify-full")
            default: throw .badURL(text, reason: "unknown parameter '\(item.name)' (only sslmode is known)")
            }
        }
        self.host = host
        port = url.port ?? 5432
        self.user = user
        password = url.password
        self.database = database
        self.requireTLS = requireTLS
    }

    /// The session every connection opens: `synchronous_commit = on` (a 2xx means committed), the application name
    /// PostgreSQL shows in pg_stat_activity, and bounds on statements and idle transactions.
    func configuration(applicationName: String, statementTimeout: Duration) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS =
            requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls)
        let milliseconds =
            statementTimeout.components.seconds * 1000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = [
            ("application_name", applicationName), ("synchronous_commit", "on"),
            ("statement_timeout", String(milliseconds)), ("idle_in_transaction_session_timeout", "30000"),
        ]
        return configuration
    }

    /// `text` with its password replaced by "…".
    static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text), url.password != nil else { return text }
        url.password = "…"
        return url.string ?? "postgres://…"
    }
}

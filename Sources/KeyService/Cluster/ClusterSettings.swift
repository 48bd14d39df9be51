import FoundationEssentials
package import ServiceLifecycle
import Synchronization

/// `storage.postgresql` in vhsmd's configuration: the shared database of a cluster (Vault's option names).
package struct PostgreSQLSettings: Sendable, Equatable {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]`.
    package var connectionURL: String
    /// The data table (Vault's layout: parent_path, path, key, value).
    package var table = "vhsm_kv_store"
    /// The lease table (ha_key, ha_identity, ha_value, valid_until, epoch).
    package var haTable = "vhsm_ha_locks"
    /// Data connections this node opens at most (the lease has its own).
    package var maxConnections = 8
    /// How long a lease lasts after each renewal, by the database's clock.
    package var leaseTTL: Duration = .seconds(3)
    /// How often the active node renews.
    package var renewInterval: Duration = .milliseconds(500)
    /// How often a standby tries to take an absent or expired lease.
    package var retryInterval: Duration = .milliseconds(250)

    package init(connectionURL: String) { self.connectionURL = connectionURL }
}

/// A node of a cluster: the database, this node's id and the addresses it advertises.
package struct ClusterSettings: Sendable, Equatable {
    package var postgresql: PostgreSQLSettings
    /// `node_id`: letters, digits, '.', '_' and '-', 1 to 64 of them; unique in the cluster.
    package var nodeID: String
    /// `cluster_name`: part of every member entry's associated data.
    package var clusterName: String
    /// `api_addr`: where standbys send clients to this node when it is active.
    package var apiAddress: String
}

/// What opens a cluster's shared store: the PostgreSQL driver, which only the host `vhsmd` binary links (its
/// client needs Foundation, which the initramfs's `vhsm-guest` does without).
package protocol ClusterDriver: Sendable {
    /// Connects, applies the schema's migrations and checks the session settings (synchronous_commit on). Fails
    /// closed with a sentence naming the database.
    func open(_ settings: ClusterSettings) async throws -> any ClusterStore
}

/// An opened shared store: the storage the barrier writes through (every write fenced by the lease) and the lease.
package protocol ClusterStore: Sendable {
    var storage: any StorageBackend { get }
    /// The lease for this node. `mayCompete` says whether the node may take it now (it can serve once active).
    func lease(events: any HAEvents, mayCompete: @escaping @Sendable () -> Bool) -> any ClusterLease
    /// Closes every connection (after the lease has stopped).
    func close() async
}

/// The lease as the server runs it: the coordinator's view, and a service that keeps it (acquire, renew, demote).
/// When the service ends (shutdown) it gives a held lease up.
package protocol ClusterLease: HACoordinator, Service {}

/// The cluster driver this vhsmd binary links (set by its `main`): nil in `vhsm-guest`.
package enum ClusterDrivers {
    private static let installed = Mutex<(any ClusterDriver)?>(nil)
    package static var postgresql: (any ClusterDriver)? {
        get { installed.withLock { $0 } }
        set { installed.withLock { $0 = newValue } }
    }

    /// Is `text` a usable node id?
    package static func isNodeID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }
}

extension PostgreSQLSettings {
    /// Reads `storage.postgresql` (`place` names it in errors).
    static func parse(_ object: [String: JSONValue], in place: String) throws(ConfigError) -> Self {
        let known: Set<String> = [
            "connection_url", "table", "ha_table", "max_connections", "lease_ttl", "renew_interval", "retry_interval",
        ]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigError(
                "\(place): unknown setting '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        guard case .string(let url)? = object["connection_url"],
            url.hasPrefix("postgres://")
                || url.hasPrefix(
                    "postgresql://")
        else {
            throw ConfigError(
                "\(place): connection_url must be a URL such as \"postgres://vhsm@db.example:5432/vhsm?sslmode=require\""
            )
        }
        var settings = PostgreSQLSettings(connectionURL: url)
        for (key, keyPath) in [("table", \PostgreSQLSettings.table), ("ha_table", \PostgreSQLSettings.haTable)] {
            guard let value = object[key] else { continue }
            guard case .string(let name) = value, isIdentifier(name) else {
                throw ConfigError(
                    "\(place): \(key) must be a table name of lower-case letters, digits and '_' (at most 48), "
                        + "starting with a letter")
            }
            settings[keyPath: keyPath] = name
        }
        if let value = object["max_connections"] {
            guard case .int(let count) = value, (1...256).contains(count) else {
                throw ConfigError("\(place): max_connections must be a whole number from 1 to 256")
            }
            settings.maxConnections = Int(count)
        }
        for (key, keyPath) in [
            ("lease_ttl", \PostgreSQLSettings.leaseTTL), ("renew_interval", \PostgreSQLSettings.renewInterval),
            ("retry_interval", \PostgreSQLSettings.retryInterval),
        ] {
            guard let value = object[key] else { continue }
            guard case .string(let text) = value, let duration = duration(text) else {
                throw ConfigError("\(place): \(key) must be a duration such as \"3s\" or \"500ms\"")
            }
            settings[keyPath: keyPath] = duration
        }
        // The active node must renew at least twice within a lease, and demote itself before it can expire.
        guard settings.leaseTTL >= .seconds(1), settings.renewInterval * 2 <= settings.leaseTTL,
            settings.retryInterval <= settings.leaseTTL
        else {
            throw ConfigError(
                "\(place): lease_ttl (\(settings.leaseTTL)) must be at least 1s and at least twice renew_interval "
                    + "(\(settings.renewInterval)), and retry_interval (\(settings.retryInterval)) at most lease_ttl")
        }
        return settings
    }

    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first),
            text.utf8.count <= 48
        else { return false }
        return text.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(
                    byte)
                || byte == UInt8(ascii: "_")
        }
    }

    /// "3s", "500ms", "1.5s", "2m": a positive duration of at most an hour.
    static func duration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number > 0, number * scale <= 3600 else {
                return nil
            }
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
        return nil
    }
}

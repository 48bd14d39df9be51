package import Crypto
package import FoundationEssentials
import Synchronization

/// Leadership among the vhsmd nodes that share one database (issue 17): one node is active and serves every
/// request; the others are standbys that answer `sys/health` (429), `sys/leader` and `sys/seal-status` themselves
/// and send everything else to the active node. The database's lease row decides (`PostgreSQLCluster.Lease`); this
/// protocol is what the server sees of it.
package protocol HACoordinator: Sendable {
    /// This node's id (`node_id` in the configuration).
    var nodeID: String { get }
    /// This node's address as clients reach it (`api_addr`).
    var apiAddress: String { get }
    /// What this node knows now, without waiting: whether it is active (its lease is held and, on its own monotonic
    /// clock, cannot have expired yet) and which node leads (only while that node's lease is unexpired).
    func view() -> HAView
    /// `sys/step-down`: gives the lease up at once (the row expires, its epoch is kept) and stays out of elections
    /// for `HAView.stepDownPause`. Throws when the node is not active or the database does not answer.
    func stepDown() async throws
    /// This node has just derived the advertisement key (`sys/init`, a join, an unseal): an active node that wrote
    /// its advertisement unsigned (it took the lease before the cluster was initialised) signs it now, not at its next
    /// renewal, so standbys name it from their next read of the row.
    func advertisementKeyLearned()
}

/// A node's view of the cluster's leadership (`HACoordinator.view()`).
package struct HAView: Sendable, Equatable {
    /// True while this node holds the lease and has loaded its state: it serves requests.
    package var isActive: Bool
    /// The active node, if a lease is held and unexpired as this node last saw it (never an expired one).
    package var leader: LeaderAdvertisement?
    /// Since when this node has been active (nil on a standby).
    package var activeSince: Date?

    package init(isActive: Bool, leader: LeaderAdvertisement?, activeSince: Date?) {
        self.isActive = isActive
        self.leader = leader
        self.activeSince = activeSince
    }

    /// How long a node that stepped down stays out of elections (Vault: 10 s).
    package static let stepDownPause: Duration = .seconds(10)
}

/// What the active node publishes in the lease row (`ha_value`, JSON): not secret, the address clients are sent to.
/// The database's operators could rewrite the row, so it carries `mac`: HMAC-SHA256 under a key only members hold
/// (`Runtime.advertisementKey()`, derived from the barrier-sealed path key) over `vhsm/cluster/leader/v1` ‖ 0 ‖
/// node_id ‖ 0 ‖ api_addr ‖ 0 ‖ active_time. Standbys send clients only to an advertisement that verifies.
package struct LeaderAdvertisement: Codable, Sendable, Equatable {
    package var nodeID: String
    package var apiAddress: String
    /// When it became active (RFC 3339).
    package var activeTime: String
    /// Base64 HMAC-SHA256 of the fields (nil: written by a node of a cluster not yet initialised, which has no key).
    package var mac: String?

    package init(nodeID: String, apiAddress: String, activeTime: String, mac: String? = nil) {
        self.nodeID = nodeID
        self.apiAddress = apiAddress
        self.activeTime = activeTime
        self.mac = mac
    }

    /// The advertisement in the lease row's `ha_value` (JSON), as a standby reads it; nil when it is not one. The row
    /// is the database's: whoever can write it can put anything there, so nothing in it is trusted until `verifies`.
    package init?(haValue: String) {
        guard let decoded = try? JSONDecoder().decode(LeaderAdvertisement.self, from: Data(haValue.utf8)) else {
            return nil
        }
        self = decoded
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id"
        case apiAddress = "api_addr"
        case activeTime = "active_time"
        case mac
    }

    private var signedBytes: [UInt8] {
        Array("vhsm/cluster/leader/v1".utf8) + [0] + Array(nodeID.utf8) + [0] + Array(apiAddress.utf8) + [0]
            + Array(activeTime.utf8)
    }

    /// This advertisement with its `mac` under `key`.
    package func signed(with key: SymmetricKey) -> LeaderAdvertisement {
        var signed = self
        signed.mac = Data(HMAC<SHA256>.authenticationCode(for: signedBytes, using: key)).base64EncodedString()
        return signed
    }

    /// Does `mac` verify under `key`?
    package func verifies(with key: SymmetricKey) -> Bool {
        guard let mac, let bytes = Data(base64Encoded: mac) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: signedBytes, using: key)
    }
}

/// What the lease tells the server when this node's role changes (`Runtime.becameActive`, `Runtime.becameStandby`).
package protocol HAEvents: Sendable {
    /// This node won the lease: load everything from the database before serving. Throws when that fails (the lease
    /// is then given up).
    func becameActive() throws
    /// This node lost or gave up the lease: stop serving from memory at once.
    func becameStandby(reason: String)
    /// The key of the leader advertisements (`LeaderAdvertisement.mac`); nil while this node holds no unsealed
    /// keyring (a cluster not yet initialised, a node waiting for its join).
    func advertisementKey() -> SymmetricKey?
}

/// A write refused because this node is not (or no longer) the active one: the database's lease row names another
/// holder or epoch, or has expired (the fence inside every write transaction), or the node is a standby.
package struct StandbyWriteRefused: Error, CustomStringConvertible {
    package var reason: String
    package init(reason: String) { self.reason = reason }
    package var description: String {
        "this vhsmd node is not the active node (\(reason)); nothing was written: retry against the active node "
            + "(GET /v1/sys/leader names it)"
    }
}

/// The cluster's database did not answer or failed a statement (it restarts, a connection was cut, it is
/// unreachable): the request may be retried; clients get 503 with this sentence, which names the database and never
/// a value.
package struct StorageUnavailable: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

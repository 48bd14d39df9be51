package import Crypto
import FoundationEssentials

/// The cluster's keys without humans (issue 17, the parallel-unseal layout): the shared database holds the keyring
/// sealed under one random cluster root key, and one member entry per node at `core/cluster/members/<node_id>`
/// (outside the barrier, which reserves the prefix): that root key sealed with a key only this node's launch derives
/// from its Secure Processor, tagged with the node id, chip id, measurement and root-key generation.
///
/// The entry's key is HKDF-SHA256(ikm: the node's barrier seal key (`GuestSealProvider`), salt: node id, info:
/// `vhsm/cluster/member/v1`); the sealed root key is AES-256-GCM (nonce ‖ ciphertext ‖ tag) with associated data
/// `vhsm/cluster/member/v1` ‖ 0 ‖ node id ‖ 0 ‖ cluster name ‖ 0 ‖ generation (decimal). An entry moved to another
/// node id, cluster or generation does not open.
package struct ClusterMembers: Sendable {
    package static let prefix = "core/cluster/members/"
    static let label = "vhsm/cluster/member/v1"

    /// A member entry as stored (JSON): nothing in it is secret but the sealed root key.
    struct Entry: Codable, Sendable, Equatable {
        var version: Int
        var nodeID: String
        var cluster: String
        var generation: Int
        var chipID: String
        var measurement: String
        var joined: String
        var sealedRootKey: String

        enum CodingKeys: String, CodingKey {
            case version
            case nodeID = "node_id"
            case cluster
            case generation
            case chipID = "chip_id"
            case measurement
            case joined
            case sealedRootKey = "sealed_root_key"
        }
    }

    /// What the launch says about this node (from a report at start): recorded in its entry, in the clear.
    package struct Tags: Sendable, Equatable {
        package var chipID: String
        package var measurement: String
        package init(chipID: String, measurement: String) {
            self.chipID = chipID
            self.measurement = measurement
        }
    }

    /// Where entries are read and written: the database, raw (entries are not barrier-sealed).
    let backend: any StorageBackend
    package let nodeID: String
    package let cluster: String
    let tags: Tags

    package init(backend: any StorageBackend, nodeID: String, cluster: String, tags: Tags) {
        self.backend = backend
        self.nodeID = nodeID
        self.cluster = cluster
        self.tags = tags
    }

    var path: String { Self.prefix + nodeID }

    /// This node's entry, if it has one.
    func entry() throws -> Entry? {
        guard let bytes = try backend.get(path) else { return nil }
        do { return try JSONDecoder().decode(Entry.self, from: Data(bytes)) } catch {
            throw ClusterMemberError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// The cluster root key from this node's entry, opened with `sealKey` (this launch's barrier seal key). nil when
    /// the node has no entry (it has not joined).
    func rootKey(sealKey: SymmetricKey) throws -> SymmetricKey? {
        guard let entry = try entry() else { return nil }
        guard entry.nodeID == nodeID, entry.cluster == cluster, entry.version == 1 else {
            throw ClusterMemberError.mismatch(
                path: path,
                expected: "node \(nodeID) of cluster \(cluster), version 1",
                actual: "node \(entry.nodeID) of cluster \(entry.cluster), version \(entry.version)")
        }
        guard let sealed = Data(base64Encoded: entry.sealedRootKey) else {
            throw ClusterMemberError.unreadable(path: path, reason: "sealed_root_key is not base64")
        }
        let key = memberKey(sealKey)
        var plaintext: Data
        do {
            plaintext = try AES.GCM.open(
                try AES.GCM.SealedBox(combined: sealed), using: key,
                authenticating: aad(generation: entry.generation))
        } catch {
            throw ClusterMemberError.wrongLaunch(
                nodeID: nodeID, chipID: entry.chipID, measurement: entry.measurement, current: tags)
        }
        defer { plaintext.zeroize() }
        guard plaintext.count == 32 else {
            throw ClusterMemberError.unreadable(path: path, reason: "the root key is \(plaintext.count) bytes, not 32")
        }
        return SymmetricKey(data: plaintext)
    }

    /// Writes this node's entry: `rootKey` sealed with `sealKey`. A member writes only its own entry, active or not.
    func enroll(rootKey: SymmetricKey, sealKey: SymmetricKey, generation: Int = 1) throws {
        let key = memberKey(sealKey)
        let sealed = rootKey.withUnsafeBytes { raw in
            Result { try AES.GCM.seal(Array(raw), using: key, authenticating: aad(generation: generation)) }
        }
        let box = try sealed.get()
        let entry = Entry(
            version: 1, nodeID: nodeID, cluster: cluster, generation: generation, chipID: tags.chipID,
            measurement: tags.measurement, joined: TransitTime.rfc3339(Date()),
            sealedRootKey: (box.combined ?? Data()).base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try backend.put(path, Array(try encoder.encode(entry)))
    }

    /// The node ids that have an entry.
    func members() throws -> [String] {
        try backend.list(prefix: Self.prefix).filter { !$0.hasSuffix("/") }
    }

    private func memberKey(_ sealKey: SymmetricKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: sealKey, salt: Array(nodeID.utf8), info: Array(Self.label.utf8), outputByteCount: 32)
    }

    private func aad(generation: Int) -> [UInt8] {
        Array(Self.label.utf8) + [0] + Array(nodeID.utf8) + [0] + Array(cluster.utf8) + [0]
            + Array(String(generation).utf8)
    }
}

/// Why a member entry did not give this node the cluster root key.
package enum ClusterMemberError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case mismatch(path: String, expected: String, actual: String)
    case wrongLaunch(nodeID: String, chipID: String, measurement: String, current: ClusterMembers.Tags)
    case notMember(nodeID: String, cluster: String)

    package var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "the cluster member entry \(path) cannot be read: \(reason)"
        case .mismatch(let path, let expected, let actual):
            "the cluster member entry \(path) is for another node: expected \(expected), found \(actual)"
        case .wrongLaunch(let nodeID, let chipID, let measurement, let current):
            "node \(nodeID)'s member entry does not open with this launch's seal key: it was sealed on chip "
                + "\(chipID.prefix(16))… with measurement \(measurement.prefix(16))…, this launch is chip "
                + "\(current.chipID.prefix(16))… with measurement \(current.measurement.prefix(16))… (remove the "
                + "node and join it again)"
        case .notMember(let nodeID, let cluster):
            "node \(nodeID) is not a member of cluster \(cluster): it has no entry under \(ClusterMembers.prefix); "
                + "join it (operator recovery: vhsm operator recover) or give it another node_id"
        }
    }
}

/// The barrier root key of a cluster node: the cluster root key from this node's member entry, opened with the key
/// `seal` derives (`GuestSealProvider`: the Secure Processor's key for this launch). `initialRootKey()` (sys/init on
/// the first node) makes a fresh random cluster root key and enrolls this node with it.
package struct ClusterSeal: SealProvider {
    let seal: any SealProvider
    let members: ClusterMembers

    package init(seal: any SealProvider, members: ClusterMembers) {
        self.seal = seal
        self.members = members
    }

    package var name: String { seal.name }

    package func rootKey() throws -> SymmetricKey {
        guard let key = try members.rootKey(sealKey: try seal.rootKey()) else {
            throw ClusterMemberError.notMember(nodeID: members.nodeID, cluster: members.cluster)
        }
        return key
    }

    /// A fresh cluster root key, with this node enrolled under it.
    func initialRootKey() throws -> SymmetricKey {
        let rootKey = SymmetricKey(size: .bits256)
        try members.enroll(rootKey: rootKey, sealKey: try seal.rootKey())
        return rootKey
    }

    /// Enrolls this node with a cluster root key released to it (operator recovery).
    func enroll(_ rootKey: SymmetricKey) throws {
        try members.enroll(rootKey: rootKey, sealKey: try seal.rootKey())
    }
}

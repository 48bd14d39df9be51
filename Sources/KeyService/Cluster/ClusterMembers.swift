package import Crypto
import FoundationEssentials
import Sealing

/// The cluster's keys without humans (issue 17, the parallel-unseal layout): the shared database holds the keyring
/// sealed under one random cluster root key, and one member entry per node at `core/cluster/members/<node_id>`
/// (outside the barrier, which reserves the prefix). An entry holds:
///
/// - the node's own X25519 key pair: the public key in the clear, the private key sealed with a key only this node's
///   launch derives from its Secure Processor: AES-256-GCM under HKDF-SHA256(ikm: the node's barrier seal key
///   (`GuestSealProvider`), salt: node id, info: `vhsm/cluster/member/v1`), associated data `vhsm/cluster/member/v1`
///   ‖ 0 ‖ node id ‖ 0 ‖ cluster name;
/// - the cluster root key of generation g, HPKE-sealed (X25519-SHA256-ChaCha20Poly1305, info
///   `vhsm/cluster/root-key/v1`) to that public key, with associated data `…` ‖ 0 ‖ g;
/// - tags in the clear: chip id, measurement, when it joined.
///
/// So the active node can rotate the root key for every member without any of them online (it seals the new key to
/// their public keys); a removed node's entry is deleted before the rotation, so it never sees the new key.
package struct ClusterMembers: Sendable {
    package static let prefix = "core/cluster/members/"
    static let label = "vhsm/cluster/member/v1"
    static let rootKeyInfo = "vhsm/cluster/root-key/v1"

    /// A member entry as stored (JSON): nothing in it is secret but the two sealed fields.
    struct Entry: Codable, Sendable, Equatable {
        var version: Int
        var nodeID: String
        var cluster: String
        var generation: Int
        var chipID: String
        var measurement: String
        var joined: String
        var publicKey: String
        var sealedPrivateKey: String
        var sealedRootKey: String

        enum CodingKeys: String, CodingKey {
            case version
            case nodeID = "node_id"
            case cluster
            case generation
            case chipID = "chip_id"
            case measurement
            case joined
            case publicKey = "public_key"
            case sealedPrivateKey = "sealed_private_key"
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

    /// The entry of `node` (this node by default), if it has one.
    func entry(_ node: String? = nil) throws -> Entry? {
        let path = Self.prefix + (node ?? nodeID)
        guard let bytes = try backend.get(path) else { return nil }
        return try Self.decode(bytes, path: path)
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> Entry {
        do { return try JSONDecoder().decode(Entry.self, from: Data(bytes)) } catch {
            throw ClusterMemberError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// The cluster root key from this node's entry, opened with `sealKey` (this launch's barrier seal key). nil when
    /// the node has no entry (it has not joined, or was removed).
    func rootKey(sealKey: SymmetricKey) throws -> SymmetricKey? {
        guard let entry = try entry() else { return nil }
        guard entry.nodeID == nodeID, entry.cluster == cluster, entry.version == 1 else {
            throw ClusterMemberError.mismatch(
                path: path, expected: "node \(nodeID) of cluster \(cluster), version 1",
                actual: "node \(entry.nodeID) of cluster \(entry.cluster), version \(entry.version)")
        }
        guard let sealedPrivate = Data(base64Encoded: entry.sealedPrivateKey),
            let sealedRoot = Data(base64Encoded: entry.sealedRootKey), sealedRoot.count > 32
        else {
            throw ClusterMemberError.unreadable(path: path, reason: "a sealed field is not base64")
        }
        var privateBytes: Data
        do {
            privateBytes = try AES.GCM.open(
                try AES.GCM.SealedBox(combined: sealedPrivate), using: memberKey(sealKey), authenticating: privateAAD)
        } catch {
            throw ClusterMemberError.wrongLaunch(
                nodeID: nodeID, chipID: entry.chipID, measurement: entry.measurement, current: tags)
        }
        defer { privateBytes.zeroize() }
        var plaintext: Data
        do {
            let privateKey = HPKEPrivateKey.x25519(
                try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateBytes))
            plaintext = try privateKey.open(
                Array(sealedRoot.dropFirst(32)), encapsulatedKey: Array(sealedRoot.prefix(32)), suite: .x25519,
                info: Self.rootKeyInfo, aad: rootAAD(node: nodeID, generation: entry.generation))
        } catch {
            throw ClusterMemberError.unreadable(
                path: path, reason: "the root key of generation \(entry.generation) does not open with its key pair")
        }
        defer { plaintext.zeroize() }
        guard plaintext.count == 32 else {
            throw ClusterMemberError.unreadable(path: path, reason: "the root key is \(plaintext.count) bytes, not 32")
        }
        return SymmetricKey(data: plaintext)
    }

    /// Writes this node's entry: a fresh key pair, its private key sealed with `sealKey`, and `rootKey` sealed to it.
    /// A member writes only its own entry, active or not.
    func enroll(rootKey: SymmetricKey, sealKey: SymmetricKey, generation: Int = 1) throws {
        let privateKey = Curve25519.KeyAgreement.PrivateKey()
        let sealedPrivate = try AES.GCM.seal(
            privateKey.rawRepresentation, using: memberKey(sealKey), authenticating: privateAAD)
        var entry = Entry(
            version: 1, nodeID: nodeID, cluster: cluster, generation: generation, chipID: tags.chipID,
            measurement: tags.measurement, joined: TransitTime.rfc3339(Date()),
            publicKey: privateKey.publicKey.rawRepresentation.base64EncodedString(),
            sealedPrivateKey: (sealedPrivate.combined ?? Data()).base64EncodedString(), sealedRootKey: "")
        entry.sealedRootKey = try Self.sealRootKey(rootKey, to: entry)
        try backend.put(path, try Self.encode(entry))
    }

    /// The node ids that have an entry, with their entries.
    func all() throws -> [Entry] {
        try backend.list(prefix: Self.prefix).filter { !$0.hasSuffix("/") }.compactMap { try entry($0) }
    }

    /// In `transaction` (the barrier's root-key rotation): every entry but `removed`'s gets `rootKey` of
    /// `generation`, sealed to its public key; `removed`'s entry is deleted.
    func reseal(
        _ rootKey: SymmetricKey, generation: Int, removing removed: String?, in transaction: any StorageTransaction
    ) throws {
        let nodes = try transaction.list(prefix: Self.prefix).filter { !$0.hasSuffix("/") }
        for node in nodes {
            let path = Self.prefix + node
            if node == removed {
                try transaction.delete(path)
                continue
            }
            guard let bytes = try transaction.get(path) else { continue }
            var entry = try Self.decode(bytes, path: path)
            entry.generation = generation
            entry.sealedRootKey = try Self.sealRootKey(rootKey, to: entry)
            try transaction.put(path, try Self.encode(entry))
        }
    }

    private static func sealRootKey(_ rootKey: SymmetricKey, to entry: Entry) throws -> String {
        guard let raw = Data(base64Encoded: entry.publicKey),
            let publicKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: raw)
        else {
            throw ClusterMemberError.unreadable(
                path: prefix + entry.nodeID, reason: "public_key is not a base64 X25519 public key")
        }
        let (encapsulated, ciphertext) = try rootKey.withUnsafeBytes { bytes in
            try HPKEPublicKey.x25519(publicKey).seal(
                Array(bytes), info: rootKeyInfo,
                aad: rootAAD(cluster: entry.cluster, node: entry.nodeID, generation: entry.generation))
        }
        return Data(encapsulated + ciphertext).base64EncodedString()
    }

    private static func encode(_ entry: Entry) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(entry))
    }

    private func memberKey(_ sealKey: SymmetricKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: sealKey, salt: Array(nodeID.utf8), info: Array(Self.label.utf8), outputByteCount: 32)
    }

    private var privateAAD: [UInt8] { Array(Self.label.utf8) + [0] + Array(nodeID.utf8) + [0] + Array(cluster.utf8) }

    private func rootAAD(node: String, generation: Int) -> [UInt8] {
        Self.rootAAD(cluster: cluster, node: node, generation: generation)
    }

    private static func rootAAD(cluster: String, node: String, generation: Int) -> [UInt8] {
        Array(label.utf8) + [0] + Array(node.utf8) + [0] + Array(cluster.utf8) + [0] + Array(String(generation).utf8)
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
            "node \(nodeID) is not a member of cluster \(cluster): it has no entry under \(ClusterMembers.prefix) "
                + "(never joined, or removed); join it (config 'join', or operator recovery: vhsm operator recover) "
                + "or give it another node_id"
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

    /// Enrolls this node with a cluster root key released to it (a join, or operator recovery), at the generation the
    /// other entries hold.
    func enroll(_ rootKey: SymmetricKey) throws {
        let generation = try members.all().map(\.generation).max() ?? 1
        try members.enroll(rootKey: rootKey, sealKey: try seal.rootKey(), generation: generation)
    }
}

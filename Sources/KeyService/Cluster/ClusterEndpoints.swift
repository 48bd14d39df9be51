import Crypto
import FoundationEssentials
import HTTPTypes

/// `sys/cluster/…` on the active node (issue 17): the members, removing one, rotating the cluster root key.
///
/// - `GET|LIST sys/cluster/members`: `{keys: [node ids], members: {id: {chip_id, measurement, joined, generation,
///   self}}}`.
/// - `DELETE sys/cluster/members/:node_id` (sudo): deletes the node's entry and rotates the root key in the same
///   transaction, so the removed node cannot unseal again, whatever it kept.
/// - `PUT sys/cluster/rotate-root` (sudo): a new cluster root key, sealed to every member's public key (none needs to
///   be online); the keyring is sealed under it and, with an operator key, escrowed again.
extension Runtime {
    func clusterRequest(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply {
        guard let cluster = clusterSeal else {
            throw .badRequest("sys/cluster/ applies to a node of a cluster (storage.postgresql); this vhsmd is alone")
        }
        switch (request.operation, path) {
        case (.read, "members"), (.list, "members"):
            let entries: [ClusterMembers.Entry]
            do { entries = try cluster.members.all() } catch {
                throw .storage(error, detail: "cannot list the cluster's members: \(error)")
            }
            var members: [String: JSONValue] = [:]
            for entry in entries {
                members[entry.nodeID] = .object([
                    "chip_id": .string(entry.chipID), "measurement": .string(entry.measurement),
                    "joined": .string(entry.joined), "generation": .int(Int64(entry.generation)),
                    "self": .bool(entry.nodeID == cluster.members.nodeID),
                ])
            }
            return .data([
                "keys": .array(entries.map { .string($0.nodeID) }), "members": .object(members),
                "cluster": .string(cluster.members.cluster),
            ])
        case (.delete, _) where path.hasPrefix("members/"):
            let node = String(path.dropFirst("members/".count))
            guard node != cluster.members.nodeID else {
                throw .badRequest(
                    "node \(node) is this (active) node: step it down (PUT sys/step-down), then remove it through the "
                        + "new active node")
            }
            let known: Bool
            do { known = try cluster.members.entry(node) != nil } catch {
                throw .storage(error, detail: "cannot read node \(node)'s member entry: \(error)")
            }
            guard known else { throw VaultError(status: .notFound, messages: ["no member \(node) in this cluster"]) }
            let generation = try rotateClusterRootKey(cluster, removing: node)
            return .data(["removed": .string(node), "generation": .int(Int64(generation))])
        case (.update, "rotate-root"):
            let generation = try rotateClusterRootKey(cluster, removing: nil)
            return .data(["generation": .int(Int64(generation))])
        default:
            throw .unsupportedPath("sys/cluster/" + path)
        }
    }

    /// A new cluster root key of the next generation for every member but `removed` (whose entry goes), the
    /// keyring resealed under it, in one transaction.
    private func rotateClusterRootKey(_ cluster: ClusterSeal, removing removed: String?) throws(VaultError) -> Int {
        guard let barrier = clusterBarrier else { throw .internalError("no barrier in cluster mode") }
        do {
            let generation = (try cluster.members.all().map(\.generation).max() ?? 1) + 1
            let rootKey = SymmetricKey(size: .bits256)
            try barrier.rotateRootKey(to: rootKey, escrow: clusterEscrow) { transaction in
                try cluster.members.reseal(rootKey, generation: generation, removing: removed, in: transaction)
            }
            return generation
        } catch let refused as StandbyWriteRefused {
            throw .standby(refused)
        } catch {
            throw .storage(error, detail: "cannot rotate the cluster root key: \(error)")
        }
    }
}

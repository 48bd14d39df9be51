import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KeyService

/// A seal whose key the test chooses (two "launches" are two keys).
struct FixedSeal: SealProvider {
    let key: SymmetricKey
    var name: String { "test" }
    func rootKey() throws -> SymmetricKey { key }
}

/// The lease as the tests set it: active or standby, and the leader a standby names.
final class FakeLease: HACoordinator {
    let nodeID: String
    let apiAddress: String
    private let current = Mutex(HAView(isActive: false, leader: nil, activeSince: nil))
    let stepDowns = Atomic<Int>(0)
    /// The next step-downs fail (a lease lost meanwhile, a database that does not answer).
    let stepDownFails = Atomic<Bool>(false)

    init(nodeID: String = "node1", apiAddress: String = "http://10.0.0.1:8200") {
        self.nodeID = nodeID
        self.apiAddress = apiAddress
    }

    /// How many times the runtime said it derived the advertisement key.
    let keysLearned = Atomic<Int>(0)

    func set(_ view: HAView) { current.withLock { $0 = view } }
    func advertisementKeyLearned() { keysLearned.add(1, ordering: .relaxed) }
    func view() -> HAView { current.withLock { $0 } }
    struct StepDownFailed: Error {}

    func stepDown() async throws {
        if stepDownFails.load(ordering: .relaxed) { throw StepDownFailed() }
        stepDowns.add(1, ordering: .relaxed)
    }

    func activate() {
        set(
            HAView(
                isActive: true,
                leader: LeaderAdvertisement(nodeID: nodeID, apiAddress: apiAddress, activeTime: "2026-12-07T10:00:00Z"),
                activeSince: Date()))
    }
}

/// A store whose writes are refused unless `active` (the database's fence, as `PostgreSQLStore` applies it).
final class FencedMemory: StorageBackend {
    let inner = MemoryBackend()
    let active = Atomic<Bool>(false)

    func get(_ path: String) throws -> [UInt8]? { try inner.get(path) }
    func list(prefix: String) throws -> [String] { try inner.list(prefix: prefix) }
    func put(_ path: String, _ value: [UInt8]) throws {
        if !path.hasPrefix(ClusterMembers.prefix) { try fence() }
        try inner.put(path, value)
    }
    func delete(_ path: String) throws {
        try fence()
        try inner.delete(path)
    }
    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        try fence()
        return try inner.transaction(body)
    }
    private func fence() throws {
        guard active.load(ordering: .relaxed) else { throw StandbyWriteRefused(reason: "test: not active") }
    }
}

@Suite struct ClusterMembersTests {
    let backend = MemoryBackend()
    let tags = ClusterMembers.Tags(chipID: "ab" + String(repeating: "0", count: 126), measurement: "cd")

    @Test func anEntryOpensOnlyWithItsOwnLaunchesKeyAndNodeID() throws {
        let members = ClusterMembers(backend: backend, nodeID: "node1", cluster: "c", tags: tags)
        let launch = SymmetricKey(size: .bits256)
        let rootKey = SymmetricKey(size: .bits256)
        #expect(try members.rootKey(sealKey: launch) == nil)
        try members.enroll(rootKey: rootKey, sealKey: launch)
        #expect(try members.rootKey(sealKey: launch) == rootKey)
        // Another launch (chip, measurement) derives another key: refused, naming what the entry was sealed to.
        let other = #expect(throws: ClusterMemberError.self) {
            try members.rootKey(sealKey: SymmetricKey(size: .bits256))
        }
        #expect("\(other!)".contains("does not open with this launch's seal key"))
        // The entry copied under another node id (same launch key) does not open there.
        let entry = try #require(try backend.get(ClusterMembers.prefix + "node1"))
        try backend.put(ClusterMembers.prefix + "node2", entry)
        let moved = ClusterMembers(backend: backend, nodeID: "node2", cluster: "c", tags: tags)
        #expect(throws: ClusterMemberError.self) { try moved.rootKey(sealKey: launch) }
        // Nor under another cluster name.
        let renamed = ClusterMembers(backend: backend, nodeID: "node1", cluster: "d", tags: tags)
        #expect(throws: ClusterMemberError.self) { try renamed.rootKey(sealKey: launch) }
        #expect(try backend.list(prefix: ClusterMembers.prefix) == ["node1", "node2"])
    }

    @Test func theEntryHoldsNoSecretInTheClear() throws {
        let members = ClusterMembers(backend: backend, nodeID: "node1", cluster: "c", tags: tags)
        let rootKey = SymmetricKey(size: .bits256)
        try members.enroll(rootKey: rootKey, sealKey: SymmetricKey(size: .bits256))
        let stored = try #require(try backend.get(ClusterMembers.prefix + "node1"))
        let raw = rootKey.withUnsafeBytes { Array($0) }
        #expect(!stored.windows(ofCount: 32).contains { Array($0) == raw })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stored)) as? [String: Any])
        #expect(json["public_key"] is String && json["sealed_private_key"] is String)
        #expect(json["node_id"] as? String == "node1" && json["chip_id"] as? String == tags.chipID)
        #expect(json["generation"] as? Int == 1 && json["measurement"] as? String == "cd")
    }

    @Test func engineAccessToMemberEntriesIsRefusedByTheBarrier() throws {
        let barrier = Barrier(backend: backend)
        try barrier.initialize(rootKey: SymmetricKey(size: .bits256))
        #expect(throws: BarrierError.self) { try barrier.put(ClusterMembers.prefix + "node9", [1]) }
        #expect(throws: BarrierError.self) { _ = try barrier.get(ClusterMembers.prefix + "node1") }
    }
}

extension Array {
    fileprivate func windows(ofCount count: Int) -> [ArraySlice<Element>] {
        guard self.count >= count else { return [] }
        return (0...(self.count - count)).map { self[$0..<($0 + count)] }
    }
}

@Suite struct HiddenPathsTests {
    let memory = MemoryBackend()
    let key = SymmetricKey(size: .bits256)
    var paths: HiddenPaths { HiddenPaths(inner: memory, key: key) }

    @Test func namesNeverReachTheStoreAndListingStillWorks() throws {
        let names = ["logical/1234/secrets/app1", "logical/1234/secrets/team/db-password", "core/policies", "x"]
        for (index, name) in names.enumerated() { try paths.put(name, [UInt8(index)]) }
        for (index, name) in names.enumerated() { #expect(try paths.get(name) == [UInt8(index)]) }
        let stored = try allPaths(memory, "")
        #expect(stored.count == names.count)
        for word in ["app1", "team", "db-password", "policies", "secrets", "logical", "core"] {
            #expect(!stored.contains { $0.contains(word) }, "'\(word)' reached the store in \(stored)")
        }
        #expect(try paths.list(prefix: "") == ["core/", "logical/", "x"])
        #expect(try paths.list(prefix: "logical/1234/secrets/") == ["app1", "team/"])
        #expect(try paths.list(prefix: "logical/1234/secrets/team/") == ["db-password"])
        #expect(try paths.list(prefix: "nothing/") == [])
        try paths.delete("logical/1234/secrets/app1")
        #expect(try paths.get("logical/1234/secrets/app1") == nil)
        #expect(try paths.list(prefix: "logical/1234/secrets/") == ["team/"])
        // The same name under another parent is another stored name (bound to the clear path above it).
        try paths.put("a/same", [1])
        try paths.put("b/same", [2])
        let hiddenA = try #require(try memory.list(prefix: try paths.hide("a") + "/").first)
        let hiddenB = try #require(try memory.list(prefix: try paths.hide("b") + "/").first)
        #expect(hiddenA != hiddenB)
    }

    @Test func transactionsSeeTheSameNames() throws {
        try paths.transaction { transaction in
            try transaction.put("t/one", [1])
            try transaction.put("t/two", [2])
            #expect(try transaction.get("t/one") == [1])
            #expect(try transaction.list(prefix: "t/") == ["one", "two"])
            try transaction.delete("t/one")
        }
        #expect(try paths.list(prefix: "t/") == ["two"])
    }

    @Test func anotherKeyReadsNothingAndAForgedNameIsRefused() throws {
        try paths.put("s/name", [7])
        let other = HiddenPaths(inner: memory, key: SymmetricKey(size: .bits256))
        #expect(try other.get("s/name") == nil)
        // The folder's stored names do not open under another key: LIST refuses rather than inventing names.
        let folder = try #require(try memory.list(prefix: "").first)
        try memory.put(folder + "forged", [1])
        #expect(throws: BarrierError.self) { try paths.list(prefix: "s/") }
    }

    @Test func aRowSwappedWithAnotherIsRefusedByTheBarrier() throws {
        let barrier = Barrier(backend: memory)
        try barrier.initialize(rootKey: SymmetricKey(size: .bits256))
        let hidden = HiddenPaths(inner: barrier, key: key)
        try hidden.put("logical/m/secrets/a", Array("alpha".utf8))
        try hidden.put("logical/m/secrets/b", Array("bravo".utf8))
        let a = try hidden.hide("logical/m/secrets/a")
        let b = try hidden.hide("logical/m/secrets/b")
        let sealedA = try #require(try memory.get(a))
        let sealedB = try #require(try memory.get(b))
        try memory.put(a, sealedB)
        try memory.put(b, sealedA)
        #expect(throws: BarrierError.self) { try hidden.get("logical/m/secrets/a") }
        #expect(throws: BarrierError.self) { try hidden.get("logical/m/secrets/b") }
    }

    func allPaths(_ backend: any StorageBackend, _ prefix: String) throws -> [String] {
        try backend.list(prefix: prefix).flatMap { child in
            child.hasSuffix("/") ? try allPaths(backend, prefix + child) : [prefix + child]
        }
    }
}

/// A node of a cluster as clients see it: active, it serves; a standby answers its health (429), the leader and
/// its seal status, and sends everything else to the active node (307), or 503 when no lease is held.
@Suite struct StandbyTests {
    let store = FencedMemory()
    let lease = FakeLease()
    let runtime: Runtime

    init() throws {
        let members = ClusterMembers(
            backend: store, nodeID: "node1", cluster: "c", tags: .init(chipID: "00", measurement: "00"))
        runtime = try Runtime(
            barrier: Barrier(backend: store),
            seal: ClusterSeal(
                seal: FixedSeal(key: SymmetricKey(size: .bits256)),
                members: members),
            storageType: "postgresql", clustered: true, clusterName: "c")
        runtime.attach(lease)
    }

    func makeApp() throws -> some ApplicationProtocol {
        try buildApplication(
            core: VaultCore(runtime: runtime), host: "127.0.0.1", port: 0, logger: Logger(label: "test"),
            limits: ServerTests.patientLimits)
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    func token(_ value: String) -> HTTPFields { [HTTPField.Name("X-Vault-Token")!: value] }

    /// Makes this node active, initialises the store and writes one secret; returns the root token.
    func initialise(_ client: some TestClientProtocol) async throws -> String {
        store.active.store(true, ordering: .relaxed)
        lease.activate()
        try runtime.becameActive()
        let root = try await client.execute(uri: "/v1/sys/init", method: .put, body: ByteBuffer(string: "{}")) {
            response in
            #expect(response.status == .ok)
            return try #require(try json(response.body)["root_token"] as? String)
        }
        try await client.execute(
            uri: "/v1/sys/mounts/secret", method: .post, headers: token(root),
            body: ByteBuffer(string: #"{"type":"kv","options":{"version":"2"}}"#)
        ) { #expect($0.status == .noContent) }
        try await client.execute(
            uri: "/v1/secret/data/app", method: .post, headers: token(root),
            body: ByteBuffer(string: #"{"data":{"password":"p"}}"#)
        ) { #expect($0.status == .ok) }
        return root
    }

    /// Demotes this node; `leader` is who the lease names now (nil: nobody).
    func demote(leader: LeaderAdvertisement?) {
        store.active.store(false, ordering: .relaxed)
        lease.set(HAView(isActive: false, leader: leader, activeSince: nil))
        runtime.becameStandby(reason: "test")
    }

    @Test func theActiveNodeServesAndSaysSo() async throws {
        try await makeApp().test(.live) { client in
            let root = try await initialise(client)
            try await client.execute(uri: "/v1/sys/health", method: .get) { response throws in
                #expect(response.status == .ok)
                #expect(try json(response.body)["standby"] as? Bool == false)
            }
            try await client.execute(uri: "/v1/sys/leader", method: .get) { response throws in
                let body = try json(response.body)
                #expect(body["ha_enabled"] as? Bool == true && body["is_self"] as? Bool == true)
                #expect(body["leader_address"] as? String == "http://10.0.0.1:8200")
                #expect(body["active_time"] as? String == "2026-12-07T10:00:00Z")
            }
            try await client.execute(uri: "/v1/secret/data/app", method: .get, headers: token(root)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/v1/sys/step-down", method: .put, headers: token(root)) {
                #expect($0.status == .noContent)
            }
            #expect(lease.stepDowns.load(ordering: .relaxed) == 1)
            // A step-down that fails (the lease was lost meanwhile, the database did not answer) is a 503.
            lease.stepDownFails.store(true, ordering: .relaxed)
            try await client.execute(uri: "/v1/sys/step-down", method: .put, headers: token(root)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("step-down failed"))
            }
        }
    }

    @Test func aStandbyAnswers429AndSendsTheRestToTheActiveNode() async throws {
        try await makeApp().test(.live) { client in
            let root = try await initialise(client)
            demote(leader: LeaderAdvertisement(nodeID: "node2", apiAddress: "https://10.0.0.2:8200/", activeTime: "t"))
            try await client.execute(uri: "/v1/sys/health", method: .get) { response throws in
                #expect(response.status.code == 429)
                let body = try json(response.body)
                #expect(body["standby"] as? Bool == true && body["sealed"] as? Bool == false)
            }
            try await client.execute(uri: "/v1/sys/health?standbyok=true", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/v1/sys/health?standbycode=299", method: .get) {
                #expect($0.status.code == 299)
            }
            try await client.execute(uri: "/v1/sys/leader", method: .get) { response throws in
                let body = try json(response.body)
                #expect(body["is_self"] as? Bool == false)
                #expect(body["leader_address"] as? String == "https://10.0.0.2:8200/")
            }
            try await client.execute(uri: "/v1/sys/seal-status", method: .get) { #expect($0.status == .ok) }
            // Reads, writes and sys/ calls alike: 307 to the same target on the active node.
            try await client.execute(uri: "/v1/secret/data/app?version=1", method: .get, headers: token(root)) {
                #expect($0.status == .temporaryRedirect)
                #expect($0.headers[.location] == "https://10.0.0.2:8200/v1/secret/data/app?version=1")
            }
            try await client.execute(
                uri: "/v1/secret/data/new", method: .post, headers: token(root),
                body: ByteBuffer(string: #"{"data":{"a":"b"}}"#)
            ) {
                #expect($0.status == .temporaryRedirect)
                #expect($0.headers[.location] == "https://10.0.0.2:8200/v1/secret/data/new")
            }
            try await client.execute(uri: "/v1/sys/step-down", method: .put, headers: token(root)) {
                #expect($0.status == .temporaryRedirect)
            }
            #expect(lease.stepDowns.load(ordering: .relaxed) == 0)
            // No unexpired lease: 503, never a redirect to a leader whose lease has expired.
            demote(leader: nil)
            let uri = "/v1/secret/data/app"
            try await client.execute(uri: uri, method: .get, headers: token(root)) { response throws in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.location] == nil)
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors == ["local node not active but active cluster node not found"])
            }
        }
    }

    @Test func membershipNeedsItsRightsAndAnUnknownNodeIs404() async throws {
        try await makeApp().test(.live) { client in
            let root = try await initialise(client)
            let weak = try await client.execute(
                uri: "/v1/auth/token/create", method: .post, headers: token(root),
                body: ByteBuffer(string: #"{"policies":["default"]}"#)
            ) { response throws in
                let auth = try #require(try json(response.body)["auth"] as? [String: Any])
                return try #require(auth["client_token"] as? String)
            }
            // A token without sudo on these paths, or without any token: refused, nothing rotated.
            for (uri, method) in [
                ("/v1/sys/cluster/members/node2", HTTPRequest.Method.delete),
                ("/v1/sys/cluster/rotate-root", .put), ("/v1/sys/cluster/members", .get),
            ] {
                try await client.execute(uri: uri, method: method, headers: token(weak)) {
                    #expect($0.status == .forbidden, "\(method) \(uri) with a default-policy token")
                }
                try await client.execute(uri: uri, method: method) {
                    #expect($0.status == .forbidden, "\(method) \(uri) without a token")
                }
            }
            try await client.execute(uri: "/v1/sys/cluster/members/nobody", method: .delete, headers: token(root)) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/v1/sys/cluster/members", method: .get, headers: token(root)) {
                response throws in
                #expect(response.status == .ok)
                let data = try #require(try json(response.body)["data"] as? [String: Any])
                #expect(data["keys"] as? [String] == ["node1"])
            }
        }
    }

    @Test func aWriteAfterTheLeaseWasLostIsRefusedWith503() async throws {
        try await makeApp().test(.live) { client in
            let root = try await initialise(client)
            // The database refuses (the fence) while this node still believes it is active.
            store.active.store(false, ordering: .relaxed)
            try await client.execute(
                uri: "/v1/secret/data/late", method: .post, headers: token(root),
                body: ByteBuffer(string: #"{"data":{"a":"b"}}"#)
            ) { response throws in
                #expect(response.status == .serviceUnavailable)
                let errors = try json(response.body)["errors"] as? [String]
                #expect(errors?.first?.contains("not the active node") == true)
            }
            store.active.store(true, ordering: .relaxed)
            try await client.execute(uri: "/v1/secret/data/late", method: .get, headers: token(root)) {
                #expect($0.status == .notFound)
            }
        }
    }

    @Test func becomingActiveAgainReloadsFromTheStore() async throws {
        try await makeApp().test(.live) { client in
            let root = try await initialise(client)
            demote(leader: nil)
            // Another node (same store) wrote while this one was a standby.
            store.active.store(true, ordering: .relaxed)
            lease.activate()
            try runtime.becameActive()
            try await client.execute(
                uri: "/v1/sys/mounts/kv1", method: .post, headers: token(root),
                body: ByteBuffer(string: #"{"type":"kv"}"#)
            ) { #expect($0.status == .noContent) }
            demote(leader: nil)
            store.active.store(true, ordering: .relaxed)
            lease.activate()
            try runtime.becameActive()
            try await client.execute(uri: "/v1/sys/mounts", method: .get, headers: token(root)) { response throws in
                let body = try json(response.body)
                #expect(body["kv1/"] != nil && body["secret/"] != nil)
            }
        }
    }
}

/// Two nodes on one store: the second joins with the cluster root key (as a join or operator recovery gives it);
/// removing it rotates the root key so it cannot unseal again; a rotation reaches members that are not running.
@Suite struct MembershipTests {
    let store = FencedMemory()

    func seal(_ id: String, key: SymmetricKey) -> ClusterSeal {
        ClusterSeal(
            seal: FixedSeal(key: key),
            members: ClusterMembers(
                backend: store, nodeID: id, cluster: "c", tags: .init(chipID: id, measurement: "00")))
    }

    /// A running member: its runtime opens the store with its own entry.
    func node(_ id: String, key: SymmetricKey) throws -> (Runtime, FakeLease, ClusterSeal) {
        let seal = seal(id, key: key)
        let runtime = try Runtime(
            barrier: Barrier(backend: store), seal: seal, storageType: "postgresql", clustered: true,
            clusterName: "c")
        let lease = FakeLease(nodeID: id, apiAddress: "http://\(id):8200")
        runtime.attach(lease)
        return (runtime, lease, seal)
    }

    func request(_ operation: VaultRequest.Operation, _ path: String) -> VaultRequest {
        VaultRequest(operation: operation, path: path, body: .null, query: [:], token: nil)
    }

    @Test func aRemovedNodeCannotUnsealAgainAndTheOthersFollowTheRotation() throws {
        let key1 = SymmetricKey(size: .bits256)
        let key2 = SymmetricKey(size: .bits256)
        let key3 = SymmetricKey(size: .bits256)
        let (runtime1, lease1, seal1) = try node("node1", key: key1)
        store.active.store(true, ordering: .relaxed)
        lease1.activate()
        try runtime1.becameActive()
        _ = try runtime1.initialize()
        let firstRoot = try seal1.rootKey()
        // node2 and node3 join: each stores its own entry for the cluster root key.
        let seal2 = seal("node2", key: key2)
        try seal2.enroll(firstRoot)
        let seal3 = seal("node3", key: key3)
        try seal3.enroll(firstRoot)
        #expect(try seal2.rootKey() == firstRoot)
        #expect(try seal3.rootKey() == firstRoot)

        let listed = try runtime1.clusterRequest(request(.list, "sys/cluster/members"), path: "members")
        #expect(listed.data?["keys"] == .array([.string("node1"), .string("node2"), .string("node3")]))
        // The active node cannot remove itself.
        #expect(throws: VaultError.self) {
            try runtime1.clusterRequest(request(.delete, "sys/cluster/members/node1"), path: "members/node1")
        }
        let removed = try runtime1.clusterRequest(request(.delete, "sys/cluster/members/node2"), path: "members/node2")
        #expect(removed.data?["generation"] == .int(2))
        // node2 restarts: no entry, so it is not a member; the key it had no longer opens the keyring.
        #expect(throws: ClusterMemberError.self) { try seal("node2", key: key2).rootKey() }
        #expect(throws: ClusterMemberError.self) { try node("node2", key: key2) }
        #expect(!Barrier(backend: store).opens(rootKey: firstRoot))
        // node3 was not running: its entry holds the new key, which opens the keyring.
        let newRoot = try seal3.rootKey()
        #expect(newRoot != firstRoot)
        #expect(Barrier(backend: store).opens(rootKey: newRoot))
        // A plain rotation: every remaining member follows, the active node keeps serving.
        _ = try runtime1.clusterRequest(request(.update, "sys/cluster/rotate-root"), path: "rotate-root")
        #expect(try seal1.rootKey() == seal3.rootKey())
        #expect(try seal1.rootKey() != newRoot)
        #expect(Barrier(backend: store).opens(rootKey: try seal1.rootKey()))
        // A standby cannot rotate (the store's fence refuses, and nothing changes).
        store.active.store(false, ordering: .relaxed)
        let before = try seal3.rootKey()
        #expect(throws: VaultError.self) {
            try runtime1.clusterRequest(request(.update, "sys/cluster/rotate-root"), path: "rotate-root")
        }
        #expect(try seal3.rootKey() == before)
        // node3 becomes active with its own entry, after another node rotated while it was away.
        let (runtime3, lease3, _) = try node("node3", key: key3)
        store.active.store(true, ordering: .relaxed)
        lease3.activate()
        try runtime3.becameActive()
        #expect(runtime3.services != nil)
    }
}

@Suite struct LeaderAdvertisementTests {
    @Test func onlyAnAdvertisementSignedByAMemberVerifies() throws {
        let key = SymmetricKey(size: .bits256)
        let advertisement = LeaderAdvertisement(
            nodeID: "node1", apiAddress: "https://10.0.0.1:8200", activeTime: "2026-12-07T10:00:00Z")
        #expect(!advertisement.verifies(with: key))
        let signed = advertisement.signed(with: key)
        #expect(signed.verifies(with: key))
        #expect(!signed.verifies(with: SymmetricKey(size: .bits256)))
        // The database's operators rewrite the address (or the node) and keep the MAC: refused.
        var moved = signed
        moved.apiAddress = "https://attacker.example:8200"
        #expect(!moved.verifies(with: key))
        var renamed = signed
        renamed.nodeID = "node2"
        #expect(!renamed.verifies(with: key))
        // It round-trips through the lease row's JSON.
        let json = try JSONEncoder().encode(signed)
        #expect(try JSONDecoder().decode(LeaderAdvertisement.self, from: json) == signed)
        #expect(String(decoding: json, as: UTF8.self).contains("\"api_addr\""))
    }

    @Test func theKeyComesFromTheClustersPathKeyAndNeedsAnUnsealedBarrier() throws {
        let store = FencedMemory()
        store.active.store(true, ordering: .relaxed)
        let seal = ClusterSeal(
            seal: FixedSeal(key: SymmetricKey(size: .bits256)),
            members: ClusterMembers(
                backend: store, nodeID: "n", cluster: "c", tags: .init(chipID: "0", measurement: "0")))
        let runtime = try Runtime(
            barrier: Barrier(backend: store), seal: seal, storageType: "postgresql", clustered: true)
        #expect(runtime.advertisementKey() == nil)
        let lease = FakeLease(nodeID: "n")
        runtime.attach(lease)
        lease.activate()
        try runtime.becameActive()
        #expect(lease.keysLearned.load(ordering: .relaxed) == 0)
        _ = try runtime.initialize()
        let key = try #require(runtime.advertisementKey())
        // The lease is told once, so the active node signs its advertisement at once (not at its next renewal).
        #expect(lease.keysLearned.load(ordering: .relaxed) == 1)
        try runtime.becameActive()
        #expect(lease.keysLearned.load(ordering: .relaxed) == 1)
        // Another member (same store, its own barrier unsealed with the cluster root key) derives the same key.
        let other = Barrier(backend: store)
        try other.unseal(rootKey: try seal.rootKey())
        let pathKey = try #require(try HiddenPaths.key(in: other, create: false))
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: pathKey, info: Array("vhsm/cluster/leader/v1".utf8), outputByteCount: 32)
        #expect(derived == key)
    }
}

@Suite struct SharedKeyringTests {
    @Test func aNodeReadsWhatAnotherWroteUnderATermItHasNotLoaded() throws {
        let store = MemoryBackend()
        let rootKey = SymmetricKey(size: .bits256)
        let active = Barrier(backend: store)
        try active.initialize(rootKey: rootKey)
        let standby = Barrier(backend: store)
        try standby.unseal(rootKey: rootKey)
        _ = try active.rotate()
        try active.put("core/cluster-policy-like", Array("new term".utf8))
        #expect(try standby.get("core/cluster-policy-like") == Array("new term".utf8))
        #expect(try standby.keyStatus().term == active.keyStatus().term)
        // A frame under a term that no stored keyring has is still refused.
        let other = Barrier(backend: MemoryBackend())
        try other.initialize(rootKey: rootKey)
        _ = try other.rotate()
        _ = try other.rotate()
        try other.put("x", [1])
        try store.put("x", try #require(try other.backend.get("x")))
        #expect(throws: BarrierError.self) { try standby.get("x") }
    }
}

import Foundation
import Synchronization
import Testing

@testable import KeyService

/// The transit key store: a bounded cache of decoded keys that is never stale and never makes the event loop wait
/// for a write.
@Suite struct TransitStoreTests {
    /// A dev-mode core with a root token and a transit mount, over `backend`.
    struct Server {
        let services: Services
        let core: VaultCore
        static let token = "store-root"

        init(backend: any StorageBackend = MemoryBackend()) throws {
            services = try Services.open(EngineStorage(backend: backend, prefix: ""))
            _ = try services.tokens.create(
                id: Self.token,
                entry: .root(accessor: "acc"))
            try services.mounts.enable(path: "transit/", type: "transit", description: "", options: [:])
            core = VaultCore(
                runtime: Runtime(
                    state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                    services: services))
        }

        var store: TransitStore {
            get throws {
                let (mount, _) = try #require(services.mounts.route("transit/keys"))
                return try #require(mount.backend as? TransitBackend).store
            }
        }

        func request(
            _ operation: VaultRequest.Operation, _ path: String, _ body: [String: JSONValue] = [:]
        )
            -> VaultRequest
        {
            VaultRequest(operation: operation, path: path, body: .object(body), query: [:], token: Self.token)
        }

        /// Through the task path.
        func call(
            _ operation: VaultRequest.Operation, _ path: String, _ body: [String: JSONValue] = [:]
        )
            async throws -> VaultReply
        {
            try await core.handle(request(operation, path, body))
        }

        /// On the event loop's path; nil when the loop hands the request to a task.
        func onLoop(
            _ operation: VaultRequest.Operation, _ path: String, _ body: [String: JSONValue] = [:]
        ) throws
            -> VaultReply?
        {
            try core.handleOnLoop(request(operation, path, body))?.get()
        }
    }

    // MARK: The cache

    @Test func leastRecentlyUsedDropsTheOldestAndReusesSlots() {
        var cache = LeastRecentlyUsed<Int>(capacity: 3)
        for (index, key) in ["a", "b", "c"].enumerated() { cache.set(key, index) }
        #expect(cache.keys == ["c", "b", "a"])
        #expect(cache.get("a") == 0)
        cache.set("d", 3)
        #expect(cache.keys == ["d", "a", "c"])
        #expect(cache.peek("b") == nil)
        // peek does not change the order; set of a present key updates it and makes it the newest.
        #expect(cache.peek("c") == 2)
        cache.set("c", 20)
        #expect(cache.keys == ["c", "d", "a"])
        #expect(cache.get("c") == 20)
        cache.remove("d")
        #expect(cache.keys == ["c", "a"] && cache.count == 2)
        cache.set("e", 5)
        cache.set("f", 6)
        #expect(cache.keys == ["f", "e", "c"])
        cache.resize(1)
        #expect(cache.keys == ["f"] && cache.capacity == 1)
        cache.resize(0)
        #expect(cache.capacity == 1)
        cache.remove("f")
        cache.remove("f")
        #expect(cache.keys.isEmpty && cache.count == 0)
        for index in 0..<100 {
            cache.resize(4)
            cache.set("k\(index)", index)
        }
        #expect(cache.keys == ["k99", "k98", "k97", "k96"])
    }

    @Test func theKeyCacheHoldsAtMostTheConfiguredSize() async throws {
        let server = try Server()
        let store = try server.store
        #expect(TransitStore.cacheLimit(0) == TransitStore.defaultCacheLimit)
        #expect(TransitStore.cacheLimit(10) == 10)
        _ = try await server.call(.update, "transit/cache-config", ["size": .int(10)])
        var ciphertexts: [String: JSONValue] = [:]
        for index in 0..<15 {
            let reply = try await server.call(.update, "transit/encrypt/k\(index)", ["plaintext": .string("aGk=")])
            ciphertexts["k\(index)"] = try #require(reply.data?["ciphertext"])
        }
        #expect(store.cachedNames == (5..<15).reversed().map { "k\($0)" })
        // A key the cache dropped is read back from storage, on the task path.
        #expect(try server.onLoop(.update, "transit/decrypt/k0", ["ciphertext": ciphertexts["k0"]!]) == nil)
        let decrypted = try await server.call(.update, "transit/decrypt/k0", ["ciphertext": ciphertexts["k0"]!])
        #expect(decrypted.data?["plaintext"] == .string("aGk="))
        #expect(store.cachedNames.count == 10 && store.cachedNames.first == "k0")
        // A smaller size applies at once; 0 is vhsmd's default bound.
        _ = try await server.call(.update, "transit/cache-config", ["size": .int(12)])
        _ = try await server.call(.update, "transit/cache-config", ["size": .int(10)])
        #expect(store.cachedNames.count == 10)
        let refused = await #expect(throws: VaultError.self) {
            try await server.call(.update, "transit/cache-config", ["size": .int(5)])
        }
        #expect(refused?.messages == ["size must be 0 or a value greater or equal to 10"])
        _ = try await server.call(.update, "transit/cache-config", ["size": .int(0)])
        #expect(try await server.call(.read, "transit/cache-config").data?["size"] == .int(0))
        for index in 0..<15 { _ = try await server.call(.read, "transit/keys/k\(index)") }
        #expect(store.cachedNames.count == 15)
    }

    /// After a write, the event loop's path serves the new key: a rotation's version encrypts, a raised
    /// `min_decryption_version` refuses the old ciphertext, a deleted key is gone.
    @Test func theEventLoopNeverServesAKeyAWriteChanged() async throws {
        let server = try Server()
        _ = try await server.call(.update, "transit/keys/k")
        let first = try #require(try server.onLoop(.update, "transit/encrypt/k", ["plaintext": .string("aGk=")]))
        let old = try #require(first.data?["ciphertext"])
        _ = try await server.call(.update, "transit/keys/k/rotate")
        let second = try #require(try server.onLoop(.update, "transit/encrypt/k", ["plaintext": .string("aGk=")]))
        #expect(second.data?["key_version"] == .int(2))
        _ = try await server.call(
            .update, "transit/keys/k/config", ["min_decryption_version": .int(2), "deletion_allowed": .bool(true)])
        #expect(throws: VaultError.self) { try server.onLoop(.update, "transit/decrypt/k", ["ciphertext": old]) }
        #expect(try server.onLoop(.read, "transit/keys/k")?.data?["min_decryption_version"] == .int(2))
        _ = try await server.call(.delete, "transit/keys/k")
        #expect(try server.onLoop(.update, "transit/encrypt/k", ["plaintext": .string("aGk=")]) == nil)
        #expect(try server.onLoop(.read, "transit/keys/k") == nil)
    }

    /// A write holds its key's lock across the storage write, but never the cache's: the event loop's lookups
    /// answer at once, the key being written is not served from the cache until its write has committed, and other
    /// keys are served as before.
    @Test func eventLoopLookupsDoNotWaitForAKeyWrite() async throws {
        let backend = GatedBackend()
        let server = try Server(backend: backend)
        _ = try await server.call(.update, "transit/keys/k")
        _ = try await server.call(.update, "transit/keys/other")
        let store = try server.store
        backend.close()
        let writer = Thread {
            _ = try? store.modify("k") { current in
                var key = try #require(current)
                try key.rotate()
                return (.put(key), ())
            }
        }
        writer.start()
        #expect(try await backend.waitForBlockedWriter(seconds: 30))
        // Whatever happens, the writer is let go after 2 s; a lookup that waited for it takes that long.
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { backend.open() }
        let clock = ContinuousClock()
        var served: (other: VaultReply?, written: VaultReply?, cached: TransitKey?) = (nil, nil, nil)
        let elapsed = try clock.measure {
            served.other = try server.onLoop(.update, "transit/encrypt/other", ["plaintext": .string("aGk=")])
            served.written = try server.onLoop(.update, "transit/encrypt/k", ["plaintext": .string("aGk=")])
            served.cached = store.cachedKey("k")
        }
        #expect(elapsed < .seconds(1), "\(elapsed)")
        #expect(served.other?.data?["ciphertext"] != nil)
        #expect(served.written == nil || backend.isOpen)
        #expect(served.cached == nil || backend.isOpen)
        #expect(try await backend.waitForOpen(seconds: 30))
        // Once written, the task path sees version 2, and so does the loop.
        let read = try await server.call(.read, "transit/keys/k")
        #expect(read.data?["latest_version"] == .int(2))
        #expect(try server.onLoop(.read, "transit/keys/k")?.data?["latest_version"] == .int(2))
    }
}

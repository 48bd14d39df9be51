import Dispatch
import Foundation
import Synchronization
import Testing

@testable import KeyService

/// KV v2 changes a secret by reading its record, changing it and writing it back. `KVStore` holds a per-secret lock
/// around that (Vault's per-key locks): changes of one secret never interleave, so no version is lost and a
/// check-and-set succeeds once, while writes of different secrets reach the storage at the same time (a database
/// commits them together).
@Suite struct KVConcurrencyTests {
    /// A memory store whose `put`s of two secrets wait for each other (a rendezvous): it lets both through only if
    /// both are inside `put` at the same time, which a store that ran KV writes one at a time never does.
    final class Rendezvous: StorageBackend {
        let inner = MemoryBackend()
        let inside = Mutex(Set<String>())
        let met = DispatchSemaphore(value: 0)
        let paths: Set<String>

        init(paths: Set<String>) { self.paths = paths }

        func get(_ path: String) throws -> [UInt8]? { try inner.get(path) }
        func delete(_ path: String) throws { try inner.delete(path) }
        func list(prefix: String) throws -> [String] { try inner.list(prefix: prefix) }
        func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
            try inner.transaction(body)
        }

        struct Alone: Error {}

        func put(_ path: String, _ value: [UInt8]) throws {
            if paths.contains(path) {
                let everyone = inside.withLock { inside in
                    inside.insert(path)
                    return inside == paths
                }
                if everyone {
                    for _ in 1..<paths.count { met.signal() }
                } else if met.wait(timeout: .now() + 30) == .timedOut {
                    throw Alone()
                }
            }
            try inner.put(path, value)
        }
    }

    static func store(_ backend: any StorageBackend = MemoryBackend()) -> KVStore {
        KVStore(storage: EngineStorage(backend: backend, prefix: ""))
    }

    /// Runs `count` bodies on threads of their own (not the test's cooperative pool, which may have one thread).
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                body(index)
                group.leave()
            }.start()
        }
        group.wait()
    }

    @Test(.timeLimit(.minutes(2)))
    func writesOfOneSecretEachGetTheirOwnVersion() throws {
        let store = Self.store()
        let versions = Mutex<[Int64]>([])
        Self.onThreads(24) { index in
            let written = try? store.write("hot", data: ["writer": .int(Int64(index))], cas: nil)
            if case .int(let version)? = written?["version"] { versions.withLock { $0.append(version) } }
        }
        #expect(versions.withLock { $0.sorted() } == Array(1...24))
        let metadata = try #require(try store.metadata("hot"))
        #expect(metadata["current_version"] == .int(24))
    }

    @Test(.timeLimit(.minutes(2)))
    func aCheckAndSetSucceedsOnceAmongRacingWriters() throws {
        let store = Self.store()
        for round in 0..<10 {
            let current = Int64(round)
            let won = Atomic<Int>(0)
            Self.onThreads(8) { index in
                if (try? store.write("cas", data: ["i": .int(Int64(index))], cas: current)) != nil {
                    won.add(1, ordering: .relaxed)
                }
            }
            #expect(won.load(ordering: .relaxed) == 1, "round \(round)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func racingPatchesOfOneSecretAllLand() throws {
        let store = Self.store()
        _ = try store.write("merged", data: [:], cas: nil)
        Self.onThreads(16) { index in _ = try? store.patch("merged", with: ["k\(index)": .int(1)], cas: nil) }
        let reply = try store.read("merged", version: nil)
        guard case .object(let members)? = reply.data, case .object(let data)? = members["data"] else {
            Issue.record("no data after the patches")
            return
        }
        #expect(Set(data.keys) == Set((0..<16).map { "k\($0)" }))
    }

    @Test(.timeLimit(.minutes(2)))
    func writesOfDifferentSecretsReachTheStorageTogether() throws {
        let backend = Rendezvous(paths: ["secrets/a", "secrets/b"])
        let store = Self.store(backend)
        let failures = Mutex<[String]>([])
        Self.onThreads(2) { index in
            do { _ = try store.write(index == 0 ? "a" : "b", data: ["x": .int(1)], cas: nil) } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "a write waited alone: the two secrets' writes were serialised")
        #expect(try store.metadata("a") != nil && store.metadata("b") != nil)
    }
}

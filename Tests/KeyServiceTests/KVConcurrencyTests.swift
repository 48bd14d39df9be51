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

/// Writes of one secret that queue behind a write in progress go to the storage together, as one lot (group commit):
/// one read and one write of the secret's record, and each writer still gets its own version or its own refusal.
@Suite struct KVWriteLotTests {
    /// A memory store whose first `put` of `path` waits until `opened` is signalled, and which counts and can fail
    /// those puts.
    final class Gate: StorageBackend {
        let inner = MemoryBackend()
        let path: String
        let puts = Atomic<Int>(0)
        let failing = Atomic<Bool>(false)
        let entered = DispatchSemaphore(value: 0)
        let opened = DispatchSemaphore(value: 0)

        init(path: String) { self.path = path }

        func get(_ path: String) throws -> [UInt8]? { try inner.get(path) }
        func delete(_ path: String) throws { try inner.delete(path) }
        func list(prefix: String) throws -> [String] { try inner.list(prefix: prefix) }
        func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
            try inner.transaction(body)
        }

        struct Refused: Error, CustomStringConvertible {
            var description: String { "the disk refused the write" }
        }

        func put(_ path: String, _ value: [UInt8]) throws {
            if path == self.path {
                if puts.add(1, ordering: .relaxed).newValue == 1 {
                    entered.signal()
                    opened.wait()
                }
                if failing.load(ordering: .relaxed) { throw Refused() }
            }
            try inner.put(path, value)
        }
    }

    /// Starts `write` on a thread of its own, where `queued` writes of `path` wait already, and returns once it waits
    /// too (so the lot's order is the order of the calls).
    static func queue(
        _ store: KVStore, _ path: String, after queued: Int, _ group: DispatchGroup,
        _ write: @escaping @Sendable () -> Void
    ) {
        group.enter()
        Thread {
            write()
            group.leave()
        }.start()
        while store.writes.waitingCount(path) < queued + 1 { usleep(1000) }
    }

    @Test(.timeLimit(.minutes(2)))
    func writesQueuedBehindAWriteAreOneLotAndEachGetsItsOwnAnswer() throws {
        let backend = Gate(path: "secrets/hot")
        let store = KVConcurrencyTests.store(backend)
        let group = DispatchGroup()
        let answers = Mutex<[Int: Result<Int64, VaultError>]>([:])
        @Sendable func write(_ index: Int, cas: Int64?) -> @Sendable () -> Void {
            {
                let answer = Result { () throws(VaultError) -> Int64 in
                    guard
                        case .int(let version)? = try store.write("hot", data: ["i": .int(Int64(index))], cas: cas)[
                            "version"]
                    else { return -1 }
                    return version
                }
                answers.withLock { $0[index] = answer }
            }
        }
        // Writer 0 enters the storage and is held there; 1…6 queue behind it in this order.
        group.enter()
        Thread {
            write(0, cas: nil)()
            group.leave()
        }.start()
        backend.entered.wait()
        KVWriteLotTests.queue(store, "hot", after: 0, group, write(1, cas: 1))  // matches after writer 0: version 2
        KVWriteLotTests.queue(store, "hot", after: 1, group, write(2, cas: 1))  // no longer matches: refused
        for index in 3...6 { KVWriteLotTests.queue(store, "hot", after: index - 1, group, write(index, cas: nil)) }
        backend.opened.signal()
        group.wait()
        let got = answers.withLock { $0 }
        #expect(try got[0]?.get() == 1)
        #expect(try got[1]?.get() == 2)
        #expect(throws: VaultError.badRequest("check-and-set parameter did not match the current version")) {
            try got[2]?.get()
        }
        #expect(try (3...6).map { try got[$0]?.get() } == [3, 4, 5, 6])
        // Two writes of the record: writer 0's, then the lot of six.
        #expect(backend.puts.load(ordering: .relaxed) == 2)
        #expect(store.writes.largestLot.load(ordering: .relaxed) == 6)
        let reply = try store.read("hot", version: nil)
        guard case .object(let members)? = reply.data, case .object(let data)? = members["data"] else {
            Issue.record("no current version")
            return
        }
        #expect(data == ["i": .int(6)])
        #expect(try store.metadata("hot")?["current_version"] == .int(6))
    }

    @Test(.timeLimit(.minutes(2)))
    func aLotWhoseWriteFailsAnswersTheFailureToEachAndWritesNothing() throws {
        let backend = Gate(path: "secrets/hot")
        let store = KVConcurrencyTests.store(backend)
        let group = DispatchGroup()
        let failures = Mutex<[String]>([])
        @Sendable func write(_ index: Int) {
            do { _ = try store.write("hot", data: ["i": .int(Int64(index))], cas: nil) } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        group.enter()
        Thread {
            write(0)
            group.leave()
        }.start()
        backend.entered.wait()
        for index in 1...3 { KVWriteLotTests.queue(store, "hot", after: index - 1, group) { write(index) } }
        backend.failing.store(true, ordering: .relaxed)
        backend.opened.signal()
        group.wait()
        // Writer 0's own write failed, and so did the lot of three: four answers, each naming the storage's refusal.
        #expect(failures.withLock { $0.count } == 4)
        #expect(failures.withLock { $0 }.allSatisfy { $0.contains("the disk refused the write") })
        #expect(try store.metadata("hot") == nil)
    }
}

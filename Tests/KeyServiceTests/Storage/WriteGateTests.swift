import Dispatch
import Foundation
import Synchronization
import Testing

@testable import KeyService

/// The PostgreSQL store's `WriteGate`: single writes run together (so the database can commit them together),
/// a transaction runs alone. Ordering is checked with semaphores, not with clocks; the 30 s waits only turn a
/// deadlock into a failure.
@Suite struct WriteGateTests {
    static func thread(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        Thread {
            body()
            done.signal()
        }.start()
        return done
    }

    @Test(.timeLimit(.minutes(2)))
    func singleWritesRunTogether() {
        let gate = WriteGate()
        let inside = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let met = Atomic<Int>(0)
        // Each body waits until the other one is inside too: possible only if both are in the gate at once.
        let first = Self.thread {
            gate.together {
                inside.0.signal()
                if inside.1.wait(timeout: .now() + 30) == .success { met.add(1, ordering: .relaxed) }
            }
        }
        let second = Self.thread {
            gate.together {
                inside.1.signal()
                if inside.0.wait(timeout: .now() + 30) == .success { met.add(1, ordering: .relaxed) }
            }
        }
        first.wait()
        second.wait()
        #expect(met.load(ordering: .relaxed) == 2)
    }

    @Test(.timeLimit(.minutes(2)))
    func aTransactionWaitsForRunningWritesAndHoldsBackNewOnes() {
        let gate = WriteGate()
        let events = Mutex<[String]>([])
        let writeInside = DispatchSemaphore(value: 0)
        let releaseWrite = DispatchSemaphore(value: 0)
        let write = Self.thread {
            gate.together {
                writeInside.signal()
                _ = releaseWrite.wait(timeout: .now() + 30)
                events.withLock { $0.append("write ends") }
            }
        }
        writeInside.wait()
        let transactionInside = DispatchSemaphore(value: 0)
        let releaseTransaction = DispatchSemaphore(value: 0)
        let transaction = Self.thread {
            gate.alone {
                events.withLock { $0.append("transaction starts") }
                transactionInside.signal()
                _ = releaseTransaction.wait(timeout: .now() + 30)
                events.withLock { $0.append("transaction ends") }
            }
        }
        // The transaction cannot start while the write runs.
        #expect(transactionInside.wait(timeout: .now() + 0.5) == .timedOut)
        releaseWrite.signal()
        write.wait()
        transactionInside.wait()
        // A write arriving now waits for the transaction.
        let late = Self.thread { gate.together { events.withLock { $0.append("late write") } } }
        #expect(late.wait(timeout: .now() + 0.5) == .timedOut)
        releaseTransaction.signal()
        transaction.wait()
        late.wait()
        #expect(
            events.withLock { $0 } == ["write ends", "transaction starts", "transaction ends", "late write"])
    }
}

/// Request tasks of a clustered vhsmd run on `BlockingTaskExecutor`'s threads: as many storage calls can block at
/// once as it has threads, whatever the number of CPUs (Swift's global executor has one thread per CPU).
@Suite struct BlockingTaskExecutorTests {
    @Test(.timeLimit(.minutes(2)))
    func asManyTasksAsThreadsBlockAtOnce() async {
        let count = 6
        let executor = BlockingTaskExecutor(threads: count)
        let arrived = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let allBlocked = Atomic<Bool>(true)
        // Lets the tasks go once all `count` of them block at the same time (on a thread of its own).
        let referee = WriteGateTests.thread {
            for _ in 0..<count where arrived.wait(timeout: .now() + 30) == .timedOut {
                allBlocked.store(false, ordering: .relaxed)
            }
            for _ in 0..<count { go.signal() }
        }
        let released = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<count {
                group.addTask(executorPreference: executor) {
                    arrived.signal()
                    return go.wait(timeout: .now() + 30) == .success
                }
            }
            var released = 0
            for await one in group where one { released += 1 }
            return released
        }
        referee.wait()
        let all = allBlocked.load(ordering: .relaxed)
        #expect(all, "fewer than \(count) tasks were blocked at once")
        #expect(released == count)
    }
}

import Dispatch
import Synchronization

/// Group commit for one key. Changes of a key that arrive while another change of it is being written wait, and the
/// next writer applies all of them together, in the order they queued: one read, one write and one commit for the lot
/// instead of one each. Each change still gets its own answer: its result, its own refusal (say, a check-and-set that
/// no longer matches), or the lot's failure when the lot's write fails (then none of it was written).
///
/// A change is answered only after the write that holds it returns, so it is acknowledged only once it is durable.
/// Changes of one lot were all in flight together; applying them in queue order is one order they could have run in.
///
/// Waiting blocks the thread, as `KeyedLocks` does: the writes block too.
final class KeyedBatches<Change: Sendable, Answer: Sendable, Failure: Error>: Sendable {
    typealias Outcome = Result<Answer, Failure>

    private final class Slot: Sendable {
        enum Turn: Sendable {
            case answered(Outcome)
            /// The previous writer is done: this slot writes the next lot.
            case lead
        }
        let change: Change
        let turn = Mutex<Turn?>(nil)
        let ready = DispatchSemaphore(value: 0)
        init(_ change: Change) { self.change = change }

        func give(_ turn: Turn) {
            self.turn.withLock { $0 = turn }
            ready.signal()
        }
    }

    /// A key present: a lot of it is being written; its value: the changes waiting for the next lot.
    private let waiting = Mutex<[String: [Slot]]>([:])
    /// The largest lot written at once so far (for the tests and the benchmarks' explanation).
    let largestLot = Atomic<Int>(0)

    init() {}

    /// How many changes of `key` wait for the next lot.
    func waitingCount(_ key: String) -> Int { waiting.withLock { $0[key]?.count ?? 0 } }

    /// Applies `change` to `key` within a lot: `write` gets the lot's changes in order and answers one outcome each.
    func submit(
        _ key: String, _ change: Change, write: ([Change]) -> [Outcome]
    ) -> Outcome {
        let slot = Slot(change)
        let leads = waiting.withLock { waiting in
            if waiting[key] != nil {
                waiting[key]!.append(slot)
                return false
            }
            waiting[key] = []
            return true
        }
        if !leads {
            slot.ready.wait()
            if case .answered(let outcome)? = slot.turn.withLock({ $0 }) { return outcome }
        }
        let lot =
            [slot]
            + waiting.withLock { waiting in
                defer { waiting[key] = [] }
                return waiting[key] ?? []
            }
        largestLot.fetchMax(lot.count)
        var outcomes = write(lot.map(\.change))
        precondition(outcomes.count == lot.count, "a lot's write answered \(outcomes.count) of \(lot.count) changes")
        let next = waiting.withLock { waiting -> Slot? in
            guard let first = waiting[key]?.first else {
                waiting[key] = nil
                return nil
            }
            waiting[key]!.removeFirst()
            return first
        }
        for (other, outcome) in zip(lot.dropFirst(), outcomes.dropFirst()) { other.give(.answered(outcome)) }
        next?.give(.lead)
        return outcomes.removeFirst()
    }
}

extension Atomic where Value == Int {
    fileprivate func fetchMax(_ value: Int) {
        var current = load(ordering: .relaxed)
        while value > current {
            let (exchanged, original) = compareExchange(
                expected: current, desired: value, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

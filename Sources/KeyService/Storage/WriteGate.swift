import Dispatch
import NIOConcurrencyHelpers

/// Single writes together, transactions alone: any number of `together` bodies run at once, an `alone` body runs
/// with none of them (and no other `alone`). A waiting `alone` holds the turnstile, so new single writes queue behind
/// it and a stream of them cannot starve a transaction. The bodies block their threads (as the store's calls do).
package final class WriteGate: Sendable {
    /// Taken by every entry; held by `alone` for its whole body.
    private let turnstile = NIOLock()
    /// How many `together` bodies run (the first in takes `empty`, the last out gives it back).
    private let running = NIOLockedValueBox(0)
    /// Free when no body runs: taken by the first `together` in, or by `alone`.
    private let empty = DispatchSemaphore(value: 1)

    package init() {}

    package func together<Result>(_ body: () throws -> Result) rethrows -> Result {
        turnstile.withLock {}
        running.withLockedValue { count in
            if count == 0 { empty.wait() }
            count += 1
        }
        defer {
            running.withLockedValue { count in
                count -= 1
                if count == 0 { empty.signal() }
            }
        }
        return try body()
    }

    package func alone<Result>(_ body: () throws -> Result) rethrows -> Result {
        try turnstile.withLock {
            empty.wait()
            defer { empty.signal() }
            return try body()
        }
    }
}

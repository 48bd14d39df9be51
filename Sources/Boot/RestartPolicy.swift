/// When to restart the supervised service: exponential backoff over consecutive fast failures, and a limit
/// after which the failure action applies.
///
/// A run shorter than `fastRun` is a fast failure. The n-th fast failure in a row waits
/// `initial × 2^(n−1)`, at most `maximum`; the `limit`-th gives up. A longer run resets the count and restarts
/// after `initial`. A service that exits cleanly (status 0) outside a shutdown is restarted the same way: PID 1
/// has nothing else to do.
struct RestartPolicy: Equatable, Sendable {
    enum Decision: Equatable, Sendable {
        case restart(after: Duration)
        case giveUp(fastFailures: Int)
    }

    var initial: Duration
    var maximum: Duration
    var fastRun: Duration
    var limit: Int
    private(set) var consecutiveFastFailures = 0

    init(initial: Duration, maximum: Duration, fastRun: Duration, limit: Int) {
        self.initial = initial
        self.maximum = maximum
        self.fastRun = fastRun
        self.limit = limit
    }

    init(_ config: BootConfig.Restart) {
        self.init(
            initial: .milliseconds(config.initialMilliseconds), maximum: .milliseconds(config.maximumMilliseconds),
            fastRun: .milliseconds(config.fastRunMilliseconds), limit: config.fastFailureLimit)
    }

    /// Records an exit after `runTime` and says what to do.
    mutating func serviceExited(after runTime: Duration) -> Decision {
        guard runTime < fastRun else {
            consecutiveFastFailures = 0
            return .restart(after: initial)
        }
        consecutiveFastFailures += 1
        if consecutiveFastFailures >= limit { return .giveUp(fastFailures: consecutiveFastFailures) }
        return .restart(after: delay(forFailure: consecutiveFastFailures))
    }

    /// `initial × 2^(n−1)` capped at `maximum`, without overflowing for large n.
    func delay(forFailure n: Int) -> Duration {
        var delay = initial
        var step = 1
        while step < n, delay < maximum {
            delay *= 2
            step += 1
        }
        return min(delay, maximum)
    }
}

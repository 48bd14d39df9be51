import Glibc

/// CLOCK_MONOTONIC, the clock stage timings and restart delays use: it starts near kernel start and never
/// jumps (there is no RTC adjustment in the initramfs, and wall time means nothing before the network).
enum Monotonic {
    static func now() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }

    /// Whole milliseconds, for console lines.
    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

import FoundationEssentials
import SNP

/// Wall-clock time as the key record stores it (Unix nanoseconds) and as Vault prints it.
enum TransitTime {
    /// Now, in Unix nanoseconds.
    static func now() -> Int64 {
        let interval = Date().timeIntervalSince1970
        return Int64(interval * 1_000_000_000)
    }

    /// Whole Unix seconds, the value Vault lists for symmetric key versions.
    static func unixSeconds(_ nanoseconds: Int64) -> Int64 {
        nanoseconds >= 0 ? nanoseconds / 1_000_000_000 : (nanoseconds + 1) / 1_000_000_000 - 1
    }

    /// `date` as `rfc3339(_:)` prints it.
    static func rfc3339(_ date: Date) -> String {
        rfc3339(Int64((date.timeIntervalSince1970 * 1_000_000_000).rounded()))
    }

    /// RFC 3339 in UTC with Go's `RFC3339Nano` fraction (trailing zeros dropped), e.g.
    /// `2026-11-29T17:49:18.258698402Z`.
    static func rfc3339(_ nanoseconds: Int64) -> String {
        let seconds = unixSeconds(nanoseconds)
        let fraction = nanoseconds - seconds * 1_000_000_000
        let (date, second) = CivilDate.split(unixSeconds: seconds)
        let (year, month, day) = (Int64(date.year), Int64(date.month), Int64(date.day))
        let secondOfDay = Int64(second)

        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var text =
            "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
        if fraction > 0 {
            var digits = pad(fraction, 9)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "Z"
    }
}

import FoundationEssentials
import Synchronization

/// Why `auth/sev-snp` issued no nonce or refused one.
enum LoginNonceError: Error, Equatable, CustomStringConvertible {
    /// `capacity` nonces are outstanding and none has expired: the answer is 429, with this Retry-After.
    case tooMany(retryAfter: TimeInterval)
    /// The nonce was never issued, was already spent, or expired long enough ago to have been purged.
    case unknown
    /// The nonce was issued but its time to live had passed when it was presented.
    case expired

    var description: String {
        switch self {
        case .tooMany(let retryAfter):
            "too many login nonces are outstanding: the store holds at most its capacity of unspent, unexpired "
                + "nonces; retry in \(Int(retryAfter.rounded(.up))) s, when the oldest expires"
        case .unknown:
            "the login nonce is not one vhsmd issued, or it was already spent: a nonce from auth/sev-snp/nonce "
                + "serves one login"
        case .expired:
            "the login nonce has expired: request a fresh one from auth/sev-snp/nonce and attest again"
        }
    }
}

/// The single-use nonces of `auth/sev-snp/nonce` and `auth/sev-snp/login`: 32 random bytes from the system RNG,
/// each valid for `timeToLive` and spent by the first login that presents it (whether or not that login succeeds,
/// so a report is never tried twice). At most `capacity` are outstanding: expired ones are purged first, and past
/// the bound `issue` refuses (`tooMany`, an HTTP 429) instead of growing. A class behind a mutex, like the policy
/// store, so that a request never suspends on it. The nonces are the map's keys; they are never logged.
final class LoginNonces: Sendable {
    static let nonceCount = 32

    let timeToLive: TimeInterval
    let capacity: Int
    private let outstanding: Mutex<[[UInt8]: Date]>

    init(timeToLive: TimeInterval = 60, capacity: Int = 4096) {
        precondition(timeToLive > 0 && capacity > 0, "a nonce store needs a positive time to live and capacity")
        self.timeToLive = timeToLive
        self.capacity = capacity
        outstanding = Mutex([:])
    }

    /// The number of nonces held (unspent; some may have expired and wait to be purged).
    var count: Int { outstanding.withLock { $0.count } }

    /// A fresh nonce and the instant it expires.
    func issue(now: Date = Date()) throws(LoginNonceError) -> (nonce: [UInt8], expiresAt: Date) {
        var generator = SystemRandomNumberGenerator()
        let expiresAt = now.addingTimeInterval(timeToLive)
        let result: Result<[UInt8], LoginNonceError> = outstanding.withLock { held in
            if held.count >= capacity {
                held = held.filter { $0.value > now }
                if held.count >= capacity {
                    let soonest = held.values.min() ?? expiresAt
                    return .failure(.tooMany(retryAfter: max(soonest.timeIntervalSince(now), 1)))
                }
            }
            var nonce: [UInt8]
            repeat {
                nonce = (0..<Self.nonceCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            } while held[nonce] != nil
            held[nonce] = expiresAt
            return .success(nonce)
        }
        return (try result.get(), expiresAt)
    }

    /// Spends `nonce`: it is removed whatever the login's outcome. Throws `unknown` for a nonce never issued or
    /// already spent, `expired` for one whose time to live has passed (at `now`, the instant the login arrived).
    func spend(_ nonce: [UInt8], now: Date = Date()) throws(LoginNonceError) {
        let expiresAt = outstanding.withLock { $0.removeValue(forKey: nonce) }
        guard let expiresAt else { throw .unknown }
        guard now < expiresAt else { throw .expired }
    }
}

import Foundation
import Testing

@testable import KeyService

/// The single-use, bounded nonce store of `auth/sev-snp/nonce` and `login` (issue 15).
@Suite struct LoginNoncesTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aNonceIsThirtyTwoRandomBytesValidForItsTimeToLive() throws {
        let store = LoginNonces()
        let (nonce, expiresAt) = try store.issue(now: start)
        #expect(nonce.count == 32)
        #expect(expiresAt == start.addingTimeInterval(60))
        let (other, _) = try store.issue(now: start)
        #expect(other != nonce)
        #expect(store.count == 2)
    }

    @Test func aNonceIsSpentOnceEvenWhenTheLoginSucceeds() throws {
        let store = LoginNonces()
        let (nonce, _) = try store.issue(now: start)
        try store.spend(nonce, now: start.addingTimeInterval(59))
        #expect(throws: LoginNonceError.unknown) { try store.spend(nonce, now: start.addingTimeInterval(59)) }
        #expect(store.count == 0)
    }

    @Test func anExpiredNonceIsRefusedAsExpiredAndRemoved() throws {
        let store = LoginNonces(timeToLive: 10)
        let (nonce, expiresAt) = try store.issue(now: start)
        #expect(throws: LoginNonceError.expired) { try store.spend(nonce, now: expiresAt) }
        // Refused once, gone: presenting it again is unknown.
        #expect(throws: LoginNonceError.unknown) { try store.spend(nonce, now: expiresAt) }
        #expect(store.count == 0)
    }

    @Test func aNonceNeverIssuedIsUnknown() throws {
        let store = LoginNonces()
        let (nonce, _) = try store.issue(now: start)
        var forged = nonce
        forged[31] ^= 0x01
        #expect(throws: LoginNonceError.unknown) { try store.spend(forged, now: start) }
        #expect(throws: LoginNonceError.unknown) { try store.spend([], now: start) }
        // The real one is untouched by the failed attempts.
        try store.spend(nonce, now: start)
    }

    @Test func pastTheBoundIssueRefusesUntilExpiredNoncesArePurged() throws {
        let store = LoginNonces(timeToLive: 30, capacity: 8)
        for second in 0..<8 { _ = try store.issue(now: start.addingTimeInterval(Double(second))) }
        #expect(throws: LoginNonceError.tooMany(retryAfter: 22)) {
            try store.issue(now: start.addingTimeInterval(8))
        }
        #expect(store.count == 8)
        // The first nonce expires at 30 s: at 30.5 s it is purged and one more is issued, the bound held (a
        // Retry-After is at least a second).
        let (nonce, _) = try store.issue(now: start.addingTimeInterval(30.5))
        #expect(store.count == 8)
        #expect(throws: LoginNonceError.tooMany(retryAfter: 1)) {
            try store.issue(now: start.addingTimeInterval(30.5))
        }
        // Once all have expired, all are purged on the next issue.
        _ = try store.issue(now: start.addingTimeInterval(100))
        #expect(store.count == 1)
        #expect(throws: LoginNonceError.unknown) { try store.spend(nonce, now: start.addingTimeInterval(100)) }
    }

    @Test func spendingFreesRoomUnderTheBound() throws {
        let store = LoginNonces(capacity: 2)
        let (first, _) = try store.issue(now: start)
        _ = try store.issue(now: start)
        #expect(throws: LoginNonceError.self) { try store.issue(now: start) }
        try store.spend(first, now: start)
        _ = try store.issue(now: start)
    }

    @Test func manyTasksIssueAndSpendConcurrentlyWithoutLoss() async throws {
        let store = LoginNonces(capacity: 8 * 500)
        let now = start
        let spent = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var nonces: [[UInt8]] = []
                    for _ in 0..<500 { nonces.append(try store.issue(now: now).nonce) }
                    for nonce in nonces { try store.spend(nonce, now: now) }
                    return nonces.count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(spent == 4000)
        #expect(store.count == 0)
    }

    @Test func errorsAreSentencesWithoutTheNonce() {
        #expect(LoginNonceError.tooMany(retryAfter: 2.2).description.contains("retry in 3 s"))
        #expect(LoginNonceError.unknown.description.contains("already spent"))
        #expect(LoginNonceError.expired.description.contains("expired"))
    }
}

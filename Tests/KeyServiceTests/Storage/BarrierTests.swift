import Crypto
import Testing

@testable import KeyService

struct BarrierTests {
    private let memory = MemoryBackend()
    private let rootKey = SymmetricKey(size: .bits256)

    private func unsealedBarrier() throws -> Barrier {
        let barrier = Barrier(backend: memory)
        try barrier.initialize(rootKey: rootKey)
        return barrier
    }

    private func term(at path: String) throws -> UInt32? {
        try memory.get(path).map { try BarrierFrame.term(of: $0, path: path) }
    }

    @Test func valuesRoundTripAndAreSealedAtRest() throws {
        let barrier = try unsealedBarrier()
        let secret = Array("correct horse battery staple".utf8)
        try barrier.put("kv/data/a", secret)
        #expect(try barrier.get("kv/data/a") == secret)
        #expect(try barrier.get("kv/data/missing") == nil)

        let stored = try #require(try memory.get("kv/data/a"))
        #expect(stored.count == secret.count + BarrierFrame.overhead)
        #expect(Array(stored[0..<4]) == [0, 0, 0, 1])
        let windows = (0...(stored.count - secret.count)).map { Array(stored[$0..<($0 + secret.count)]) }
        #expect(!windows.contains(secret))

        try barrier.put("kv/data/b", [])
        #expect(try barrier.get("kv/data/b") == [])
        #expect(try barrier.list(prefix: "kv/data/") == ["a", "b"])
        try barrier.delete("kv/data/a")
        #expect(try barrier.get("kv/data/a") == nil)
    }

    @Test func sameValueTwiceIsSealedWithFreshNonces() throws {
        let barrier = try unsealedBarrier()
        try barrier.put("a", [1, 2, 3])
        let first = try memory.get("a")
        try barrier.put("a", [1, 2, 3])
        #expect(try memory.get("a") != first)
    }

    @Test func valueCopiedToAnotherPathFailsToOpen() throws {
        let barrier = try unsealedBarrier()
        try barrier.put("sys/token/id/a", Array("root".utf8))
        try memory.put("sys/token/id/b", try #require(try memory.get("sys/token/id/a")))
        #expect(throws: BarrierError.tampered(path: "sys/token/id/b", term: 1)) {
            try barrier.get("sys/token/id/b")
        }
        #expect(try barrier.get("sys/token/id/a") == Array("root".utf8))
    }

    @Test func everyFlippedBitIsCaughtAndNamesThePath() throws {
        let barrier = try unsealedBarrier()
        try barrier.put("transit/keys/k", Array(0..<40))
        let stored = try #require(try memory.get("transit/keys/k"))
        for index in 4..<stored.count {  // past the term: nonce, ciphertext and tag
            var altered = stored
            altered[index] ^= 0x01
            try memory.put("transit/keys/k", altered)
            #expect(throws: BarrierError.tampered(path: "transit/keys/k", term: 1)) {
                try barrier.get("transit/keys/k")
            }
        }
        let error = BarrierError.tampered(path: "transit/keys/k", term: 1)
        #expect("\(error)".hasPrefix("the stored value at 'transit/keys/k' fails authentication under barrier term 1"))
    }

    @Test func truncatedAndUnknownTermValuesAreTypedErrors() throws {
        let barrier = try unsealedBarrier()
        try memory.put("short", [0, 0, 0, 1, 9, 9])
        #expect(throws: BarrierError.truncated(path: "short", count: 6)) { try barrier.get("short") }
        try memory.put("empty", [])
        #expect(throws: BarrierError.truncated(path: "empty", count: 0)) { try barrier.get("empty") }

        try barrier.put("future", [1])
        var stored = try #require(try memory.get("future"))
        stored[3] = 7
        try memory.put("future", stored)
        #expect(throws: BarrierError.unknownTerm(path: "future", term: 7)) { try barrier.get("future") }
    }

    @Test func wrongRootKeyIsRefusedWithTheOperatorMessage() throws {
        _ = try unsealedBarrier()
        let other = Barrier(backend: memory)
        #expect(throws: BarrierError.wrongRootKey) { try other.unseal(rootKey: SymmetricKey(size: .bits256)) }
        #expect(other.isSealed)
        #expect(
            "\(BarrierError.wrongRootKey)".hasSuffix("was it sealed to another chip, measurement or TCB?"))
        try other.unseal(rootKey: rootKey)
        #expect(!other.isSealed)
    }

    @Test func tamperedKeyringReadsAsWrongRootKey() throws {
        _ = try unsealedBarrier()
        var keyring = try #require(try memory.get(Barrier.keyringPath))
        keyring[20] ^= 0x80
        try memory.put(Barrier.keyringPath, keyring)
        #expect(throws: BarrierError.wrongRootKey) { try Barrier(backend: memory).unseal(rootKey: rootKey) }
    }

    /// `sys/key-status`'s `encryptions`: values sealed under the active term, in and out of transactions.
    @Test func encryptionsAreCountedPerTerm() throws {
        let barrier = try unsealedBarrier()
        let before = try barrier.keyStatus().encryptions
        try barrier.put("a", [1])
        try barrier.transaction { transaction in
            try transaction.put("b", [2])
            try transaction.put("c", [3])
        }
        _ = try barrier.get("a")
        #expect(try barrier.keyStatus().encryptions == before + 3)
        try barrier.rotate()
        #expect(try barrier.keyStatus().encryptions == 0)
    }

    @Test func rotationKeepsOldValuesReadableAndSealsNewOnesUnderTheNewTerm() throws {
        let barrier = try unsealedBarrier()
        try barrier.put("old", [1])
        #expect(try barrier.keyStatus().term == 1)

        let status = try barrier.rotate()
        #expect(status.term == 2)
        #expect(try barrier.keyStatus() == status)
        try barrier.put("new", [2])
        #expect(try term(at: "old") == 1)
        #expect(try term(at: "new") == 2)
        #expect(try barrier.get("old") == [1])
        #expect(try barrier.get("new") == [2])

        try barrier.put("old", [3])  // rewriting moves a value to the active term
        #expect(try term(at: "old") == 2)

        // The rotated keyring was stored: a fresh barrier opens every term.
        try barrier.rotate()
        try barrier.put("newest", [4])
        let reopened = Barrier(backend: memory)
        try reopened.unseal(rootKey: rootKey)
        #expect(try reopened.keyStatus().term == 3)
        #expect(try reopened.get("old") == [3])
        #expect(try reopened.get("new") == [2])
        #expect(try reopened.get("newest") == [4])
    }

    @Test func sealedBarrierRefusesEveryOperation() throws {
        let barrier = try unsealedBarrier()
        try barrier.put("a", [1])
        barrier.seal()
        #expect(barrier.isSealed)
        #expect(throws: BarrierError.sealed(path: "a")) { try barrier.get("a") }
        #expect(throws: BarrierError.sealed(path: "a")) { try barrier.put("a", [2]) }
        #expect(throws: BarrierError.sealed(path: "a")) { try barrier.delete("a") }
        #expect(throws: BarrierError.sealed(path: "")) { try barrier.list(prefix: "") }
        #expect(throws: BarrierError.sealed(path: Barrier.keyringPath)) { try barrier.rotate() }
        #expect(throws: BarrierError.sealed(path: "")) { try barrier.transaction { _ in } }
    }

    @Test func initializeRunsOnceAndUnsealNeedsAKeyring() throws {
        let barrier = Barrier(backend: memory)
        #expect(try !barrier.isInitialized)
        #expect(throws: BarrierError.notInitialized) { try barrier.unseal(rootKey: rootKey) }
        try barrier.initialize(rootKey: rootKey)
        #expect(try barrier.isInitialized)
        #expect(!barrier.isSealed)
        #expect(throws: BarrierError.alreadyInitialized) { try barrier.initialize(rootKey: rootKey) }
        #expect(try barrier.keyStatus().term == 1)
    }

    @Test func keyringPathIsReservedThroughTheBarrier() throws {
        let barrier = try unsealedBarrier()
        let path = Barrier.keyringPath
        #expect(throws: BarrierError.reservedPath(path)) { try barrier.put(path, [1]) }
        #expect(throws: BarrierError.reservedPath(path)) { try barrier.get(path) }
        #expect(throws: BarrierError.reservedPath(path)) { try barrier.delete(path) }
        #expect(throws: BarrierError.reservedPath(path)) {
            try barrier.transaction { try $0.put(path, [1]) }
        }
        #expect(try memory.get(path) != nil)
    }

    @Test func transactionsSealEveryWriteAndRollBackTogether() throws {
        struct Abort: Error {}
        let barrier = try unsealedBarrier()
        try barrier.transaction { transaction in
            try transaction.put("t/a", [1])
            try transaction.put("t/b", [2])
            #expect(try transaction.get("t/a") == [1])
        }
        #expect(try barrier.get("t/b") == [2])
        #expect(try term(at: "t/a") == 1)
        #expect(throws: Abort.self) {
            try barrier.transaction { transaction in
                try transaction.put("t/c", [3])
                throw Abort()
            }
        }
        #expect(try barrier.list(prefix: "t/") == ["a", "b"])
    }

    @Test func keyringEncodingRoundTripsAndRejectsDamage() throws {
        var keyring = Keyring()
        keyring.rotate()
        let decoded = try Keyring(bytes: keyring.bytes)
        #expect(decoded.activeTerm == 2)
        #expect(decoded.terms.keys.sorted() == [1, 2])
        #expect(decoded.bytes == keyring.bytes)
        #expect(keyring.bytes.count == 12 + 2 * 44)

        #expect(throws: BarrierError.corruptKeyring(reason: "it does not start with the 'VKR1' header")) {
            try Keyring(bytes: [])
        }
        #expect(throws: BarrierError.self) { try Keyring(bytes: Array(keyring.bytes.dropLast())) }
        var badActive = keyring.bytes
        badActive[7] = 9
        #expect(throws: BarrierError.corruptKeyring(reason: "the active term 9 has no key")) {
            try Keyring(bytes: badActive)
        }
    }
}

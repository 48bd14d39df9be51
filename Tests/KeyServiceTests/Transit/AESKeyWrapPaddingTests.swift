import Crypto
import CryptoExtras
import Testing

@testable import KeyService

@Suite struct AESKeyWrapPaddingTests {
    let kek = SymmetricKey(data: hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"))

    @Test func rfc5649TwentyOctetVector() throws {
        let key = hex("c37b7e6492584340bed12207808941155068f738")
        let wrapped = try AESKeyWrapPadding.wrap(key, key: kek)
        #expect(wrapped == hex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"))
        #expect(try AESKeyWrapPadding.unwrap(wrapped, key: kek) == key)
    }

    @Test func rfc5649SevenOctetVector() throws {
        let key = hex("466f7250617369")
        let wrapped = try AESKeyWrapPadding.wrap(key, key: kek)
        #expect(wrapped == hex("afbeb0f07dfbf5419200f2ccb50bb24f"))
        #expect(try AESKeyWrapPadding.unwrap(wrapped, key: kek) == key)
    }

    @Test(arguments: [1, 8, 9, 16, 32, 33, 121, 1218])
    func roundTripsEveryLength(count: Int) throws {
        let key = SymmetricKey(size: .bits256)
        let plaintext = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let wrapped = try AESKeyWrapPadding.wrap(plaintext, key: key)
        #expect(wrapped.count == 8 + (count + 7) / 8 * 8)
        #expect(try AESKeyWrapPadding.unwrap(wrapped, key: key) == plaintext)
    }

    @Test func wrongKeyFailsIntegrityCheck() throws {
        let wrapped = try AESKeyWrapPadding.wrap(Array(repeating: 0x42, count: 32), key: SymmetricKey(size: .bits256))
        #expect(throws: KeyWrapError.integrityCheckFailed) {
            try AESKeyWrapPadding.unwrap(wrapped, key: SymmetricKey(size: .bits256))
        }
    }

    @Test func tamperedBlobFailsIntegrityCheck() throws {
        let key = SymmetricKey(size: .bits128)
        for count in [5, 20] {
            var wrapped = try AESKeyWrapPadding.wrap(Array(repeating: 0x11, count: count), key: key)
            wrapped[wrapped.count - 1] ^= 0x01
            #expect(throws: KeyWrapError.integrityCheckFailed) { try AESKeyWrapPadding.unwrap(wrapped, key: key) }
        }
    }

    @Test func rfc3394BlobIsNotAcceptedAsPadded() throws {
        // Same bytes wrapped without padding carry the RFC 3394 IV A6A6…, which KWP must refuse.
        let key = SymmetricKey(size: .bits256)
        let kw = try AES.KeyWrap.wrap(SymmetricKey(data: [UInt8](repeating: 7, count: 16)), using: key)
        #expect(throws: KeyWrapError.integrityCheckFailed) { try AESKeyWrapPadding.unwrap(Array(kw), key: key) }
    }

    @Test func badLengthsAreRefused() {
        let key = SymmetricKey(size: .bits256)
        #expect(throws: KeyWrapError.badWrappedLength(8)) {
            try AESKeyWrapPadding.unwrap([UInt8](repeating: 0, count: 8), key: key)
        }
        #expect(throws: KeyWrapError.badWrappedLength(23)) {
            try AESKeyWrapPadding.unwrap([UInt8](repeating: 0, count: 23), key: key)
        }
        #expect(throws: KeyWrapError.badPlaintextLength(0)) { try AESKeyWrapPadding.wrap([], key: key) }
        #expect(throws: KeyWrapError.badKeySize(20)) {
            try AESKeyWrapPadding.wrap([1], key: SymmetricKey(data: [UInt8](repeating: 0, count: 20)))
        }
    }

    @Test func wrongLengthIndicatorIsRefused() throws {
        // Hand-build a blob whose MLI claims 9 bytes inside one 8-byte block: must fail.
        let key = SymmetricKey(size: .bits128)
        var block: [UInt8] = [0xA6, 0x59, 0x59, 0xA6, 0, 0, 0, 9] + [UInt8](repeating: 1, count: 8)
        try AES.permute(&block, key: key)
        #expect(throws: KeyWrapError.integrityCheckFailed) { try AESKeyWrapPadding.unwrap(block, key: key) }
    }
}

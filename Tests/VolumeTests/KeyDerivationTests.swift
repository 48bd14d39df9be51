import Crypto
import Sealing
import Testing

@testable import Volume

@Suite struct KeyDerivationTests {
    /// Expected values computed independently with Python's `cryptography` 41 (not with swift-crypto):
    ///
    ///     from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    ///     from cryptography.hazmat.primitives import hashes
    ///     import base64
    ///     ikm, salt = bytes(range(32)), b"5b4c1a3e-7f0e-4d2a-9c61-3e8f0a1b2c3d"
    ///     k = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"vhsm/luks/" + mode).derive(ikm)
    ///     m = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"vhsm/luks-mac/" + mode).derive(ikm)
    ///     print(base64.b64encode(k).decode(), m.hex())
    @Test(arguments: [
        (
            SealMode.measurement, "YFwx1xQl3R7fboTMy8f9mLCoLoPbt2O/BOmkKJEdSyw=",
            "8af23a5ee37499392ddbb852c258b9cfaf2e9c096150921dd8216d06eb19e282"
        ),
        (
            SealMode.platform, "9oCupsBYSypdCqV6Osz1hb1v5+6nRxs6jEfXyXcyf3s=",
            "b656e07aa4ac9256a4eddeaffcb9088f864597c1a7b0bba95c72470ed61e4842"
        ),
        (
            SealMode.image, "52TpExr65vkdhN0KpJa+DYdFNMKWS2OuqHfDpC5b0dU=",
            "946f44e75ff3eee0edddceab11ffae351f8c74375e4c806eff0e23466d3a9800"
        ),
    ])
    func derivesTheDocumentedPassphraseAndMACKey(mode: SealMode, passphrase: String, macKey: String) {
        let keys = VolumeKeys.derive(sealingKey: Fixtures.sealingKey, volumeUUID: Fixtures.uuid, mode: mode)
        #expect(keys.passphrase.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } == passphrase)
        #expect(keys.macKey.withUnsafeBytes { Encoding.hex($0) } == macKey)
        #expect(keys.passphrase.bitCount == 44 * 8)
    }

    @Test func theUUIDIsUsedInLowerCase() {
        let lower = VolumeKeys.derive(sealingKey: Fixtures.sealingKey, volumeUUID: Fixtures.uuid, mode: .platform)
        let upper = VolumeKeys.derive(
            sealingKey: Fixtures.sealingKey, volumeUUID: Fixtures.uuid.uppercased(), mode: .platform)
        #expect(upper.volumeUUID == Fixtures.uuid)
        #expect(upper.passphrase == lower.passphrase && upper.macKey == lower.macKey)
    }

    @Test func anotherVolumeUUIDGivesAnotherPassphrase() {
        let a = VolumeKeys.derive(sealingKey: Fixtures.sealingKey, volumeUUID: Fixtures.uuid, mode: .measurement)
        let b = VolumeKeys.derive(
            sealingKey: Fixtures.sealingKey, volumeUUID: "00000000-0000-4000-8000-000000000000", mode: .measurement)
        #expect(a.passphrase != b.passphrase)
        #expect(a.macKey != b.macKey)
    }

    @Test func base64MatchesRFC4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE="]
        for (plain, encoded) in vectors {
            #expect(Encoding.base64String(Array(plain.utf8)) == encoded)
            #expect(Encoding.unbase64(encoded) == Array(plain.utf8))
        }
        // Non-canonical padding bits and stray characters are refused.
        #expect(Encoding.unbase64("Zh==") == nil)
        #expect(Encoding.unbase64("Zm9v\n") == nil)
    }
}

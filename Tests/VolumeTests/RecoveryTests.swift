import Crypto
import CryptoExtras
import Foundation
import Sealing
import Testing

@testable import Volume

@Suite struct RecoveryTests {
    @Test func roundTripsWithP384FromTheBlobAndFromTheToken() throws {
        let (image, result) = try Fixtures.formattedImage()
        let key = RecoveryPrivateKey.p384(Fixtures.p384Recovery)
        let blob = try #require(result.recoveryBlob)
        let fromBlob = try image.volume.recover(blob: blob, privateKey: key)
        let fromToken = try image.volume.recover(privateKey: key)
        #expect(fromBlob.keyslot == result.recoveryKeyslot)
        #expect(fromToken.keyslot == result.recoveryKeyslot)
        #expect(fromBlob.key.key == fromToken.key.key)
        #expect(fromBlob.key.passphrase.bitCount == 44 * 8)
    }

    @Test func roundTripsWithX25519FromPEM() throws {
        let recipient = try RecoveryRecipient(pem: Fixtures.x25519Recovery.publicKey.pemRepresentation)
        #expect(recipient.suite == .x25519)
        let (image, result) = try Fixtures.formattedImage(recipient: recipient)
        let privateKey = try RecoveryPrivateKey(pem: Fixtures.x25519Recovery.pemRepresentation)
        let blob = try #require(result.recoveryBlob)
        let recovered = try image.volume.recover(blob: blob, privateKey: privateKey)
        #expect(recovered.keyslot == result.recoveryKeyslot)
        #expect(try image.volume.readHeader().metadata.recoveryToken?.suite == .x25519)
    }

    @Test func refusesTheWrongPrivateKeyByFingerprint() throws {
        let (image, _) = try Fixtures.formattedImage()
        let stranger = P384.KeyAgreement.PrivateKey()
        #expect {
            try image.volume.recover(privateKey: .p384(stranger))
        } throws: { error in
            guard case .recovery(_, let text) = error as? VolumeError else { return false }
            return text.contains(Encoding.hex(RecoveryRecipient.p384(Fixtures.p384Recovery.publicKey).fingerprint))
        }
        #expect {
            try image.volume.recover(privateKey: .x25519(Fixtures.x25519Recovery))
        } throws: { error in
            guard case .recovery(_, let text) = error as? VolumeError else { return false }
            return text.contains("P384-SHA384-AES256GCM")
        }
    }

    @Test func refusesABlobForAnotherVolume() throws {
        let (image, _) = try Fixtures.formattedImage()
        let other = try TemporaryImage()
        let otherUUID = "11111111-2222-4333-8444-555555555555"
        let result = try other.volume.format(
            LUKSVolume.FormatRequest(
                uuid: otherUUID, binding: Fixtures.binding(),
                recoveryRecipient: .p384(Fixtures.p384Recovery.publicKey)),
            keys: VolumeKeys.derive(sealingKey: Fixtures.sealingKey, volumeUUID: otherUUID, mode: .measurement))
        let blob = try #require(result.recoveryBlob)
        #expect(
            throws: VolumeError.recovery(
                path: image.path, "the recovery blob is for volume \(otherUUID), this volume is \(Fixtures.uuid)")
        ) {
            try image.volume.recover(blob: blob, privateKey: .p384(Fixtures.p384Recovery))
        }
    }

    @Test func ciphertextIsBoundToVolumeAndKeyslot() throws {
        let recipient = RecoveryRecipient.p384(Fixtures.p384Recovery.publicKey)
        let key = RecoveryKey(key: SymmetricKey(size: .bits256))
        let token = try recipient.seal(key, volumeUUID: Fixtures.uuid, keyslot: 1)
        let privateKey = RecoveryPrivateKey.p384(Fixtures.p384Recovery)
        #expect(try privateKey.open(token, volumeUUID: Fixtures.uuid).key == key.key)
        var moved = token
        moved.keyslot = 2
        #expect(throws: VolumeError.self) { try privateKey.open(moved, volumeUUID: Fixtures.uuid) }
        #expect(throws: VolumeError.self) {
            try privateKey.open(token, volumeUUID: "00000000-0000-4000-8000-000000000000")
        }
    }

    @Test func armorRoundTripsAndRefusesGarbage() throws {
        let recipient = RecoveryRecipient.p384(Fixtures.p384Recovery.publicKey)
        let token = try recipient.seal(
            RecoveryKey(key: SymmetricKey(size: .bits256)), volumeUUID: Fixtures.uuid, keyslot: 1)
        let blob = token.armored(volumeUUID: Fixtures.uuid)
        #expect(blob.split(separator: "\n").dropFirst().dropLast().allSatisfy { $0.count <= 64 })
        let parsed = try RecoveryToken.parse(armored: "some mail text\n" + blob + "signature\n")
        #expect(parsed.volumeUUID == Fixtures.uuid)
        #expect(parsed.token == token)
        // Copied from a serial console: CRLF line ends (one Character each in Swift), and a stray CR.
        let console = "[  OK  ] vhsm-init\r\n" + blob.replacingOccurrences(of: "\n", with: "\r\n") + "login: \r"
        #expect(try RecoveryToken.parse(armored: console).token == token)
        #expect(throws: VolumeError.self) { try RecoveryToken.parse(armored: "-----BEGIN VHSM RECOVERY-----\n!!\n") }
    }
}

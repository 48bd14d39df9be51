import Crypto
import Sealing
import Testing

@testable import Volume

@Suite struct KeyslotTests {
    @Test func keyCheckAcceptsTheRightKeyAndRefusesWrongOnes() throws {
        let (image, result) = try Fixtures.formattedImage()
        let header = try image.volume.readHeader()
        #expect(try header.checkKey(Fixtures.keys()) == result.machineKeyslot)

        // Another machine's sealing key: its MAC key differs, so the MAC check refuses before any keyslot is tried.
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) {
            try header.checkKey(Fixtures.keys(Fixtures.otherSealingKey))
        }
        // The right MAC key with a wrong passphrase reaches libcryptsetup, which finds no keyslot it opens.
        let right = Fixtures.keys()
        let wrongPassphrase = VolumeKeys(
            volumeUUID: Fixtures.uuid, mode: .measurement,
            passphrase: Fixtures.keys(Fixtures.otherSealingKey).passphrase,
            macKey: right.macKey)
        #expect(throws: VolumeError.wrongKey(path: image.path, keyslot: 0)) { try header.checkKey(wrongPassphrase) }
        // Keys for another seal mode are named as such.
        #expect(throws: VolumeError.sealModeMismatch(path: image.path, token: .measurement, keys: .platform)) {
            try header.checkKey(Fixtures.keys(mode: .platform))
        }
    }

    @Test func replacesTheMachineKeyslotAndRetiresTheOldOne() throws {
        let (image, result) = try Fixtures.formattedImage()
        let old = Fixtures.keys()
        let new = Fixtures.keys(Fixtures.otherSealingKey, mode: .image)
        let slot = try image.volume.replaceMachineKey(
            authority: .machine(old), replacement: new, binding: Fixtures.binding(.image))
        #expect(slot != result.machineKeyslot)

        let header = try image.volume.readHeader()
        #expect(header.metadata.keyslots.map(\.id) == [try #require(result.recoveryKeyslot), slot].sorted())
        #expect(header.snpToken.keyslot == slot)
        #expect(header.snpToken.binding == Fixtures.binding(.image))
        #expect(try header.checkKey(new) == slot)
        #expect(throws: VolumeError.sealModeMismatch(path: image.path, token: .image, keys: .measurement)) {
            try header.checkKey(old)
        }
        // The old passphrase opens nothing any more, even with a forged MAC key match.
        let oldPassphraseNewMAC = VolumeKeys(
            volumeUUID: Fixtures.uuid, mode: .image, passphrase: old.passphrase, macKey: new.macKey)
        #expect(throws: VolumeError.wrongKey(path: image.path, keyslot: slot)) {
            try header.checkKey(oldPassphraseNewMAC)
        }
        // The recovery keyslot survived.
        let recovered = try image.volume.recover(privateKey: .p384(Fixtures.p384Recovery))
        #expect(recovered.keyslot == result.recoveryKeyslot)
    }

    @Test func finishesAnInterruptedReplacementFirst() throws {
        let (image, result) = try Fixtures.formattedImage()
        let keys = Fixtures.keys()
        // The state a replacement leaves when interrupted after phase 1: a third, unassigned keyslot.
        let leftover = try CryptLibrary.run { () throws(VolumeError) in
            let device = try CryptDevice(device: image.path)
            try device.load()
            try device.usePBKDF2()
            return try device.addKeyslot(
                existing: keys.passphrase, new: Fixtures.keys(Fixtures.otherSealingKey).passphrase)
        }
        #expect(try image.volume.readHeader().metadata.keyslots.count == 3)

        let new = Fixtures.keys(Fixtures.otherSealingKey, mode: .platform)
        let slot = try image.volume.replaceMachineKey(
            authority: .machine(keys), replacement: new, binding: Fixtures.binding(.platform))
        let header = try image.volume.readHeader()
        #expect(header.metadata.keyslots.map(\.id).sorted() == [try #require(result.recoveryKeyslot), slot].sorted())
        #expect(header.metadata.keyslots.contains { $0.id == leftover } == (slot == leftover))
        #expect(try header.checkKey(new) == slot)
    }

    @Test func refusesAReplacementWithoutTheCurrentKeyAndChangesNothing() throws {
        let (image, _) = try Fixtures.formattedImage()
        let before = try image.headerArea()
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) {
            try image.volume.replaceMachineKey(
                authority: .machine(Fixtures.keys(Fixtures.otherSealingKey)),
                replacement: Fixtures.keys(Fixtures.otherSealingKey), binding: Fixtures.binding())
        }
        #expect(try image.headerArea() == before)
    }

    @Test func reenrolsWithTheRecoveryKeyAfterAMachineChange() throws {
        let (image, _) = try Fixtures.formattedImage()
        let recovered = try image.volume.recover(privateKey: .p384(Fixtures.p384Recovery))
        let new = Fixtures.keys(Fixtures.otherSealingKey)
        let slot = try image.volume.replaceMachineKey(
            authority: .recovery(recovered.key), replacement: new, binding: Fixtures.binding())
        #expect(try image.volume.readHeader().checkKey(new) == slot)
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) {
            try image.volume.readHeader().checkKey(Fixtures.keys())
        }
    }
}

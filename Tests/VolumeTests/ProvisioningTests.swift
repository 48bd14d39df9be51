import Crypto
import Foundation
import Testing

@testable import Volume

/// The provisioning state of a first boot (issue 16): the `vhsm-snp` token's `"state":"provisioning"` under its
/// MAC, the binary headers' provisioning mark, `markReady`, and formatting over this volume's own token-less header.
@Suite struct ProvisioningTests {
    /// Both binary headers' label and subsystem fields (offsets 24 and 208, 48 bytes each), then both checksums.
    func writeLabel(_ image: TemporaryImage, label: [UInt8], subsystem: [UInt8]) throws {
        for copy in [0, Layout.metadataSize] {
            try image.write(label + [UInt8](repeating: 0, count: 48 - label.count), at: copy + 24)
            try image.write(subsystem + [UInt8](repeating: 0, count: 48 - subsystem.count), at: copy + 208)
            var metadata = try image.read(offset: copy, count: Layout.metadataSize)
            for index in 0x1C0..<0x200 { metadata[index] = 0 }
            try image.write(Array(SHA256.hash(data: metadata)) + [UInt8](repeating: 0, count: 32), at: copy + 0x1C0)
        }
    }

    /// What a first boot cut after `crypt_format` and the machine keyslot leaves: no token, the mark for `markKeys`.
    func unfinishedImage(markKeys: VolumeKeys = Fixtures.keys(), keyslot: Bool = true) throws -> TemporaryImage {
        let image = try TemporaryImage()
        try CryptLibrary.run { () throws(VolumeError) in
            let device = try CryptDevice(device: image.path)
            try device.formatLUKS2(
                uuid: Fixtures.uuid, integrity: false, label: ProvisioningMark.label,
                subsystem: ProvisioningMark.subsystem(uuid: Fixtures.uuid, key: markKeys.macKey))
            if keyslot { _ = try device.addKeyslotForNewVolumeKey(passphrase: Fixtures.keys().passphrase) }
        }
        return image
    }

    @Test func formatWritesAProvisioningTokenAndAMarkOnlyThisKeyVerifies() throws {
        let (image, _) = try Fixtures.formattedImage()
        let header = try image.volume.readHeader()
        #expect(header.snpToken.provisioning)
        #expect(try image.metadataJSON().contains("\"state\":\"provisioning\",\"mac\":"))
        let mark = try #require(header.metadata.provisioningMark)
        #expect(ProvisioningMark.verify(mark, uuid: Fixtures.uuid, key: Fixtures.keys().macKey))
        #expect(
            !ProvisioningMark.verify(mark, uuid: Fixtures.uuid, key: Fixtures.keys(Fixtures.otherSealingKey).macKey))
        #expect(try image.read(offset: 24, count: 17) == Array("vhsm-provisioning".utf8))
        #expect(try header.checkKey(Fixtures.keys()) == 0)
    }

    @Test func markReadyDropsTheStateAndTheMarkUnderANewMAC() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.volume.markReady(keys: Fixtures.keys())
        let header = try image.volume.readHeader()
        #expect(!header.snpToken.provisioning)
        #expect(header.metadata.provisioningMark == nil)
        #expect(try image.read(offset: 0, count: Layout.binaryHeaderSize)[24..<72].allSatisfy { $0 == 0 })
        #expect(!(try image.metadataJSON().contains("state")))
        #expect(try header.checkKey(Fixtures.keys()) == 0)
        // Idempotent on a ready volume.
        let before = try image.headerArea()
        try image.volume.markReady(keys: Fixtures.keys())
        #expect(try image.headerArea() == before)
    }

    @Test func markReadyWithAnotherKeyIsRefusedAndWritesNothing() throws {
        let (image, _) = try Fixtures.formattedImage()
        let before = try image.headerArea()
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) {
            try image.volume.markReady(keys: Fixtures.keys(Fixtures.otherSealingKey))
        }
        #expect(try image.headerArea() == before)
    }

    /// A host that writes the state back into a ready volume's token (to get its filesystem made again) breaks
    /// the MAC; removing it from a provisioning token does too.
    @Test func theMACCoversTheState() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.volume.markReady(keys: Fixtures.keys())
        try image.rewriteMetadata {
            $0.replacingOccurrences(of: ",\"mac\":", with: ",\"state\":\"provisioning\",\"mac\":")
        }
        let header = try image.volume.readHeader()
        #expect(header.snpToken.provisioning)
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) { try header.verifyMAC(Fixtures.keys()) }

        let (fresh, _) = try Fixtures.formattedImage()
        var token = try fresh.volume.readHeader().snpToken
        let metadata = try fresh.volume.readHeader().metadata
        #expect(try HeaderMAC.verify(metadata, token: token, key: Fixtures.keys().macKey))
        token.provisioning = false
        #expect(!(try HeaderMAC.verify(metadata, token: token, key: Fixtures.keys().macKey)))
    }

    @Test func aStateOtherThanProvisioningIsRefused() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(of: "\"state\":\"provisioning\"", with: "\"state\":\"ready!\"")
        }
        #expect(throws: VolumeError.self) { try image.volume.readHeader() }
    }

    @Test func theMarkBesideAReadyTokenIsRefused() throws {
        let (image, _) = try Fixtures.formattedImage()
        let label = try image.read(offset: 24, count: 48)
        let subsystem = try image.read(offset: 208, count: 48)
        try image.volume.markReady(keys: Fixtures.keys())
        try writeLabel(image, label: label, subsystem: subsystem)
        #expect(throws: VolumeError.self) { try image.volume.readHeader() }
    }

    @Test(arguments: [
        ("other-label", String(repeating: "A", count: 44)), ("vhsm-provisioning", "short"),
        ("vhsm-provisioning", String(repeating: "*", count: 44)),
    ])
    func anyOtherLabelOrSubsystemIsRefused(label: String, subsystem: String) throws {
        let image = try unfinishedImage()
        try writeLabel(image, label: Array(label.utf8), subsystem: Array(subsystem.utf8))
        #expect(throws: VolumeError.self) { try image.volume.readUnfinished() }
        #expect(throws: VolumeError.self) {
            try image.volume.format(Fixtures.request(replacingUnfinished: true), keys: Fixtures.keys())
        }
    }

    @Test(arguments: [true, false])
    func itsOwnTokenlessHeaderIsFormattedAgain(keyslot: Bool) throws {
        let image = try unfinishedImage(keyslot: keyslot)
        #expect(try image.volume.probe() == .luks2(uuid: Fixtures.uuid))
        let found = try image.volume.readUnfinished()
        #expect(found.uuid == Fixtures.uuid && found.marked && !found.hasSNPToken)
        try image.volume.checkUnfinished(keys: Fixtures.keys())
        // Without the flag it is not blank, as before.
        #expect(throws: VolumeError.self) { try image.volume.format(Fixtures.request(), keys: Fixtures.keys()) }
        let result = try image.volume.format(Fixtures.request(replacingUnfinished: true), keys: Fixtures.keys())
        #expect(result.machineKeyslot == 0)
        let header = try image.volume.readHeader()
        #expect(header.snpToken.provisioning && header.uuid == Fixtures.uuid)
        #expect(try header.checkKey(Fixtures.keys()) == 0)
    }

    @Test func anotherKeysMarkIsNeverFormatted() throws {
        let image = try unfinishedImage(markKeys: Fixtures.keys(Fixtures.otherSealingKey))
        let before = try image.headerArea()
        #expect(throws: VolumeError.self) { try image.volume.checkUnfinished(keys: Fixtures.keys()) }
        #expect(throws: VolumeError.self) {
            try image.volume.format(Fixtures.request(replacingUnfinished: true), keys: Fixtures.keys())
        }
        #expect(try image.headerArea() == before)
    }

    @Test func aTokenlessHeaderWithoutAMarkIsNeverFormatted() throws {
        let image = try TemporaryImage()
        try CryptLibrary.run { () throws(VolumeError) in
            let device = try CryptDevice(device: image.path)
            try device.formatLUKS2(uuid: Fixtures.uuid, integrity: false)
        }
        let before = try image.headerArea()
        #expect(!(try image.volume.readUnfinished().marked))
        #expect(throws: VolumeError.self) {
            try image.volume.format(Fixtures.request(replacingUnfinished: true), keys: Fixtures.keys())
        }
        #expect(try image.headerArea() == before)
    }

    @Test func aReadyVolumeIsNeverFormattedAsUnfinished() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.volume.markReady(keys: Fixtures.keys())
        let before = try image.headerArea()
        #expect(try image.volume.readUnfinished().hasSNPToken)
        #expect(throws: VolumeError.self) {
            try image.volume.format(Fixtures.request(replacingUnfinished: true), keys: Fixtures.keys())
        }
        #expect(try image.headerArea() == before)
    }
}

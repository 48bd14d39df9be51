import Crypto
import Foundation
import Sealing
import StrictJSON
import Testing

@testable import Volume

@Suite struct FormatTests {
    @Test func probeSeesABlankSparseFile() throws {
        let image = try TemporaryImage()
        #expect(try image.volume.probe() == .blank)
    }

    @Test func probeSeesForeignData() throws {
        let image = try TemporaryImage()
        try image.write([0x53, 0xEF], at: 0x438)
        #expect(try image.volume.probe() == .foreign("an ext2/3/4 superblock"))

        let tail = try TemporaryImage()
        try tail.write([1], at: (32 << 20) - 100)
        guard case .foreign(let found) = try tail.volume.probe() else {
            Issue.record("a non-zero byte in the last MiB must make the volume foreign")
            return
        }
        #expect(found.contains("\((32 << 20) - 100)"))
    }

    /// Data with no signature in the middle of the disk (found by the QEMU scenario with a foreign disk): the
    /// whole device is checked before it is called blank, so it is never formatted.
    @Test(arguments: [1 << 20, (1 << 20) + 7, 9 << 20, (31 << 20) - 8])
    func dataAnywhereMakesTheVolumeForeign(offset: Int) throws {
        let image = try TemporaryImage()
        try image.write(Array("precious".utf8), at: offset)
        guard case .foreign(let found) = try image.volume.probe() else {
            Issue.record("data at \(offset) must make the volume foreign")
            return
        }
        #expect(found.hasPrefix("non-zero byte at offset \(offset)"))
    }

    @Test func theZeroScanFindsTheFirstNonZeroByte() {
        #expect(LUKSVolume.firstNonZero([UInt8](repeating: 0, count: 100)) == nil)
        for index in [0, 7, 8, 63, 64, 99] {
            var bytes = [UInt8](repeating: 0, count: 100)
            bytes[index] = 1
            #expect(LUKSVolume.firstNonZero(bytes) == index)
        }
    }

    @Test func formatsAndReadsBackExactlyWhatItWrote() throws {
        let (image, result) = try Fixtures.formattedImage()
        #expect(try image.volume.probe() == .luks2(uuid: Fixtures.uuid))
        #expect(result.machineKeyslot == 0)
        #expect(result.recoveryKeyslot == 1)
        #expect(result.needsIntegrityInitialization == false)
        #expect(result.recoveryBlob?.hasPrefix("-----BEGIN VHSM RECOVERY-----\n") == true)

        let header = try image.volume.readHeader()
        let metadata = header.metadata
        #expect(metadata.uuid == Fixtures.uuid)
        #expect(metadata.segmentOffset == UInt64(Layout.headerAreaSize))
        #expect(metadata.integrity == nil)
        #expect(metadata.keyslots.map(\.id) == [0, 1])
        #expect(metadata.keyslots.allSatisfy { $0.keyBytes == 64 && $0.kdfIterations == 1000 })
        #expect(metadata.digest.keyslots == [0, 1])
        #expect(header.snpToken.keyslot == 0)
        #expect(header.snpToken.binding == Fixtures.binding())
        #expect(metadata.recoveryToken?.keyslot == 1)
        #expect(metadata.recoveryToken?.suite == .p384)
        #expect(try header.checkKey(Fixtures.keys()) == 0)

        // The JSON as cryptsetup serialised it carries our token, segment and KDF shapes.
        let json = try image.metadataJSON()
        #expect(json.contains("\"type\":\"vhsm-snp\""))
        #expect(json.contains("\"encryption\":\"aes-xts-plain64\",\"sector_size\":4096"))
        #expect(json.contains("\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":1000"))
    }

    @Test func formatsWithoutARecoveryRecipient() throws {
        let image = try TemporaryImage()
        var request = Fixtures.request()
        request.recoveryRecipient = nil
        let result = try image.volume.format(request, keys: Fixtures.keys())
        #expect(result.recoveryKeyslot == nil && result.recoveryBlob == nil)
        let header = try image.volume.readHeader()
        #expect(header.metadata.keyslots.map(\.id) == [0])
        #expect(header.metadata.recoveryToken == nil)
        #expect(
            throws: VolumeError.recovery(
                path: image.path, "the header has no vhsm-recovery token; give the printed blob instead")
        ) {
            try image.volume.recover(privateKey: .p384(Fixtures.p384Recovery))
        }
    }

    @Test(arguments: SealMode.allCases)
    func formatsEverySealMode(mode: SealMode) throws {
        let (image, _) = try Fixtures.formattedImage(mode: mode)
        let header = try image.volume.readHeader()
        #expect(header.snpToken.binding == Fixtures.binding(mode))
        #expect(try header.checkKey(Fixtures.keys(mode: mode)) == 0)
    }

    @Test func refusesToFormatAForeignFileAndLeavesItAlone() throws {
        let image = try TemporaryImage()
        let data = [UInt8](repeating: 0x5A, count: 4096)
        try image.write(data, at: 8192)
        #expect(throws: VolumeError.notBlank(path: image.path, found: "non-zero byte at offset 8192")) {
            try image.volume.format(Fixtures.request(), keys: Fixtures.keys())
        }
        #expect(try image.read(offset: 8192, count: 4096) == data)
        #expect(try image.read(offset: 0, count: 4096).allSatisfy { $0 == 0 })
    }

    @Test func refusesToFormatAnExistingLUKSVolume() throws {
        let (image, _) = try Fixtures.formattedImage()
        let before = try image.headerArea()
        #expect(throws: VolumeError.notBlank(path: image.path, found: "a LUKS2 header, UUID \(Fixtures.uuid)")) {
            try image.volume.format(Fixtures.request(), keys: Fixtures.keys())
        }
        #expect(try image.headerArea() == before)
    }

    @Test func refusesKeysDerivedForAnotherVolumeOrMode() throws {
        let image = try TemporaryImage()
        let other = VolumeKeys.derive(
            sealingKey: Fixtures.sealingKey, volumeUUID: "00000000-0000-4000-8000-000000000000", mode: .measurement)
        #expect(throws: VolumeError.self) { try image.volume.format(Fixtures.request(), keys: other) }
        #expect(
            throws: VolumeError.sealModeMismatch(path: image.path, token: .measurement, keys: .platform)
        ) { try image.volume.format(Fixtures.request(), keys: Fixtures.keys(mode: .platform)) }
        #expect(try image.volume.probe() == .blank)
    }

    @Test func refusesATooSmallDevice() throws {
        let image = try TemporaryImage(size: 8 << 20)
        #expect(throws: VolumeError.tooSmall(path: image.path, size: 8 << 20, minimum: 32 << 20)) {
            try image.volume.format(Fixtures.request(), keys: Fixtures.keys())
        }
    }

    /// dm-integrity is formatted by the kernel (libcryptsetup creates a temporary dm-integrity device), so on a
    /// host without device-mapper the format fails; it must then say why and leave the image blank.
    @Test(.disabled(if: Fixtures.deviceMapperPresent, "would create a dm-integrity device"))
    func integrityFormatNeedsDeviceMapperAndFailsCleanly() throws {
        let image = try TemporaryImage()
        #expect {
            try image.volume.format(Fixtures.request(integrity: true), keys: Fixtures.keys())
        } throws: { error in
            guard case .cryptsetup(_, let operation, _, let log) = error as? VolumeError else { return false }
            return operation.contains("hmac(sha256)") && log.contains { $0.contains("device-mapper") }
                && "\(error)".contains("Device-mapper is not available here")
        }
        #expect(try image.volume.probe() == .blank)
    }

    /// Activation needs device-mapper; without it the error must say so, naming the device and the mapping.
    @Test(.disabled(if: Fixtures.deviceMapperPresent, "would create a dm-crypt mapping"))
    func unlockExplainsThatActivationNeedsDeviceMapper() throws {
        let (image, _) = try Fixtures.formattedImage()
        let header = try image.volume.readHeader()
        #expect {
            try header.unlock(as: "vhsm-test", keys: Fixtures.keys(), options: [.readOnly])
        } throws: { error in
            guard case .cryptsetup(let path, let operation, _, let log) = error as? VolumeError else { return false }
            return path == image.path && operation == "activate 'vhsm-test' from"
                && log.contains { $0.contains("device-mapper") }
                && "\(error)".contains("Device-mapper is not available here")
        }
    }

    @Test func unlockVerifiesTheMACBeforeTouchingDeviceMapper() throws {
        let (image, _) = try Fixtures.formattedImage()
        let header = try image.volume.readHeader()
        let stranger = Fixtures.keys(Fixtures.otherSealingKey)
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) {
            try header.unlock(as: "vhsm-test-never", keys: stranger)
        }
    }
}

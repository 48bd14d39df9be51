import Crypto
import CryptoExtras
import Foundation
import Sealing
import StrictJSON

@testable import Volume

/// A sparse image file in its own temporary directory, removed when the value goes away.
final class TemporaryImage {
    let directory: URL
    let path: String

    init(size: Int = 32 << 20, name: String = "volume.img") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vhsm-volume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent(name).path
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    var volume: LUKSVolume { LUKSVolume(path: path) }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        return Array(try handle.read(upToCount: count) ?? Data())
    }

    func write(_ bytes: [UInt8], at offset: Int) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data(bytes))
    }

    /// The header area, as the validator reads it.
    func headerArea() throws -> [UInt8] { try read(offset: 0, count: Layout.headerAreaSize) }

    /// The primary JSON text.
    func metadataJSON() throws -> String {
        let area = try read(offset: Layout.binaryHeaderSize, count: Layout.jsonAreaSize)
        return String(decoding: area.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Replaces the JSON text in both metadata copies. With `fixChecksums`, recomputes both SHA-256 checksums
    /// so that only a semantic check can notice; without, leaves the old checksums in place.
    func rewriteMetadata(fixChecksums: Bool = true, _ edit: (String) -> String) throws {
        let edited = Array(edit(try metadataJSON()).utf8)
        precondition(edited.count < Layout.jsonAreaSize, "edited JSON does not fit")
        let area = edited + [UInt8](repeating: 0, count: Layout.jsonAreaSize - edited.count)
        for copy in [0, Layout.metadataSize] {
            try write(area, at: copy + Layout.binaryHeaderSize)
            if fixChecksums {
                var metadata = try read(offset: copy, count: Layout.metadataSize)
                for index in 0x1C0..<0x200 { metadata[index] = 0 }
                let digest = Array(SHA256.hash(data: metadata)) + [UInt8](repeating: 0, count: 32)
                try write(digest, at: copy + 0x1C0)
            }
        }
    }
}

enum Fixtures {
    /// Whether this kernel has device-mapper. The tests never create mappings: where device-mapper exists, the
    /// tests that show how activation and integrity formatting fail without it are skipped.
    static let deviceMapperPresent: Bool = {
        let devices = (try? String(contentsOfFile: "/proc/devices", encoding: .utf8)) ?? ""
        return devices.contains("device-mapper")
    }()

    static let uuid = "5b4c1a3e-7f0e-4d2a-9c61-3e8f0a1b2c3d"
    /// A stand-in for the SNP sealing key (MSG_KEY_REQ output): 00 01 … 1f.
    static let sealingKey = (0..<32).map { UInt8($0) }
    static let otherSealingKey = (0..<32).map { UInt8(0xA0 + $0) }

    static let measurement = (0..<48).map { UInt8($0 * 3 & 0xFF) }
    static let tcb: [UInt8] = [0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0xDB]

    static func binding(_ mode: SealMode = .measurement) -> SNPBinding {
        switch mode {
        case .measurement:
            SNPBinding(mode: .measurement, guestFieldSelect: 0b101001, tcb: tcb, measurement: measurement)
        case .platform:
            SNPBinding(mode: .platform, guestFieldSelect: 0b100001, tcb: tcb)
        case .image:
            SNPBinding(
                mode: .image, guestFieldSelect: 0b110111, tcb: tcb, imageID: [UInt8](repeating: 0x11, count: 16),
                familyID: [UInt8](repeating: 0x22, count: 16), guestSVN: 3)
        }
    }

    static func keys(_ sealingKey: [UInt8] = sealingKey, mode: SealMode = .measurement) -> VolumeKeys {
        VolumeKeys.derive(sealingKey: sealingKey, volumeUUID: uuid, mode: mode)
    }

    static let p384Recovery = P384.KeyAgreement.PrivateKey()
    static let x25519Recovery = Curve25519.KeyAgreement.PrivateKey()

    static func request(
        mode: SealMode = .measurement, integrity: Bool = false, recipient: RecoveryRecipient? = nil,
        replacingUnfinished: Bool = false
    ) -> LUKSVolume.FormatRequest {
        LUKSVolume.FormatRequest(
            uuid: uuid, integrity: integrity, binding: binding(mode),
            recoveryRecipient: recipient ?? .p384(p384Recovery.publicKey), replacingUnfinished: replacingUnfinished)
    }

    /// A freshly formatted 32 MiB image (measurement mode, P-384 recovery recipient).
    static func formattedImage(
        mode: SealMode = .measurement, recipient: RecoveryRecipient? = nil
    ) throws -> (TemporaryImage, LUKSVolume.FormatResult) {
        let image = try TemporaryImage()
        let result = try image.volume.format(request(mode: mode, recipient: recipient), keys: keys(mode: mode))
        return (image, result)
    }
}

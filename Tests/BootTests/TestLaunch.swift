import SNP
import SNPEmulator

@testable import Boot

/// One emulated chip for the whole suite (RSA-4096 ARK/ASK generation is slow) and guests launched on it.
enum TestLaunch {
    static let chip: ChipState = try! ChipState.create(product: .milan)

    static let measurementA = Array(repeating: UInt8(0xA1), count: 48)
    static let measurementB = Array(repeating: UInt8(0xB2), count: 48)

    static func identity(svn: UInt32, imageID: UInt8 = 0x1E) -> LaunchIdentity {
        LaunchIdentity(
            familyID: Array(repeating: 0x0F, count: 16), imageID: Array(repeating: imageID, count: 16),
            guestSVN: svn, idKeyDigest: Array(repeating: 0x1D, count: 48), authorKeyDigest: nil)
    }

    /// The policy a sealing launch has: bit 17 only (no SMT, no DEBUG, no migration agent).
    static let sealablePolicy = GuestPolicy(rawValue: 0x20000)

    static func guest(
        measurement: [UInt8] = measurementA, identity: LaunchIdentity? = nil, policy: GuestPolicy = sealablePolicy,
        chip: ChipState = chip
    ) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: measurement, policy: policy, idBlock: identity))
    }
}

/// Console lines and filesystems a stage produced.
final class StageLog {
    var lines: [String] = []
    var filesystems: [String] = []
}

extension VolumeStage where Volume == InMemoryVolume {
    /// `run`, then `markReady` as `BootSequence` does once the filesystem is mounted.
    func boot() throws(BootError) -> Result {
        let result = try run()
        try markReady(result)
        return result
    }

    /// The stage as `BootSequence` wires it, over the emulated firmware and the in-memory volume.
    static func make(
        _ volume: InMemoryVolume, guest: EmulatedGuest, config: BootConfig = BootConfig(), log: StageLog = StageLog(),
        candidates: [String] = []
    ) throws -> VolumeStage<InMemoryVolume> {
        let attestation = Attestation(device: guest)
        let report = try attestation.report()
        return VolumeStage(
            volume: volume, config: config, report: report,
            deriveKey: { (enrollment) throws(BootError) in try attestation.sealingKey(for: enrollment) },
            makeRequest: { (uuid, publicKey) throws(BootError) in
                try attestation.recoveryRequest(volumeUUID: uuid, publicKey: publicKey)
            },
            makeFilesystem: { (device) throws(BootError) in log.filesystems.append(device) },
            randomBytes: { Array(repeating: 7, count: $0) }, say: { log.lines.append($0) },
            candidates: { candidates })
    }
}

import SNP
import Sealing
import Volume

/// `BootVolume` over the `Volume` library (libcryptsetup): the seam `vhsm-init` unlocks through.
///
/// Keys arrive as the 32-byte sealing key; `VolumeKeys.derive(sealingKey:volumeUUID:mode:)` turns it into this
/// volume's passphrase and MAC key, and the derived keys are dropped when each call returns.
struct LUKSBootVolume: BootVolume {
    typealias Header = ValidatedHeader

    /// A token whose binding cannot be a `vhsm-init` enrollment (wrong TCB length).
    struct UnusableToken: Error, CustomStringConvertible {
        var description: String
    }

    func probe(device: String) throws -> VolumeProbe {
        switch try LUKSVolume(path: device).probe() {
        case .blank: .blank
        case .luks2(let uuid): .luks(uuid: uuid)
        case .foreign(let found): .foreign(found)
        }
    }

    func format(
        device: String, uuid: String, enrollment: Enrollment, integrity: Bool, sealingKey: [UInt8],
        recoveryPublicKeyPEM: String?, replacingUnfinished: Bool
    ) throws -> String? {
        let mode = enrollment.mode
        let keys = VolumeKeys.derive(sealingKey: sealingKey, volumeUUID: uuid, mode: mode)
        let request = LUKSVolume.FormatRequest(
            uuid: uuid, integrity: integrity, binding: Self.binding(enrollment),
            recoveryRecipient: try recoveryPublicKeyPEM.map { pem throws(VolumeError) in try RecoveryRecipient(pem: pem)
            }, replacingUnfinished: replacingUnfinished)
        return try LUKSVolume(path: device).format(request, keys: keys) { step in PowerCut.at(step.rawValue) }
            .recoveryBlob
    }

    func unfinished(device: String) throws -> UnfinishedHeader? {
        let found = try LUKSVolume(path: device).readUnfinished()
        return found.hasSNPToken ? nil : UnfinishedHeader(uuid: found.uuid, marked: found.marked)
    }

    func verifyUnfinished(device: String, uuid: String, mode: SealMode, sealingKey: [UInt8]) throws {
        try LUKSVolume(path: device).checkUnfinished(
            keys: VolumeKeys.derive(sealingKey: sealingKey, volumeUUID: uuid, mode: mode))
    }

    func initializeIntegrity(_ volume: ValidatedVolume<ValidatedHeader>, sealingKey: [UInt8]) throws {
        // The one-time wipe that gives every sector a valid MAC: progress on the console every 10%.
        var reported = -1
        let start = Monotonic.now()
        try volume.header.initializeIntegrity(
            keys: keys(for: volume, sealingKey: sealingKey),
            progress: { done, total in
                let percent = total == 0 ? 100 : Int(Double(min(done, total)) / Double(total) * 100)
                if percent / 10 > reported / 10 || (percent == 100 && reported != 100) {
                    reported = percent
                    Console.say(
                        "vhsm-init: integrity wipe \(percent)% (\(done >> 20) of \(total >> 20) MiB, "
                            + "\(Monotonic.milliseconds(Monotonic.now() - start)) ms)")
                }
                if done > 0, done < total { PowerCut.at("integrity-wipe") }
                return true
            })
    }

    func markReady(_ volume: ValidatedVolume<ValidatedHeader>, sealingKey: [UInt8]) throws {
        try LUKSVolume(path: volume.device).markReady(keys: keys(for: volume, sealingKey: sealingKey))
    }

    func validate(device: String) throws -> ValidatedVolume<ValidatedHeader> {
        let header = try LUKSVolume(path: device).readHeader()
        return ValidatedVolume(
            device: device, uuid: header.uuid, enrollment: try Self.enrollment(header.snpToken.binding),
            integrity: header.metadata.integrity != nil, header: header,
            hasRecoveryKeyslot: header.metadata.recoveryToken != nil, reenrollGrant: header.reenrollGrant,
            provisioning: header.snpToken.provisioning)
    }

    func verifyMAC(_ volume: ValidatedVolume<ValidatedHeader>, sealingKey: [UInt8]) throws {
        try volume.header.verifyMAC(keys(for: volume, sealingKey: sealingKey))
    }

    func unlock(_ volume: ValidatedVolume<ValidatedHeader>, sealingKey: [UInt8], name: String) throws -> String {
        _ = try volume.header.unlock(
            as: name, keys: keys(for: volume, sealingKey: sealingKey), options: [.noReadWorkqueue, .noWriteWorkqueue])
        return "/dev/mapper/\(name)"
    }

    func deactivate(name: String) throws {
        try LUKSVolume.deactivate(name: name)
    }

    func reenroll(
        _ volume: ValidatedVolume<ValidatedHeader>, recoveryKey: RecoveryKey, enrollment: Enrollment,
        sealingKey: [UInt8]
    ) throws -> Int {
        try LUKSVolume(path: volume.device).replaceMachineKey(
            authority: .recovery(recoveryKey),
            replacement: VolumeKeys.derive(sealingKey: sealingKey, volumeUUID: volume.uuid, mode: enrollment.mode),
            binding: Self.binding(enrollment))
    }

    func removeReenrollGrant(device: String) throws {
        try LUKSVolume(path: device).removeReenrollGrant()
    }

    private func keys(for volume: ValidatedVolume<ValidatedHeader>, sealingKey: [UInt8]) -> VolumeKeys {
        VolumeKeys.derive(
            sealingKey: sealingKey, volumeUUID: volume.uuid, mode: volume.enrollment.mode)
    }

    static func binding(_ enrollment: Enrollment) -> SNPBinding {
        SNPBinding(
            mode: enrollment.mode, guestFieldSelect: enrollment.guestFieldSelect.rawValue,
            tcb: enrollment.tcb.bytes, measurement: enrollment.measurement, imageID: enrollment.imageID,
            familyID: enrollment.familyID, guestSVN: enrollment.guestSVN)
    }

    static func enrollment(_ binding: SNPBinding) throws -> Enrollment {
        guard binding.tcb.count == 8 else {
            throw UnusableToken(description: "the vhsm-snp token's TCB is not 8 bytes")
        }
        return Enrollment(
            mode: binding.mode, guestFieldSelect: GuestFieldSelect(rawValue: binding.guestFieldSelect),
            tcb: try TCBVersion(bytes: binding.tcb), measurement: binding.measurement, imageID: binding.imageID,
            familyID: binding.familyID, guestSVN: binding.guestSVN)
    }
}

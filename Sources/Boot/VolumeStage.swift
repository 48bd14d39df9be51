import SNP
import Sealing

/// DESIGN §3 step 6: find the volume; a blank one is formatted, enrolled and given a filesystem; one of ours is
/// checked against the report, its token MAC verified, and unlocked from the validated header copy. Anything else
/// is refused. There is no path from a non-blank volume to `format`.
struct VolumeStage<Volume: BootVolume> {
    /// Derives the sealing key for an enrollment (MSG_KEY_REQ); the stage zeroes it when done.
    typealias DeriveKey = (Enrollment) throws(BootError) -> [UInt8]

    var volume: Volume
    var config: BootConfig
    var report: AttestationReport
    var deriveKey: DeriveKey
    /// Runs mke2fs on the mapped device of a newly formatted volume.
    var makeFilesystem: (String) throws(BootError) -> Void
    var randomBytes: (Int) -> [UInt8]
    var say: (String) -> Void
    /// Block devices to look through for `UUID=` (paths under /dev).
    var candidates: () -> [String] = { [] }

    struct Result: Equatable {
        var device: String
        var mappedDevice: String
        var uuid: String
        var firstBoot: Bool
        /// The volume has `hmac(sha256)` integrity, as its validated header says.
        var integrity: Bool
    }

    func run() throws(BootError) -> Result {
        // Before enrolling and before unlocking: DEBUG, MIGRATE_MA, SMT unless allowed, COMMITTED_TCB below min_tcb.
        if let refusal = config.sealing.refusal(for: report) { throw Self.refused(refusal) }
        let (device, probe) = try locate()
        switch probe {
        case .blank: return try firstBoot(device)
        case .luks: return try open(device)
        case .foreign(let what):
            throw BootError(
                stage: .volume,
                cause: "\(device) holds \(what), not a vhsm LUKS2 volume; a non-blank volume is never formatted",
                next: "attach the volume this VM enrolled, or a blank disk for a first boot (check vhsm.volume)")
        }
    }

    /// The configured device and what it holds. `UUID=` looks through `candidates` for that LUKS UUID.
    func locate() throws(BootError) -> (String, VolumeProbe) {
        if config.volume.hasPrefix("UUID=") {
            let wanted = String(config.volume.dropFirst(5)).lowercased()
            for device in candidates() {
                if case .luks(let uuid)? = try? volume.probe(device: device), uuid.lowercased() == wanted {
                    return (device, .luks(uuid: uuid))
                }
            }
            throw BootError(
                stage: .volume,
                cause: "no block device holds LUKS UUID \(wanted) (looked at: "
                    + (candidates().isEmpty ? "none" : candidates().joined(separator: ", ")) + ")",
                next: "attach the enrolled volume; a first boot needs vhsm.volume=/dev/… (a blank disk has no UUID)")
        }
        do { return (config.volume, try volume.probe(device: config.volume)) } catch {
            throw BootError(
                stage: .volume, cause: "cannot probe \(config.volume): \(error)",
                next: "check that the disk is attached and vhsm.volume names it")
        }
    }

    private func firstBoot(_ device: String) throws(BootError) -> Result {
        let uuid = VolumeUUID.make(from: randomBytes(16))
        let enrollment: Enrollment
        do throws(SealingRefusal) {
            enrollment = try Enrollment(firstBoot: config.seal, report: report, requirements: config.sealing)
        } catch { throw Self.refused(error) }
        var key = try deriveKey(enrollment)
        defer { key.zeroize() }
        say(
            "vhsm-init: \(device) is blank: formatting LUKS2 \(uuid), seal \(enrollment.mode.rawValue), "
                + "TCB \(enrollment.tcb.hex) (COMMITTED_TCB)\(config.integrity ? ", integrity hmac(sha256)" : "")")
        if enrollment.mode == .platform { say(Self.platformWarning) }
        let recovery: String?
        do {
            recovery = try volume.format(
                device: device, uuid: uuid, enrollment: enrollment, integrity: config.integrity, sealingKey: key,
                recoveryPublicKeyPEM: config.recoveryKeyPEM)
        } catch {
            throw BootError(
                stage: .volume, cause: "formatting \(device) failed: \(error)",
                next: "the disk is left as it is and will not be formatted again unless it is blank; check its size "
                    + "and that dm_crypt and the crypto user API modules loaded")
        }
        if let recovery {
            say("vhsm-init: recovery key, encrypted to the operator's public key (printed once):")
            for line in recovery.split(separator: "\n", omittingEmptySubsequences: false) { say(String(line)) }
        } else {
            say("vhsm-init: no recovery_key configured: this volume has no recovery keyslot")
        }
        let validated = try validate(device)
        guard validated.uuid == uuid, validated.enrollment == enrollment else {
            throw BootError(
                stage: .volume,
                cause: "the header read back from \(device) differs from the one just written "
                    + "(UUID \(validated.uuid), expected \(uuid))",
                next: "another writer changed the disk during formatting; check the host")
        }
        let mapped = try verifyAndUnlock(validated, key: key)
        try makeFilesystem(mapped)
        return Result(
            device: device, mappedDevice: mapped, uuid: uuid, firstBoot: true, integrity: validated.integrity)
    }

    private func open(_ device: String) throws(BootError) -> Result {
        let validated = try validate(device)
        if let refusal = EnrollmentCheck.refusal(of: validated.enrollment, report: report, configured: config.seal) {
            throw refusal
        }
        var key = try deriveKey(validated.enrollment)
        defer { key.zeroize() }
        let mapped = try verifyAndUnlock(validated, key: key)
        return Result(
            device: device, mappedDevice: mapped, uuid: validated.uuid, firstBoot: false,
            integrity: validated.integrity)
    }

    /// Printed when a volume is enrolled with the platform seal.
    static var platformWarning: String {
        "vhsm-init: warning: seal platform binds no image: any kernel, initramfs and command line the host "
            + "launches on this chip with the same policy and HOST_DATA (and ID key, if any) derives this key and "
            + "opens the volume; use seal measurement or image unless every such image is trusted"
    }

    static func refused(_ refusal: SealingRefusal) -> BootError {
        BootError(
            stage: .attest, cause: "\(refusal) (nothing was enrolled or unlocked)",
            next: "launch without DEBUG and MIGRATE_MA in the guest policy, without SMT unless allow_smt is set, "
                + "on firmware whose COMMITTED_TCB meets min_tcb")
    }

    /// The token MAC first (it proves the header parameters are the ones enrolled with this key), then the
    /// activation from the validated copy.
    private func verifyAndUnlock(_ validated: ValidatedVolume<Volume.Header>, key: [UInt8]) throws(BootError) -> String
    {
        do { try volume.verifyMAC(validated, sealingKey: key) } catch {
            throw BootError(
                stage: .volume, cause: "the vhsm-snp token MAC does not verify on \(validated.device): \(error)",
                next: "the header was changed, or this launch derives another key (other chip, VCEK disabled, "
                    + "different HOST_DATA or ID key); compare the report above with the enrollment")
        }
        return try unlock(validated, key: key)
    }

    private func validate(_ device: String) throws(BootError) -> ValidatedVolume<Volume.Header> {
        do { return try volume.validate(device: device) } catch {
            throw BootError(
                stage: .volume, cause: "the LUKS2 header of \(device) is not one vhsm writes: \(error)",
                next: "the host may have altered the header (cipher_null, extra segments); restore it from a "
                    + "backup or recover")
        }
    }

    private func unlock(_ validated: ValidatedVolume<Volume.Header>, key: [UInt8]) throws(BootError) -> String {
        do { return try volume.unlock(validated, sealingKey: key, name: config.mapperName) } catch {
            throw BootError(
                stage: .volume, cause: "unlocking \(validated.device) as \(config.mapperName) failed: \(error)",
                next: "check that dm_mod, dm_crypt, ecb, xts and af_alg/algif_skcipher loaded, and that "
                    + "\(config.mapperPath) is not in use")
        }
    }
}

extension [UInt8] {
    /// Overwrites every byte with zero (key material this program owns).
    mutating func zeroize() {
        for index in indices { self[index] = 0 }
    }
}

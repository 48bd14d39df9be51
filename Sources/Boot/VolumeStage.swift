import Crypto
import SNP
import Sealing
import Volume

/// DESIGN §3 step 6: find the volume; a blank one is formatted, enrolled and given a filesystem; one of ours is
/// checked against the report, its token MAC verified, and unlocked from the validated header copy. Anything else
/// is refused. There is no path from a non-blank volume to `format`.
struct VolumeStage<Volume: BootVolume> {
    /// Derives the sealing key for an enrollment (MSG_KEY_REQ); the stage zeroes it when done.
    typealias DeriveKey = (Enrollment) throws(BootError) -> [UInt8]
    typealias MakeRequest = (_ uuid: String, _ publicKey: Curve25519.KeyAgreement.PublicKey) throws(BootError) ->
        RecoveryRequest

    var volume: Volume
    var config: BootConfig
    var report: AttestationReport
    var deriveKey: DeriveKey
    /// Asks the Secure Processor for a recovery request (an extended report whose REPORT_DATA binds `publicKey`)
    /// for the volume `uuid`: `RecoveryRequest.make(device:purpose: .volume, subject: uuid, publicKey:)`.
    var makeRequest: MakeRequest
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
        /// Re-enrolled for this launch with the operator's recovery grant.
        var reenrolled = false
        /// The enrollment of a volume still in state provisioning (a first boot, or one resumed): the caller mounts
        /// the new filesystem and then calls `markReady`. Nil for a ready volume.
        var provisioning: Enrollment? = nil
    }

    /// What an operator may do with a disk vhsm-init will not touch, when sure it holds nothing.
    static var blankingHint: String {
        "if you are sure the disk holds nothing, blank all of it on the host (a first boot needs every byte zero), "
            + "e.g. 'dd if=/dev/zero of=DISK bs=1M conv=fsync' or 'blkdiscard -z DEVICE'"
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
                next: "attach the volume this VM enrolled, or a blank disk for a first boot (check vhsm.volume); "
                    + Self.blankingHint)
        }
    }

    /// After the caller mounted the filesystem of a volume in state provisioning: the token without its state and
    /// the provisioning mark cleared. From here on the volume is never formatted again.
    func markReady(_ result: Result) throws(BootError) {
        guard let enrollment = result.provisioning else { return }
        var key = try deriveKey(enrollment)
        defer { key.zeroize() }
        let validated = try validate(result.device)
        guard validated.uuid == result.uuid, validated.enrollment == enrollment else {
            throw BootError(
                stage: .volume, cause: "the header of \(result.device) changed during the first boot",
                next: "another writer changed the disk; check the host")
        }
        do { try volume.markReady(validated, sealingKey: key) } catch {
            throw BootError(
                stage: .volume, cause: "marking \(result.device) ready failed: \(error)",
                next: "the volume stays in state provisioning and the next boot provisions it again; check the disk")
        }
        say("vhsm-init: \(result.device) is ready (provisioning finished; it will never be formatted again)")
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

    /// A first boot: `device` is blank, or (`replacing`) holds this launch's own token-less header for `uuid`.
    private func firstBoot(_ device: String, replacing unfinished: String? = nil) throws(BootError) -> Result {
        let uuid = unfinished ?? VolumeUUID.make(from: randomBytes(16))
        let enrollment: Enrollment
        do throws(SealingRefusal) {
            enrollment = try Enrollment(firstBoot: config.seal, report: report, requirements: config.sealing)
        } catch { throw Self.refused(error) }
        var key = try deriveKey(enrollment)
        defer { key.zeroize() }
        if unfinished != nil {
            do {
                try volume.verifyUnfinished(device: device, uuid: uuid, mode: enrollment.mode, sealingKey: key)
            } catch {
                throw BootError(
                    stage: .volume,
                    cause: "\(device) holds a LUKS2 header without a vhsm-snp token that is not this launch's own "
                        + "unfinished first boot: \(error); it is never formatted",
                    next: "a provisioning mark from another chip or launch (or a changed one) is refused; attach "
                        + "the disk to the launch that began it, or " + Self.blankingHint)
            }
            say(
                "vhsm-init: \(device) holds this launch's own unfinished first boot (LUKS2 \(uuid), no vhsm-snp "
                    + "token, provisioning mark verified): formatting it again")
        }
        say(
            "vhsm-init: \(device) \(unfinished == nil ? "is blank: formatting" : "formatting") LUKS2 \(uuid), "
                + "seal \(enrollment.mode.rawValue), "
                + "TCB \(enrollment.tcb.hex) (COMMITTED_TCB)\(config.integrity ? ", integrity hmac(sha256)" : "")")
        if enrollment.mode == .platform { say(Self.platformWarning) }
        let recovery: String?
        do {
            recovery = try volume.format(
                device: device, uuid: uuid, enrollment: enrollment, integrity: config.integrity, sealingKey: key,
                recoveryPublicKeyPEM: config.recoveryKeyPEM, replacingUnfinished: unfinished != nil)
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
        let validated = try readBack(device, uuid: uuid, enrollment: enrollment, written: "", during: "formatting")
        do { try volume.verifyMAC(validated, sealingKey: key) } catch {
            throw Self.macRefusal(validated.device, error)
        }
        return try provision(validated, key: key)
    }

    /// The rest of a first boot, on a volume in state provisioning whose MAC verified: the integrity wipe (when
    /// the header has integrity), the unlock and a new filesystem. No user data can exist before the volume is
    /// ready, so a resumed first boot makes the filesystem again whatever an interrupted one left.
    private func provision(_ validated: ValidatedVolume<Volume.Header>, key: [UInt8]) throws(BootError) -> Result {
        if validated.integrity {
            do { try volume.initializeIntegrity(validated, sealingKey: key) } catch {
                throw BootError(
                    stage: .volume, cause: "the integrity wipe of \(validated.device) failed: \(error)",
                    next: "the volume stays in state provisioning and the next boot wipes it again; check the disk "
                        + "and that dm_integrity loaded")
            }
        }
        let mapped = try unlock(validated, key: key)
        try makeFilesystem(mapped)
        return Result(
            device: validated.device, mappedDevice: mapped, uuid: validated.uuid, firstBoot: true,
            integrity: validated.integrity, provisioning: validated.enrollment)
    }

    /// A volume of ours: compared with the report, its MAC verified with this launch's key, unlocked. A launch that
    /// cannot open it (another chip, MEASUREMENT, ID block or TCB; a MAC that does not verify) is refused; with a
    /// `vhsm-recovery` token it first either prints a recovery request for this launch, or, when the header holds
    /// the operator's grant for this launch, re-enrolls with it and unlocks.
    private func open(_ device: String) throws(BootError) -> Result {
        let unfinished: UnfinishedHeader?
        do { unfinished = try volume.unfinished(device: device) } catch {
            throw BootError(
                stage: .volume, cause: "the LUKS2 header of \(device) is not one vhsm writes: \(error)",
                next: "the host may have altered the header; restore it from a backup ('vhsm volume inspect DISK' "
                    + "on a host shows what is refused), or " + Self.blankingHint)
        }
        if let unfinished {
            guard unfinished.marked else {
                throw BootError(
                    stage: .volume,
                    cause: "\(device) holds a LUKS2 header (UUID \(unfinished.uuid)) without a vhsm-snp token or "
                        + "provisioning mark: not a vhsm volume; a non-blank volume is never formatted",
                    next: "attach the volume this VM enrolled, or " + Self.blankingHint)
            }
            return try firstBoot(device, replacing: unfinished.uuid)
        }
        let validated = try validate(device)
        let refusal: BootError
        if let refused = EnrollmentCheck.refusal(of: validated.enrollment, report: report, configured: config.seal) {
            refusal = refused
        } else {
            var key = try deriveKey(validated.enrollment)
            defer { key.zeroize() }
            var macFailure: (any Error)?
            do { try volume.verifyMAC(validated, sealingKey: key) } catch { macFailure = error }
            if let macFailure {
                refusal = Self.macRefusal(validated.device, macFailure)
            } else if validated.provisioning {
                say(
                    "vhsm-init: \(device) stopped during its first boot (token state provisioning, MAC verified): "
                        + "resuming provisioning (integrity wipe if any, new filesystem)")
                return try provision(validated, key: key)
            } else {
                let mapped = try unlock(validated, key: key)
                if let grant = validated.reenrollGrant { clearStale(grant, validated, sealingKey: key) }
                return Result(
                    device: device, mappedDevice: mapped, uuid: validated.uuid, firstBoot: false,
                    integrity: validated.integrity)
            }
        }
        return try recover(validated, refusal: refusal)
    }

    static func macRefusal(_ device: String, _ error: any Error) -> BootError {
        BootError(
            stage: .volume, cause: "the vhsm-snp token MAC does not verify on \(device): \(error)",
            next: "the header was changed, or this launch derives another key (other chip, VCEK disabled, "
                + "different HOST_DATA or ID key); compare the report above with the enrollment")
    }

    // MARK: Moving the volume to this launch (vhsm volume reenroll)

    /// The refused launch's way forward: the enrollment this launch would make and its sealing key give the
    /// request key and challenge (`ReenrollGrant`); with a grant in the header, re-enroll; otherwise print the
    /// request and challenge and fail with `refusal`, naming the operator's command. The disk is written only
    /// when a grant opens, answers the challenge and its recovery key opens the recovery keyslot.
    private func recover(_ validated: ValidatedVolume<Volume.Header>, refusal: BootError) throws(BootError) -> Result {
        guard validated.hasRecoveryKeyslot else {
            say("vhsm-init: \(validated.device) has no vhsm-recovery token: it cannot be moved to this launch")
            throw refusal
        }
        guard let operatorKey = config.recoveryKeyPEM.flatMap({ HPKEPublicKey(pem: $0) }) else {
            say(
                "vhsm-init: no recovery_key in the configuration: no recovery request (this launch could not tell "
                    + "the operator's grant from the host's)")
            throw refusal
        }
        let enrollment: Enrollment
        do throws(SealingRefusal) {
            enrollment = try Enrollment(firstBoot: config.seal, report: report, requirements: config.sealing)
        } catch { throw Self.refused(error) }
        var key = try deriveKey(enrollment)
        defer { key.zeroize() }
        let uuid = validated.uuid
        let requestKey: Curve25519.KeyAgreement.PrivateKey
        do { requestKey = try ReenrollGrant.requestKey(sealingKey: key, volumeUUID: uuid) } catch {
            throw BootError(stage: .volume, cause: error.description, next: "report this as a bug")
        }
        let command = EnrollmentCheck.reenrollCommand(report)
        guard let grant = validated.reenrollGrant else {
            try printRequest(uuid, requestKey: requestKey, sealingKey: key, operatorKey: operatorKey)
            let next =
                refusal.next.contains("vhsm volume reenroll")
                ? refusal.next : "\(refusal.next); or move the volume to this launch: \(command)"
            throw BootError(stage: refusal.stage, cause: refusal.cause, next: next)
        }

        var secret: [UInt8]
        do { secret = try grant.open(with: .x25519(requestKey)) } catch {
            try printRequest(uuid, requestKey: requestKey, sealingKey: key, operatorKey: operatorKey)
            throw BootError(
                stage: .volume,
                cause: "the recovery grant in the header of \(validated.device) is not for this launch: \(error) "
                    + "(expected: the key of this launch's request, printed above)",
                next: "make a new grant from the request printed above: \(command)")
        }
        defer { secret.zeroize() }
        let recoveryKey: RecoveryKey
        do {
            recoveryKey = try ReenrollGrant.recoveryKey(
                in: secret, challenge: ReenrollGrant.challenge(sealingKey: key, volumeUUID: uuid), volumeUUID: uuid)
        } catch {
            try printRequest(uuid, requestKey: requestKey, sealingKey: key, operatorKey: operatorKey)
            throw BootError(
                stage: .volume, cause: "\(error.description) (nothing was enrolled or unlocked)",
                next: "only 'vhsm volume reenroll' with the operator's key makes a grant this launch accepts; "
                    + "make a new one from the request printed above: \(command)")
        }
        let slot: Int
        do {
            slot = try volume.reenroll(validated, recoveryKey: recoveryKey, enrollment: enrollment, sealingKey: key)
        } catch {
            throw BootError(
                stage: .volume,
                cause: "re-enrolling \(validated.device) with the operator's recovery grant failed: \(error) "
                    + "(the header keeps a working machine or recovery keyslot)",
                next: "a grant whose key does not open the recovery keyslot was not made for this volume; run "
                    + "'vhsm volume inspect DISK' and make a new grant: \(command)")
        }
        say(
            "vhsm-init: \(validated.device) re-enrolled with the operator's recovery grant: seal "
                + "\(enrollment.mode.rawValue), TCB \(enrollment.tcb.hex) (COMMITTED_TCB), keyslot \(slot)")
        do { try volume.removeReenrollGrant(device: validated.device) } catch {
            say(
                "vhsm-init: cannot remove the used recovery grant from \(validated.device) (the next boot will): \(error)"
            )
        }
        let (revalidated, mapped) = try readBackAndUnlock(
            validated.device, uuid: uuid, enrollment: enrollment, key: key, written: " after re-enrolling",
            during: "the re-enrollment")
        return Result(
            device: validated.device, mappedDevice: mapped, uuid: uuid, firstBoot: false,
            integrity: revalidated.integrity, reenrolled: true)
    }

    /// Prints this launch's recovery request (REPORT_DATA binds the request key) and its challenge sealed to the
    /// operator's key, each as a line saying what it is, then its armored lines (BEGIN and END on lines of their
    /// own). Nothing secret: the public key, a report, certificates, and a ciphertext only the operator opens.
    private func printRequest(
        _ uuid: String, requestKey: Curve25519.KeyAgreement.PrivateKey, sealingKey: [UInt8],
        operatorKey: HPKEPublicKey
    ) throws(BootError) {
        let request = try makeRequest(uuid, requestKey.publicKey)
        var challenge = ReenrollGrant.challenge(sealingKey: sealingKey, volumeUUID: uuid).withUnsafeBytes {
            Array($0)
        }
        defer { challenge.zeroize() }
        let sealed: SealedSecret
        do {
            sealed = try SealedSecret.seal(
                challenge, kind: .recoveryChallenge,
                context: RecoveryRequest.context(purpose: .volume, subject: uuid), to: operatorKey)
        } catch {
            throw BootError(
                stage: .volume, cause: "cannot seal the recovery challenge to the operator's key: \(error)",
                next: "check recovery_key in the configuration")
        }
        let fingerprint = Hex.encode(HPKEPublicKey.x25519(requestKey.publicKey).fingerprint)
        say(
            "vhsm-init: recovery request for volume \(uuid) (this launch's key sha256 \(fingerprint), "
                + "bound by REPORT_DATA):")
        for line in request.armored.split(separator: "\n") { say(String(line)) }
        say(
            "vhsm-init: recovery challenge for volume \(uuid), sealed to the operator's key sha256 "
                + "\(Hex.encode(operatorKey.fingerprint)):")
        for line in sealed.armored.split(separator: "\n") { say(String(line)) }
    }

    /// After a normal unlock: a grant for this launch's own request key is what an interrupted re-enrollment
    /// leaves (the keyslot moved, the token removal did not happen); it is removed. Any other grant stays.
    private func clearStale(_ grant: SealedSecret, _ validated: ValidatedVolume<Volume.Header>, sealingKey: [UInt8]) {
        guard let requestKey = try? ReenrollGrant.requestKey(sealingKey: sealingKey, volumeUUID: validated.uuid),
            grant.recipientFingerprint == HPKEPublicKey.x25519(requestKey.publicKey).fingerprint
        else {
            say("vhsm-init: \(validated.device) holds a recovery grant for another launch (left in place)")
            return
        }
        do {
            try volume.removeReenrollGrant(device: validated.device)
            say("vhsm-init: removed the recovery grant an interrupted re-enrollment left on \(validated.device)")
        } catch {
            say("vhsm-init: cannot remove the used recovery grant from \(validated.device): \(error)")
        }
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

    /// After this stage wrote the header of `device` (`during` names the write): reads it back, checks it is the
    /// volume `uuid` with `enrollment`, and unlocks it with `key`.
    private func readBackAndUnlock(
        _ device: String, uuid: String, enrollment: Enrollment, key: [UInt8], written: String, during: String
    ) throws(BootError) -> (ValidatedVolume<Volume.Header>, String) {
        let validated = try readBack(device, uuid: uuid, enrollment: enrollment, written: written, during: during)
        return (validated, try verifyAndUnlock(validated, key: key))
    }

    /// The header of `device` read back after this stage wrote it, checked to be the volume `uuid` with
    /// `enrollment` (`written` qualifies the write in the message, `during` names it).
    private func readBack(
        _ device: String, uuid: String, enrollment: Enrollment, written: String, during: String
    ) throws(BootError) -> ValidatedVolume<Volume.Header> {
        let validated = try validate(device)
        guard validated.uuid == uuid, validated.enrollment == enrollment else {
            throw BootError(
                stage: .volume,
                cause: "the header read back from \(device)\(written) differs from the one just written "
                    + "(UUID \(validated.uuid), expected \(uuid))",
                next: "another writer changed the disk during \(during); check the host")
        }
        return validated
    }

    /// The token MAC first (it proves the header parameters are the ones enrolled with this key), then the
    /// activation from the validated copy.
    private func verifyAndUnlock(_ validated: ValidatedVolume<Volume.Header>, key: [UInt8]) throws(BootError) -> String
    {
        do { try volume.verifyMAC(validated, sealingKey: key) } catch {
            throw Self.macRefusal(validated.device, error)
        }
        return try unlock(validated, key: key)
    }

    private func validate(_ device: String) throws(BootError) -> ValidatedVolume<Volume.Header> {
        do { return try volume.validate(device: device) } catch {
            throw BootError(
                stage: .volume, cause: "the LUKS2 header of \(device) is not one vhsm writes: \(error)",
                next: "the host may have altered the header (cipher_null, extra segments); restore it from a "
                    + "backup ('vhsm volume inspect DISK' on a host shows what is refused)")
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

import Crypto
import SNP
import SNPGuest
import SystemPackage

#if Emulator
import SNPEmulator
#endif

/// DESIGN §3 steps 4–5: exactly the configured provider (never another), one report, and sealing keys by
/// MSG_KEY_REQ.
struct Attestation {
    var device: any GuestDevice

    /// Opens the configured provider after waiting for its device node to appear.
    static func open(_ config: BootConfig) throws(BootError) -> Attestation {
        let path = config.attestation.effectivePath
        let module = config.attestation.provider == .emulator ? "virtio_console" : "sev_guest"
        guard Files.waitFor(path, milliseconds: config.deviceWaitMilliseconds) else {
            throw BootError(
                stage: .attest,
                cause: "\(path) did not appear within \(config.deviceWaitMilliseconds) ms",
                next: config.attestation.provider == .emulator
                    ? "start QEMU with a virtserialport connected to 'vhsm emulator serve' and load \(module)"
                    : "launch the VM as an SEV-SNP guest and load \(module) (is SEV-SNP enabled on the host?)")
        }
        switch config.attestation.provider {
        case .sevGuest:
            return Attestation(device: SEVGuestDevice(path: FilePath(path)))
        case .emulator:
            #if Emulator
            return Attestation(device: EmulatorClient(path: path))
            #else
            throw BootError(
                stage: .attest, cause: "the emulator provider is not part of this build",
                next: "use attestation.provider sev-guest, or boot a test image built with --traits Emulator")
            #endif
        case .tsm:
            throw BootError(
                stage: .attest, cause: "configfs-tsm offers no MSG_KEY_REQ", next: "use attestation.provider sev-guest")
        }
    }

    /// MSG_REPORT_REQ at VMPL 0 with zero REPORT_DATA: the report is printed, not sent anywhere.
    func report() throws(BootError) -> AttestationReport {
        do { return try device.attestationReport(ReportRequest()) } catch {
            throw BootError(
                stage: .attest, cause: "\(device.name): \(error)",
                next: "check the guest's VMPCK (the driver disables it after a failed request) and the host's "
                    + "SEV firmware")
        }
    }

    /// The sealing key for `enrollment` (32 bytes). The caller zeroes it.
    func sealingKey(for enrollment: Enrollment) throws(BootError) -> [UInt8] {
        let request = enrollment.keyRequest
        do { return try device.derivedKeyBytes(request) } catch {
            throw BootError(
                stage: .derive,
                cause:
                    "\(device.name): MSG_KEY_REQ (root VCEK, fields \(request.guestFieldSelect.names.joined(separator: ",")), "
                    + "TCB \(request.tcbVersion.hex), SVN \(request.guestSVN)): \(error)",
                next: "a pinned TCB above COMMITTED_TCB or an SVN above the ID block's is refused; a VM launched "
                    + "with VCEK disabled cannot derive VCEK keys")
        }
    }

    /// A recovery request for volume `uuid` binding `publicKey` (an extended report: the host's certificate table
    /// travels with it when it gave one).
    func recoveryRequest(
        volumeUUID uuid: String, publicKey: Curve25519.KeyAgreement.PublicKey
    ) throws(BootError)
        -> RecoveryRequest
    {
        do {
            return try RecoveryRequest.make(device: device, purpose: .volume, subject: uuid, publicKey: publicKey)
        } catch {
            throw BootError(
                stage: .attest, cause: "\(device.name): the extended report for the recovery request: \(error)",
                next: "check the guest's VMPCK and the host's SEV firmware; the volume was left as it is")
        }
    }

    /// The one or two console lines an operator needs to compare a launch with its expected values. REPORTED_TCB
    /// names the VCEK (the host chooses it); COMMITTED_TCB is what a new enrollment pins.
    static func summary(_ report: AttestationReport) -> [String] {
        let layout = report.product?.tcbLayout ?? .milanGenoa
        let product = report.product.map { " \($0.name)" } ?? ""
        return [
            "vhsm-init: report MEASUREMENT=\(Hex.encode(report.measurement)) "
                + "POLICY=0x\(String(report.policy.rawValue, radix: 16)) "
                + "REPORTED_TCB=\(report.reportedTCB.hex) (\(report.reportedTCB.levels(layout))) "
                + "COMMITTED_TCB=\(report.committedTCB.hex)",
            "vhsm-init: report CHIP_ID=\(Hex.encode(report.chipID.prefix(8)))… "
                + "HOST_DATA=\(Hex.encode(report.hostData)) VMPL=\(report.vmpl) GUEST_SVN=\(report.guestSVN) "
                + "v\(report.version)\(product)",
        ]
    }
}

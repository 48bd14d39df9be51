import FoundationEssentials
import SNP
import SNPGuest
import Sealing

#if Emulator
import SNPEmulator
#endif

/// Where the barrier root key comes from outside dev mode: the SEV-SNP Secure Processor (MSG_KEY_REQ with the
/// VCEK root, the guest fields of the seal mode and a TCB pinned when the data directory was first used),
/// turned into the root key by `GuestSealProvider` (HKDF, label distinct from the LUKS passphrase's). There is
/// never a fallback to another provider.
///
/// Seal modes, as for the LUKS volume (DESIGN §4): `measurement` (default: GUEST_POLICY, MEASUREMENT, TCB),
/// `platform` (GUEST_POLICY, TCB: survives image changes on this chip), `image` (GUEST_POLICY, IMAGE_ID,
/// FAMILY_ID, GUEST_SVN, TCB: images signed with the same ID key, family and image id at an SVN not below the
/// pinned one open the data; older ones do not).
enum BarrierSeal {
    /// What the data directory records in the clear about its seal (`seal.json`): nothing secret.
    struct Pin: Codable {
        var provider: String
        var tcb: String
        var fields: [String]
        /// The GUEST_SVN the key is derived at (image mode); absent in older pins.
        var svn: UInt32?
    }

    /// The device for a `seal` setting: `sev-guest`, or `emulator:SOCKET` in test builds.
    static func device(_ setting: String) throws -> any GuestDevice {
        if setting == "sev-guest" { return SEVGuestDevice() }
        if setting.hasPrefix("emulator:") {
            #if Emulator
            return EmulatorClient(path: String(setting.dropFirst("emulator:".count)))
            #else
            throw ConfigError(
                "seal 'emulator:…' is only available in test builds (swift build --traits Emulator); "
                    + "production builds seal with 'sev-guest'")
            #endif
        }
        throw ConfigError("unknown seal '\(setting)': use 'sev-guest' (or 'emulator:SOCKET' in test builds)")
    }

    /// The seal provider for `directory`. The launch must meet `requirements` at every start (no DEBUG, no
    /// MIGRATE_MA, no SMT unless allowed, COMMITTED_TCB at least min_tcb); on first use the TCB they pin
    /// (COMMITTED_TCB, never the host-set REPORTED_TCB) and in image mode the GUEST_SVN are recorded. A data
    /// directory keeps the provider and mode it was first sealed with.
    static func provider(
        _ setting: String, mode: SealMode = .measurement, requirements: SealingRequirements = SealingRequirements(),
        directory: String, warn: (String) -> Void = { _ in }
    ) throws -> any SealProvider {
        try provider(
            device: try device(setting), setting: setting, mode: mode, requirements: requirements,
            directory: directory, warn: warn)
    }

    /// The same over an opened device (tests pass an emulated guest).
    static func provider(
        device: any GuestDevice, setting: String, mode: SealMode, requirements: SealingRequirements, directory: String,
        warn: (String) -> Void
    ) throws -> any SealProvider {
        let report: AttestationReport
        do { report = try device.attestationReport(ReportRequest()) } catch {
            throw ConfigError("the '\(setting)' seal cannot get an attestation report from \(device.name): \(error)")
        }
        if let refusal = requirements.refusal(for: report) {
            throw ConfigError(
                "the '\(setting)' seal refuses to open \(directory): \(refusal); launch without DEBUG and "
                    + "MIGRATE_MA, without SMT unless allow_smt is set, on firmware whose COMMITTED_TCB meets min_tcb")
        }
        let pinPath = directory.hasSuffix("/") ? directory + "seal.json" : directory + "/seal.json"
        let pin: Pin
        if let data = FileManager.default.contents(atPath: pinPath) {
            pin = try JSONDecoder().decode(Pin.self, from: data)
            guard pin.provider == setting else {
                throw ConfigError(
                    "\(directory) was sealed with '\(pin.provider)', the config says '\(setting)'; "
                        + "a data directory keeps its seal provider")
            }
            let fields = mode.guestFieldSelect.names
            guard pin.fields == fields else {
                throw ConfigError(
                    "\(directory) was sealed to the guest fields \(pin.fields.joined(separator: ",")), the config's seal "
                        + "mode '\(mode.rawValue)' binds \(fields.joined(separator: ",")); a data directory keeps "
                        + "its seal mode")
            }
        } else {
            let tcb: TCBVersion
            do throws(SealingRefusal) { tcb = try requirements.pin(for: report) } catch {
                throw ConfigError("the '\(setting)' seal refuses to enroll \(directory): \(error)")
            }
            pin = Pin(
                provider: setting, tcb: tcb.hex, fields: mode.guestFieldSelect.names,
                svn: mode == .image ? report.guestSVN : nil)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            guard
                FileManager.default.createFile(
                    atPath: pinPath, contents: try encoder.encode(pin), attributes: [.posixPermissions: 0o600])
            else { throw ConfigError("cannot write \(pinPath)") }
            if mode == .platform { warn(platformWarning) }
        }
        let tcb = try TCBVersion(hex: pin.tcb)
        let request = DerivedKeyRequest(
            root: .vcek, guestFieldSelect: mode.guestFieldSelect, guestSVN: pin.svn ?? 0, tcbVersion: tcb)
        return GuestSealProvider(name: setting) { try device.derivedKeyBytes(request) }
    }

    /// Printed when a data directory is first sealed in platform mode.
    static let platformWarning =
        "vhsmd: warning: seal_mode platform binds no image: any kernel, initramfs and command line the host "
        + "launches on this chip with the same policy and HOST_DATA (and ID key, if any) derives this barrier key; "
        + "use measurement or image unless every such image is trusted"
}

/// A configuration problem, reported once at start.
struct ConfigError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

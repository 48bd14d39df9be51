import FoundationEssentials
import SNP
import SNPGuest

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

    enum Mode: String, CaseIterable {
        case measurement, platform, image

        var fields: GuestFieldSelect {
            switch self {
            case .measurement: [.guestPolicy, .measurement, .tcbVersion]
            case .platform: [.guestPolicy, .tcbVersion]
            case .image: [.guestPolicy, .imageID, .familyID, .guestSVN, .tcbVersion]
            }
        }
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

    /// The seal provider for `directory`, pinning the current TCB (and in image mode the GUEST_SVN) on first use.
    /// A data directory keeps the provider and mode it was first sealed with.
    static func provider(_ setting: String, mode: Mode = .measurement, directory: String) throws -> any SealProvider {
        let device = try device(setting)
        let pinPath = directory.hasSuffix("/") ? directory + "seal.json" : directory + "/seal.json"
        let pin: Pin
        if let data = FileManager.default.contents(atPath: pinPath) {
            pin = try JSONDecoder().decode(Pin.self, from: data)
            guard pin.provider == setting else {
                throw ConfigError(
                    "\(directory) was sealed with '\(pin.provider)', the config says '\(setting)'; "
                        + "a data directory keeps its seal provider")
            }
            guard pin.fields == mode.fields.names else {
                throw ConfigError(
                    "\(directory) was sealed to the guest fields \(pin.fields.joined(separator: ",")), the config's seal "
                        + "mode '\(mode.rawValue)' binds \(mode.fields.names.joined(separator: ",")); a data directory keeps "
                        + "its seal mode")
            }
        } else {
            let report = try device.attestationReport(ReportRequest())
            pin = Pin(
                provider: setting, tcb: report.currentTCB.hex, fields: mode.fields.names,
                svn: mode == .image ? report.guestSVN : nil)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            guard
                FileManager.default.createFile(
                    atPath: pinPath, contents: try encoder.encode(pin), attributes: [.posixPermissions: 0o600])
            else { throw ConfigError("cannot write \(pinPath)") }
        }
        let tcb = try TCBVersion(hex: pin.tcb)
        let request = DerivedKeyRequest(
            root: .vcek, guestFieldSelect: mode.fields, guestSVN: pin.svn ?? 0, tcbVersion: tcb)
        return GuestSealProvider(name: setting) { try device.derivedKeyBytes(request) }
    }
}

/// A configuration problem, reported once at start.
struct ConfigError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

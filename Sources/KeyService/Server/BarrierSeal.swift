import Crypto
import FoundationEssentials
import Glibc
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
    struct Pin: Codable, Equatable, Sendable {
        var provider: String
        var tcb: String
        var fields: [String]
        /// The GUEST_SVN the key is derived at (image mode); absent in older pins.
        var svn: UInt32?
        /// The CHIP_ID and MEASUREMENT (hex) of the launch that first sealed the directory, for the message when
        /// another launch cannot open it; absent in older pins. Not secret: the host knows both.
        var chipID: String? = nil
        var measurement: String? = nil

        enum CodingKeys: String, CodingKey {
            case provider, tcb, fields, svn, measurement
            case chipID = "chip_id"
        }

        /// What the directory was sealed to, against `report` (this launch): the fields that differ, as
        /// "name: sealed X, this launch Y"; those seal.json does not record are not compared.
        func differences(from report: AttestationReport) -> [String] {
            var differences: [String] = []
            if let chipID, chipID != Hex.encode(report.chipID) {
                differences.append(
                    "CHIP_ID: sealed on \(chipID.prefix(16))…, this launch \(Hex.encode(report.chipID.prefix(8)))…")
            }
            if fields.contains("measurement"), let measurement, measurement != Hex.encode(report.measurement) {
                differences.append(
                    "MEASUREMENT: sealed \(measurement.prefix(16))…, this launch \(Hex.encode(report.measurement.prefix(8)))…"
                )
            }
            return differences
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
        let pin = try pin(
            report: report, setting: setting, mode: mode, requirements: requirements, directory: directory, warn: warn)
        return try provider(device: device, setting: setting, pin: pin)
    }

    /// The pin in `directory`'s seal.json, checked against the configured provider and mode; without one, a fresh
    /// pin for this launch (`report`), written there.
    static func pin(
        report: AttestationReport, setting: String, mode: SealMode, requirements: SealingRequirements,
        directory: String, warn: (String) -> Void
    ) throws -> Pin {
        let pinPath = pinPath(directory)
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
            pin = try freshPin(
                report: report, setting: setting, mode: mode, requirements: requirements, directory: directory)
            try write(pin, to: pinPath)
            if mode == .platform { warn(platformWarning) }
        }
        return pin
    }

    /// MSG_KEY_REQ for `pin`: the VCEK root, the pin's guest fields, SVN and TCB.
    static func keyRequest(_ pin: Pin) throws -> DerivedKeyRequest {
        DerivedKeyRequest(
            root: .vcek, guestFieldSelect: try GuestFieldSelect(names: pin.fields.joined(separator: ",")),
            guestSVN: pin.svn ?? 0, tcbVersion: try TCBVersion(hex: pin.tcb))
    }

    /// The key source for `pin` on `device`.
    static func provider(device: any GuestDevice, setting: String, pin: Pin) throws -> any SealProvider {
        let request = try keyRequest(pin)
        return GuestSealProvider(name: setting) { try device.derivedKeyBytes(request) }
    }

    /// The pin a data directory first sealed on this launch records: COMMITTED_TCB (never the host-set
    /// REPORTED_TCB) as `requirements` pin it, the mode's fields and, in image mode, the GUEST_SVN.
    static func freshPin(
        report: AttestationReport, setting: String, mode: SealMode, requirements: SealingRequirements,
        directory: String
    ) throws -> Pin {
        let tcb: TCBVersion
        do throws(SealingRefusal) { tcb = try requirements.pin(for: report) } catch {
            throw ConfigError("the '\(setting)' seal refuses to enroll \(directory): \(error)")
        }
        return Pin(
            provider: setting, tcb: tcb.hex, fields: mode.guestFieldSelect.names,
            svn: mode == .image ? report.guestSVN : nil, chipID: Hex.encode(report.chipID),
            measurement: Hex.encode(report.measurement))
    }

    static func pinPath(_ directory: String) -> String {
        directory.hasSuffix("/") ? directory + "seal.json" : directory + "/seal.json"
    }

    /// Writes `pin` (mode 0600), replacing the file atomically.
    static func write(_ pin: Pin, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let temporary = path + ".new"
        _ = unlink(temporary)
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: try encoder.encode(pin), attributes: [.posixPermissions: 0o600]),
            rename(temporary, path) == 0
        else { throw ConfigError("cannot write \(path)") }
    }

    /// What vhsmd needs to move `directory` to this launch once the operator releases its escrowed root key: the
    /// request (an extended report binding an X25519 key) and this launch's seal provider with a fresh pin, written to
    /// seal.json only after the keyring is rekeyed.
    static func recovery(
        _ setting: String, mode: SealMode, requirements: SealingRequirements, directory: String
    ) throws -> BarrierRecovery {
        recovery(
            device: try device(setting), setting: setting, mode: mode, requirements: requirements, directory: directory)
    }

    /// The same over an opened device (tests pass an emulated guest).
    static func recovery(
        device: any GuestDevice, setting: String, mode: SealMode, requirements: SealingRequirements, directory: String
    ) -> BarrierRecovery {
        BarrierRecovery(
            directory: directory,
            makeRequest: { publicKey in
                try RecoveryRequest.make(device: device, purpose: .barrier, subject: directory, publicKey: publicKey)
            },
            repin: {
                let report = try device.attestationReport(ReportRequest())
                let pin = try freshPin(
                    report: report, setting: setting, mode: mode, requirements: requirements, directory: directory)
                return (
                    try provider(device: device, setting: setting, pin: pin), { try write(pin, to: pinPath(directory)) }
                )
            })
    }

    /// Recovery when vhsm-init handed the keys over: requests from the report broker (`device`, which derives no
    /// key), and the re-pin to the fresh pin vhsm-init derived, written to seal.json on commit.
    static func recovery(
        handoff: BarrierHandoff, device: any GuestDevice, setting: String, directory: String
    )
        -> BarrierRecovery
    {
        BarrierRecovery(
            directory: directory,
            makeRequest: { publicKey in
                try RecoveryRequest.make(device: device, purpose: .barrier, subject: directory, publicKey: publicKey)
            },
            repin: {
                (handoff.freshProvider(name: setting), { try write(handoff.fresh, to: pinPath(directory)) })
            })
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

/// What vhsmd needs to move a data directory to this launch after operator recovery (`BarrierSeal.recovery`).
struct BarrierRecovery: Sendable {
    /// The data directory: the subject of the request and the escrow's context.
    let directory: String
    /// A request for `publicKey`, from this launch's Secure Processor.
    let makeRequest: @Sendable (Curve25519.KeyAgreement.PublicKey) throws -> RecoveryRequest
    /// This launch's seal provider with a fresh pin, and what records that pin (seal.json).
    let repin: @Sendable () throws -> (provider: any SealProvider, commit: @Sendable () throws -> Void)

    /// The escrow's and the grant's context.
    var context: String { RecoveryRequest.context(purpose: .barrier, subject: directory) }
}

import Crypto
import FoundationEssentials
import Glibc
public import SNP
import Sealing

/// What vhsm-init (PID 1) does for vhsmd before starting it, in the guest binary that links both: it reads
/// vhsmd's configuration (`--config PATH` in `handoff.args`), checks the launch against its sealing requirements,
/// reads or writes the pin in seal.json and derives the two barrier root keys (`BarrierHandoff`). vhsmd then runs
/// unprivileged, without the Secure Processor, and gets the keys on an inherited descriptor.
public enum VHSMDHandoff {
    /// What vhsm-init needs to start vhsmd: the descriptor's bytes (zero them when done), the paths vhsmd must own,
    /// the options that tell vhsmd about the handoff, and console lines.
    public struct Prepared: Sendable {
        public var descriptorContents: [UInt8]
        public var ownedPaths: [String]
        public var arguments: [String]
        public var lines: [String]
    }

    /// The command-line options vhsm-init adds (never in the measured configuration).
    public static let descriptorOption = "--barrier-key-fd"
    public static let reportSocketOption = "--report-socket"

    /// Prepares vhsmd's start: `arguments` are `handoff.args`; `device` is PID 1's Secure Processor; vhsmd will read
    /// the keys from `descriptor` and ask `reportSocket` for reports.
    public static func prepare(
        arguments: [String], device: any GuestDevice, descriptor: Int32, reportSocket: String
    ) throws -> Prepared {
        let path = try configPath(arguments)
        let settings = try ServerConfig.load(path)
        let setting = settings.seal
        let directory = settings.dataDirectory
        var lines: [String] = []
        let report: AttestationReport
        do { report = try device.attestationReport(ReportRequest()) } catch {
            throw ConfigError("the '\(setting)' seal cannot get an attestation report from \(device.name): \(error)")
        }
        if let refusal = settings.sealing.refusal(for: report) {
            throw ConfigError(
                "the '\(setting)' seal refuses to open \(directory): \(refusal); launch without DEBUG and "
                    + "MIGRATE_MA, without SMT unless allow_smt is set, on firmware whose COMMITTED_TCB meets min_tcb")
        }
        if access(directory, F_OK) != 0, mkdir(directory, 0o700) != 0 {
            throw ConfigError("cannot create the data directory \(directory): \(String(cString: strerror(errno)))")
        }
        let pinned = try BarrierSeal.pin(
            report: report, setting: setting, mode: settings.sealMode, requirements: settings.sealing,
            directory: directory, warn: { lines.append($0) })
        let fresh = try BarrierSeal.freshPin(
            report: report, setting: setting, mode: settings.sealMode, requirements: settings.sealing,
            directory: directory)
        let freshKey: SymmetricKey
        do { freshKey = try rootKey(fresh, device: device, setting: setting) } catch {
            throw ConfigError("cannot derive this launch's barrier root key for \(directory): \(error)")
        }
        var pinnedKey: SymmetricKey? = freshKey
        var failure: String?
        if pinned != fresh {
            // Another chip, a TCB above COMMITTED_TCB or another SVN: vhsmd starts sealed and waits for recovery.
            do { pinnedKey = try rootKey(pinned, device: device, setting: setting) } catch {
                pinnedKey = nil
                failure = "\(error)"
            }
        }
        let handoff = BarrierHandoff(
            pinned: pinned, fresh: fresh, pinnedKey: pinnedKey, pinnedFailure: failure, freshKey: freshKey)
        var owned = [directory]
        if let audit = settings.auditFile { owned.append(audit) }
        if case .files(let certificate, let key) = settings.tls { owned += [certificate, key] }
        lines.append(
            "vhsm-init: vhsmd's barrier keys derived (pin TCB \(pinned.tcb)"
                + (pinned == fresh
                    ? ", current" : ", this launch \(fresh.tcb)\(pinnedKey == nil ? ", pinned key unavailable" : "")")
                + ")")
        return Prepared(
            descriptorContents: try handoff.encoded(), ownedPaths: owned,
            arguments: [descriptorOption, "\(descriptor)", reportSocketOption, reportSocket], lines: lines)
    }

    /// `--config PATH` or `--config=PATH` in `handoff.args`.
    static func configPath(_ arguments: [String]) throws -> String {
        for (index, argument) in arguments.enumerated() {
            if argument == "--config", index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--config=") { return String(argument.dropFirst("--config=".count)) }
        }
        throw ConfigError(
            "handoff.args \(arguments) name no vhsmd configuration: vhsm-init derives vhsmd's barrier key from the "
                + "file given with --config PATH, so vhsmd runs in config mode under vhsm-init")
    }

    /// The barrier root key for `pin` (MSG_KEY_REQ, then `GuestSealProvider`'s HKDF).
    static func rootKey(_ pin: BarrierSeal.Pin, device: any GuestDevice, setting: String) throws -> SymmetricKey {
        let request = try BarrierSeal.keyRequest(pin)
        return try GuestSealProvider(name: setting) { try device.derivedKeyBytes(request) }.rootKey()
    }
}

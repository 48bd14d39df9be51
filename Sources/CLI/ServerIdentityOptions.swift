import ArgumentParser
import AttestedTLS
import Foundation
import SNP

/// What a client expects of the vhsmd it checks by attested TLS, and where the evidence's chain ends: the options
/// `vhsm server verify` and `vhsm login` share.
struct ServerIdentityOptions: ParsableArguments {
    @Option(
        name: .customLong("measurement"),
        help: ArgumentHelp("Expected MEASUREMENT (48 bytes hex); repeat to accept any of several.", valueName: "hex"))
    var measurements: [String] = []
    @Option(help: "A launch manifest from 'make image' (out/manifest.json): its MEASUREMENT is expected.")
    var manifest: String?
    @Option(
        name: .customLong("id-key-digest"),
        help: ArgumentHelp(
            "Expected ID_KEY_DIGEST (48 bytes hex, a signed image); repeat to accept any of several.", valueName: "hex")
    )
    var idKeyDigests: [String] = []
    @Option(
        name: .customLong("author-key-digest"),
        help: ArgumentHelp(
            "Expected AUTHOR_KEY_DIGEST (48 bytes hex); repeat to accept any of several.", valueName: "hex"))
    var authorKeyDigests: [String] = []
    @Option(help: "Minimum GUEST_SVN (with --id-key-digest or --author-key-digest).") var minGuestSvn: UInt32?
    @Option(help: "Expected HOST_DATA (32 bytes hex).") var hostData: String?
    @Option(help: "Minimum REPORTED_TCB, per component (8 bytes hex in report order, e.g. 0300000000000873).")
    var minTCB: String?
    @Flag(help: "Accept a guest policy that allows DEBUG (refused by default: the host can read its memory).")
    var allowDebug = false
    @Flag(
        help: "Accept firmware the host has not committed (COMMITTED_TCB or version below CURRENT; refused by default)."
    )
    var permitProvisionalFirmware = false
    @Option(help: "Also trust this ARK (PEM): the emulator's, from 'vhsm emulator certs'.") var trustEmulatorRoot:
        String?
    @Option(help: "The VCEK or VLEK (DER or PEM), when the evidence carries none.") var cert: String?
    @Option(help: "PEM with the ASK or ASVK and/or the ARK (e.g. the KDS cert_chain), when the evidence lacks them.")
    var chain: String?

    /// True when any of these options is given (`vhsm login --ca` takes none of them).
    var anyGiven: Bool {
        !measurements.isEmpty || manifest != nil || !idKeyDigests.isEmpty || !authorKeyDigests.isEmpty
            || minGuestSvn != nil || hostData != nil || minTCB != nil || allowDebug || permitProvisionalFirmware
            || trustEmulatorRoot != nil || cert != nil || chain != nil
    }

    /// The reference values the options name; usage errors (exit 2) say what is missing or malformed.
    func referenceValues() throws -> ReferenceValues {
        var reference = ReferenceValues(allowDebug: allowDebug)
        reference.permitProvisionalFirmware = permitProvisionalFirmware
        reference.measurements = try measurements.map { try Inputs.hex($0, option: "--measurement", count: 48) }
        if let manifest { reference.measurements.append(try Self.manifestMeasurement(manifest)) }
        reference.idKeyDigests = try idKeyDigests.map { try Inputs.hex($0, option: "--id-key-digest", count: 48) }
        reference.authorKeyDigests = try authorKeyDigests.map {
            try Inputs.hex($0, option: "--author-key-digest", count: 48)
        }
        if let minGuestSvn {
            guard !reference.idKeyDigests.isEmpty || !reference.authorKeyDigests.isEmpty else {
                throw CLIError.usage(
                    "--min-guest-svn \(minGuestSvn) applies to signed images: give the signing key with "
                        + "--id-key-digest or --author-key-digest too")
            }
            reference.minimumGuestSVN = minGuestSvn
        }
        reference.hostData = try hostData.map { try Inputs.hex($0, option: "--host-data", count: 32) }
        reference.minimumTCB = try minTCB.map { try Inputs.tcb($0, option: "--min-tcb") }
        guard reference.namesAnIdentity else {
            throw CLIError.usage(
                "say which VM you expect: give --measurement HEX, --manifest FILE (out/manifest.json from "
                    + "'make image'), --id-key-digest HEX or --author-key-digest HEX. Verifying 'some SEV-SNP VM' is "
                    + "not verification: any VM on any AMD chip would pass")
        }
        return reference
    }

    /// MEASUREMENT of a launch manifest (`"format": "vhsm-launch-manifest/1"`, `"measurement": "<96 hex>"`).
    static func manifestMeasurement(_ path: String) throws -> [UInt8] {
        let bytes = try Inputs.read(path, limit: 1 << 20)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw CLIError.input(path, "is not a JSON object; expected the launch manifest 'make image' writes")
        }
        guard let format = object["format"] as? String, format == "vhsm-launch-manifest/1" else {
            throw CLIError.input(
                path,
                "is not a vhsm launch manifest: its \"format\" is \(object["format"].map { "'\($0)'" } ?? "missing"), "
                    + "expected 'vhsm-launch-manifest/1'")
        }
        guard let text = object["measurement"] as? String, let measurement = try? Hex.decode(text, count: 48) else {
            throw CLIError.input(path, "has no \"measurement\" of 48 bytes hex (96 digits)")
        }
        return measurement
    }

    /// The reference values, the verifier (AMD's roots and --trust-emulator-root), the extra chain certificates
    /// and the --cert endorsement.
    func evidenceInputs() throws -> (ReferenceValues, ReportVerifier, [AMDCertificate], AMDCertificate?) {
        let reference = try referenceValues()
        let (verifier, emulatorRoot) = try Inputs.verifier(trustingEmulatorRoot: trustEmulatorRoot)
        let endorsement = try cert.map(Inputs.endorsement)
        let candidates = try emulatorRoot + (chain.map(Inputs.certificates(pem:)) ?? [])
        return (reference, verifier, candidates, endorsement)
    }
}

/// `--timeout`, shared by `vhsm server verify` and `vhsm login` (its own group so that it stays last in
/// `server verify --help`).
struct ServerTimeoutOption: ParsableArguments {
    @Option(help: ArgumentHelp("Seconds to connect, handshake and get the answer.", valueName: "seconds"))
    var timeout: Double = 30

    /// The timeout, checked: usage error (exit 2) outside (0, 3600].
    func checked() throws -> Duration {
        guard timeout > 0, timeout <= 3600 else {
            throw CLIError.usage("--timeout \(timeout) must be more than 0 and at most 3600 seconds")
        }
        return .milliseconds(Int64(timeout * 1000))
    }
}

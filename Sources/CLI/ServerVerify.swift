import ArgumentParser
import AttestedTLS
import Crypto
import Foundation
import SNP
import X509

struct ServerVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that vhsmd at URL runs in a genuine SEV-SNP VM you expect, and that its TLS key is that VM's.",
        discussion: """
            One TLS connection: the leaf certificate the handshake presents is recorded (not trusted yet), a random \
            32-byte nonce is drawn, and GET /v1/sys/attestation?nonce=HEX asks vhsmd for a fresh report on that same \
            connection. Nothing secret is sent.

            Genuine: the report's AMD chain (ARK → ASK/ASVK → VCEK/VLEK) ends at one of AMD's pinned roots, or at \
            the one --trust-emulator-root names (the emulator's root is never trusted unless named); certificate \
            SPLs equal REPORTED_TCB; the report's signature holds.
            Bound: REPORT_DATA = SHA-512("vhsm-attested-tls-v1" ‖ nonce ‖ SHA-256(SPKI)), with the 32 nonce bytes \
            sent and the DER SubjectPublicKeyInfo of the certificate in this handshake. A man in the middle with \
            its own certificate, or an answer replayed for another nonce, fails here.
            Acceptable: MEASUREMENT is one of --measurement and the --manifest's; ID_KEY_DIGEST and \
            AUTHOR_KEY_DIGEST one of those given; GUEST_SVN at least --min-guest-svn; HOST_DATA equal to \
            --host-data; REPORTED_TCB at least --min-tcb; the guest policy does not allow DEBUG unless --allow-debug; \
            the firmware is committed (COMMITTED_TCB and version equal to CURRENT) unless \
            --permit-provisional-firmware.
            At least one of --measurement, --manifest, --id-key-digest or --author-key-digest is required: verifying \
            "some SEV-SNP VM" is not verification. Every problem found is listed.

            --from-certificate verifies the evidence vhsmd's self-signed certificate carries (extension \
            1.3.9903.1.1, nonce all zero) from the handshake alone: genuine and bound to the key, but as old as the \
            certificate — freshness is not checked, and the verdict says so.

            --ca-out FILE writes the verified certificate (PEM) only when it is trusted: use it with \
            curl --cacert FILE, VAULT_CACERT=FILE, or hvac's Client(url, verify=FILE).

            Example:
              vhsm server verify https://127.0.0.1:8200 --manifest out/manifest.json \\
                  --trust-emulator-root out/emulator/certs/ark.pem --ca-out vhsmd.pem
              curl --cacert vhsmd.pem https://127.0.0.1:8200/v1/sys/health

            Exit codes: 0 trusted; 1 not trusted (every problem is listed), or a TLS handshake that failed; 2 usage \
            error or unreadable input; 3 the server could not be reached (no connection, or no answer within \
            --timeout): nothing was checked, try again later. With --json the verdict is printed in every case but 2.
            """)

    @Argument(help: "vhsmd's URL: https://HOST:PORT.") var url: String
    @OptionGroup var identity: ServerIdentityOptions
    @Option(help: "Write the verified certificate here (PEM), only when trusted.") var caOut: String?
    @Flag(help: "Print the verdict as JSON.") var json = false
    @Flag(help: "Verify the evidence in the certificate's extension instead of a fresh report (freshness unchecked).")
    var fromCertificate = false
    @OptionGroup var connection: ServerTimeoutOption

    var measurements: [String] { identity.measurements }
    var manifest: String? { identity.manifest }
    var idKeyDigests: [String] { identity.idKeyDigests }
    var authorKeyDigests: [String] { identity.authorKeyDigests }
    var minGuestSvn: UInt32? { identity.minGuestSvn }
    var hostData: String? { identity.hostData }
    var minTCB: String? { identity.minTCB }
    var allowDebug: Bool { identity.allowDebug }
    var permitProvisionalFirmware: Bool { identity.permitProvisionalFirmware }
    var trustEmulatorRoot: String? { identity.trustEmulatorRoot }
    var cert: String? { identity.cert }
    var chain: String? { identity.chain }
    var timeout: Double { connection.timeout }

    /// The verdict; with --json every key is present (null when unknown, e.g. after an unreachable server).
    struct Verdict: Encodable {
        var url: String
        var trusted = false
        var genuine = false
        var bound = false
        var acceptable = false
        var fresh = false
        var freshness = ""
        var nonce: String?
        var spki_sha256: String?
        var announced_spki_sha256: String?
        var certificate_sha256: String?
        var measurement: String?
        var product: String?
        var signer: String?
        var root: String?
        var chain: [String] = []
        var checked_at: String
        var ca_out: String?
        var problems: [String] = []
        var violations: [[String: String]] = []
        var report: ReportJSON?
        /// The server could not be reached (exit 3); not a key of the JSON (the problem says so).
        var unreachable = false

        enum CodingKeys: String, CodingKey {
            case url, trusted, genuine, bound, acceptable, fresh, freshness, nonce, spki_sha256, announced_spki_sha256
            case certificate_sha256, measurement, product, signer, root, chain, checked_at, ca_out, problems
            case violations, report
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(url, forKey: .url)
            try container.encode(trusted, forKey: .trusted)
            try container.encode(genuine, forKey: .genuine)
            try container.encode(bound, forKey: .bound)
            try container.encode(acceptable, forKey: .acceptable)
            try container.encode(fresh, forKey: .fresh)
            try container.encode(freshness, forKey: .freshness)
            try container.encode(nonce, forKey: .nonce)
            try container.encode(spki_sha256, forKey: .spki_sha256)
            try container.encode(announced_spki_sha256, forKey: .announced_spki_sha256)
            try container.encode(certificate_sha256, forKey: .certificate_sha256)
            try container.encode(measurement, forKey: .measurement)
            try container.encode(product, forKey: .product)
            try container.encode(signer, forKey: .signer)
            try container.encode(root, forKey: .root)
            try container.encode(chain, forKey: .chain)
            try container.encode(checked_at, forKey: .checked_at)
            try container.encode(ca_out, forKey: .ca_out)
            try container.encode(problems, forKey: .problems)
            try container.encode(violations, forKey: .violations)
            try container.encode(report, forKey: .report)
        }
    }

    /// The reference values the options name; usage errors (exit 2) say what is missing or malformed.
    func referenceValues() throws -> ReferenceValues { try identity.referenceValues() }

    /// MEASUREMENT of a launch manifest (`"format": "vhsm-launch-manifest/1"`, `"measurement": "<96 hex>"`).
    static func manifestMeasurement(_ path: String) throws -> [UInt8] {
        try ServerIdentityOptions.manifestMeasurement(path)
    }

    /// Checks the options that need no network: reference values, files, URL, timeout.
    func prepared() throws -> (ReferenceValues, ReportVerifier, [AMDCertificate], AMDCertificate?, AttestedTLSClient) {
        let (reference, verifier, candidates, endorsement) = try identity.evidenceInputs()
        if let caOut {
            let directory = URL(fileURLWithPath: caOut).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else { throw CLIError.input(caOut, "cannot be written: its directory \(directory) does not exist") }
        }
        let timeout = try connection.checked()
        let client: AttestedTLSClient
        do {
            client = try AttestedTLSClient(url: url, timeout: timeout)
        } catch { throw CLIError.usage(error.description) }
        return (reference, verifier, candidates, endorsement, client)
    }

    func run() async throws {
        let verdict = try await verdict()
        print(json ? Output.json(verdict) : text(verdict))
        if !verdict.trusted { throw ExitCode(verdict.unreachable ? CLIError.unreachableCode : CLIError.refusedCode) }
    }

    /// Connects, fetches and checks; writes --ca-out when trusted. Usage errors throw (exit 2); an unreachable
    /// server throws in text mode and is the verdict's one problem with --json.
    func verdict() async throws -> Verdict {
        let (reference, verifier, candidates, endorsement, client) = try prepared()
        let instant = Date()
        var verdict = Verdict(url: client.place, checked_at: instant.formatted(.iso8601))
        let result: ServerVerification
        do {
            result = try await client.verify(
                reference: reference, verifier: verifier, extraCertificates: candidates, endorsement: endorsement,
                fromCertificate: fromCertificate, at: instant)
        } catch {
            let failure = Login.failure(error)
            guard json else { throw failure.exitCode == CLIError.refusedCode ? .refused(error.description) : failure }
            verdict.unreachable = failure.exitCode == CLIError.unreachableCode
            verdict.problems.append(error.description)
            verdict.freshness = "not checked: no evidence"
            return verdict
        }
        let checked = result.verdict
        verdict.nonce = Hex.encode(result.nonce)
        verdict.certificate_sha256 = Hex.encode(SHA256.hash(data: result.leafCertificate))
        verdict.spki_sha256 = result.spkiSHA256.map(Hex.encode)
        verdict.announced_spki_sha256 = result.announcedSPKISHA256.map(Hex.encode)
        verdict.genuine = checked.genuine
        verdict.bound = checked.bound
        verdict.acceptable = checked.acceptable
        verdict.problems = checked.problems
        verdict.violations = checked.violations.map {
            ["field": $0.field, "expected": $0.expected, "actual": $0.actual]
        }
        if let report = checked.report {
            verdict.measurement = Hex.encode(report.measurement)
            verdict.report = ReportJSON(report, product: checked.verified?.product)
        }
        if let verified = checked.verified {
            verdict.product = verified.product.name
            verdict.signer = verified.signer.description
            verdict.root = verified.rootIsAMD ? "AMD (pinned)" : "operator-trusted (--trust-emulator-root)"
            verdict.chain = verified.chain.map { $0.subject.commonName ?? "?" }
        }
        verdict.trusted = result.trusted
        verdict.fresh = result.trusted && result.fresh
        verdict.freshness =
            result.fresh
            ? "a fresh report for nonce \(Hex.encode(result.nonce))"
            : "not checked: the evidence is the certificate's own (all-zero nonce), as old as the certificate"
                + (result.certificate.map { " (valid from \($0.notValidBefore.formatted(.iso8601)))" } ?? "")
        if verdict.trusted, let caOut {
            try Inputs.write(Array(Self.pem(result.leafCertificate).utf8), to: caOut)
            verdict.ca_out = caOut
        }
        return verdict
    }

    /// The certificate's DER as the handshake presented it, in PEM.
    static func pem(_ der: [UInt8]) -> String {
        "-----BEGIN CERTIFICATE-----\n"
            + Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            + "\n-----END CERTIFICATE-----\n"
    }

    func text(_ verdict: Verdict) -> String {
        func yes(_ value: Bool) -> String { value ? "yes" : "NO" }
        var lines = [
            verdict.trusted
                ? "\(verdict.url): TRUSTED — genuine, bound to this connection's TLS key, acceptable"
                : "\(verdict.url): NOT TRUSTED (genuine \(yes(verdict.genuine)), bound \(yes(verdict.bound)), "
                    + "acceptable \(yes(verdict.acceptable)))"
        ]
        if let signer = verdict.signer, let product = verdict.product {
            lines.append("  signed by     \(signer) of a \(product) chip")
            lines.append("  chain         \(verdict.chain.joined(separator: " → ")), root \(verdict.root ?? "?")")
        }
        if let spki = verdict.spki_sha256 { lines.append("  tls key       SPKI SHA-256 \(spki)") }
        if let certificate = verdict.certificate_sha256, let bytes = try? Hex.decode(certificate) {
            lines.append("  certificate   SHA-256 fingerprint \(VaultClient.colonHex(bytes))")
        }
        lines.append("  freshness     \(verdict.freshness)")
        if let report = verdict.report {
            lines.append("  measurement   \(report.measurement)")
            lines.append("  policy        \(report.policy.raw) (\(report.policy.flags.joined(separator: ", ")))")
            lines.append("  reported tcb  \(report.reported_tcb.raw)")
        }
        lines.append("  checked at    \(verdict.checked_at)")
        if let caOut = verdict.ca_out {
            lines.append(
                "  wrote         \(caOut) (the verified certificate, PEM: curl --cacert, VAULT_CACERT, hvac verify=)")
        } else if let caOut {
            lines.append("  not written   \(caOut): the certificate is not trusted")
        }
        lines += verdict.problems.map { "  - \($0)" }
        return lines.joined(separator: "\n")
    }
}

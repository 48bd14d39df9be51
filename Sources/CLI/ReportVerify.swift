import ArgumentParser
import Foundation
import SNP

struct ReportVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that a report is genuine (AMD chain and signature) and acceptable (your reference values).",
        discussion: """
            Genuine: ARK self-signature, ASK/ASVK signed by the ARK, VCEK/VLEK signed by the ASK/ASVK (RSASSA-PSS \
            SHA-384), the report's ECDSA P-384 signature, certificate SPLs equal REPORTED_TCB, hwID equals CHIP_ID, \
            the signer kind matches KEY_INFO, every certificate valid at --at (default: now).
            Roots: only AMD's pinned ARKs for Milan, Genoa and Turin, plus the one --trust-emulator-root names. \
            Without --chain, AMD's built-in ASK/ASVK for the report's product is used.
            Acceptable: every reference value given (--measurement, --report-data, --host-data, --min-tcb) matches, \
            and the guest policy does not allow DEBUG (the host can read and change a debug guest's memory), \
            unless --allow-debug.

            Exit codes: 0 genuine and acceptable; 1 not (every problem is listed); 2 usage error or unreadable input.
            """)

    @Argument(help: "The raw report (1184 bytes).") var file: String
    @Option(help: "The VCEK or VLEK certificate (DER or PEM).") var cert: String?
    @Option(help: "PEM with the ASK or ASVK and/or the ARK (e.g. the KDS cert_chain).") var chain: String?
    @Option(help: "An extended-report certificate table (GUID entries), e.g. from a host.") var certTable: String?
    @Option(help: "Check certificate validity at this RFC 3339 instant instead of now.") var at: String?
    @Option(help: "Also trust this ARK (PEM): the emulator's, from 'vhsm emulator certs'.") var trustEmulatorRoot:
        String?
    @Option(help: "Expected MEASUREMENT (48 bytes hex).") var measurement: String?
    @Option(help: "Expected REPORT_DATA (up to 64 bytes hex, zero-padded).") var reportData: String?
    @Option(help: "Expected HOST_DATA (32 bytes hex).") var hostData: String?
    @Option(help: "Minimum REPORTED_TCB, per component (8 bytes hex in report order, e.g. 0300000000000873).")
    var minTCB: String?
    @Flag(help: "Accept a guest policy that allows DEBUG (refused by default: the host can read its memory).")
    var allowDebug = false
    @Flag(help: "Print JSON.") var json = false

    struct Verdict: Encodable {
        var file: String
        var genuine: Bool
        var acceptable: Bool
        var product: String?
        var signer: String?
        var root: String?
        var chain: [String]
        var checked_at: String
        var problems: [String]
        var violations: [[String: String]]
        var report: ReportJSON
    }

    func run() async throws {
        let report = try Inputs.report(file)
        let instant = try at.map(Inputs.instant) ?? Date()
        var policy = ReportPolicy()
        policy.measurement = try measurement.map { try Inputs.hex($0, option: "--measurement", count: 48) }
        policy.reportData = try reportData.map { try Inputs.paddedHex($0, option: "--report-data", count: 64) }
        policy.hostData = try hostData.map { try Inputs.hex($0, option: "--host-data", count: 32) }
        policy.minimumTCB = try minTCB.map { try Inputs.tcb($0, option: "--min-tcb") }
        policy.forbidden = allowDebug ? [] : [.debugAllowed]

        var candidates: [AMDCertificate] = []
        var endorsement = try cert.map(Inputs.endorsement)
        if let chain { candidates += try Inputs.certificates(pem: chain) }
        if let certTable {
            let table: CertificateTable
            do { table = try CertificateTable(bytes: try Inputs.read(certTable)) } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError.input(certTable, "not a certificate table: \(error)")
            }
            let signerKind: CertificateTable.Kind = report.keyInfo.signingKey == .vlek ? .vlek : .vcek
            if endorsement == nil, let der = table[signerKind] {
                do { endorsement = try AMDCertificate(derEncoded: der) } catch {
                    throw CLIError.input(certTable, "its \(signerKind) entry \(error)")
                }
            }
            for kind in [CertificateTable.Kind.ask, .ark] {
                if let der = table[kind], let certificate = try? AMDCertificate(derEncoded: der) {
                    candidates.append(certificate)
                }
            }
        }
        let (verifier, emulatorRoot) = try Inputs.verifier(trustingEmulatorRoot: trustEmulatorRoot)
        candidates += emulatorRoot
        guard let endorsement else {
            throw CLIError.usage(
                "no VCEK or VLEK to check \(file) against: pass --cert FILE or --cert-table FILE "
                    + "(from 'vhsm report get --certs-out DIR', 'vhsm emulator certs' or AMD's KDS)")
        }

        var verdict = Verdict(
            file: file, genuine: false, acceptable: false, chain: [], checked_at: instant.formatted(.iso8601),
            problems: [], violations: [], report: ReportJSON(report))
        do {
            let verified = try verifier.verify(report, endorsement: endorsement, candidates: candidates, at: instant)
            let violations = policy.violations(in: verified)
            verdict.genuine = true
            verdict.acceptable = violations.isEmpty
            verdict.product = verified.product.name
            verdict.signer = verified.signer.description
            verdict.root = verified.rootIsAMD ? "AMD (pinned)" : "operator-trusted (--trust-emulator-root)"
            verdict.chain = verified.chain.map { $0.subject.commonName ?? "?" }
            verdict.violations = violations.map { ["field": $0.field, "expected": $0.expected, "actual": $0.actual] }
            verdict.report = ReportJSON(report, product: verified.product)
        } catch {
            verdict.problems = error.problems.map(\.description)
        }

        if json {
            print(Output.json(verdict))
        } else {
            print(text(verdict, report: report))
        }
        if !(verdict.genuine && verdict.acceptable) { throw ExitCode(1) }
    }

    private func text(_ verdict: Verdict, report: AttestationReport) -> String {
        guard verdict.genuine else {
            return "\(file): NOT GENUINE\n" + verdict.problems.map { "  - \($0)" }.joined(separator: "\n")
        }
        var lines = [
            "\(file): " + (verdict.acceptable ? "GENUINE and ACCEPTABLE" : "GENUINE but NOT ACCEPTABLE"),
            "  signed by     \(verdict.signer ?? "?") of a \(verdict.product ?? "?") chip",
            "  chain         \(verdict.chain.joined(separator: " → ")), root \(verdict.root ?? "?")",
            "  checked at    \(verdict.checked_at)",
            "  measurement   \(Hex.encode(report.measurement))",
            "  reported tcb  \(report.reportedTCB.hex)",
        ]
        lines += verdict.violations.map { "  - \($0["field"]!): expected \($0["expected"]!), got \($0["actual"]!)" }
        return lines.joined(separator: "\n")
    }
}

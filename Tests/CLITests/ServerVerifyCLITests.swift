import ArgumentParser
import AttestedTLS
import AttestedTLSTestSupport
import Crypto
import Foundation
import SNP
import SNPEmulator
import Synchronization
import Testing
import X509

@testable import CLI

/// `vhsm server verify`: its options (usage errors exit 2 and say why) and its verdicts against a stand-in vhsmd
/// over real TLS on loopback (scripts/attested-tls-test.sh runs the same against vhsmd itself).
@Suite struct ServerVerifyCLITests {
    static let measurement = String(repeating: "5a", count: 48)
    static let chip: ChipState = try! ChipState.create(product: .genoa)

    final class Workspace: Sendable {
        let directory: String
        init() throws {
            directory =
                FileManager.default.temporaryDirectory.appendingPathComponent("vhsm-sv-\(UUID().uuidString)")
                .path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        func write(_ name: String, _ text: String) throws -> String {
            let path = directory + "/" + name
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    func command(_ arguments: [String]) throws -> ServerVerify {
        try #require(try VHSM.parseAsRoot(["server", "verify"] + arguments) as? ServerVerify)
    }

    func usageError(_ arguments: [String], _ body: (ServerVerify) throws -> Void) throws -> String {
        let parsed = try command(arguments)
        let error = #expect(throws: CLIError.self) { try body(parsed) }
        #expect(error?.exitCode == 2, "\(arguments)")
        return error?.description ?? ""
    }

    @Test func parsesEveryOptionAndRepeatsTheReferenceLists() throws {
        let digest = String(repeating: "11", count: 48)
        let parsed = try command([
            "https://127.0.0.1:8200", "--measurement", Self.measurement, "--measurement", digest, "--manifest",
            "m.json",
            "--id-key-digest", digest, "--id-key-digest", digest, "--author-key-digest", digest, "--min-guest-svn", "3",
            "--host-data", String(repeating: "00", count: 32), "--min-tcb", "0300000000000873", "--allow-debug",
            "--trust-emulator-root", "ark.pem", "--cert", "vcek.der", "--chain", "ask.pem", "--ca-out", "vhsmd.pem",
            "--json",
            "--from-certificate", "--timeout", "2.5",
        ])
        #expect(parsed.url == "https://127.0.0.1:8200" && parsed.measurements.count == 2)
        #expect(parsed.manifest == "m.json" && parsed.idKeyDigests.count == 2 && parsed.authorKeyDigests == [digest])
        #expect(parsed.minGuestSvn == 3 && parsed.minTCB == "0300000000000873" && parsed.allowDebug)
        #expect(
            parsed.trustEmulatorRoot == "ark.pem" && parsed.cert == "vcek.der" && parsed.chain == "ask.pem"
                && parsed.caOut == "vhsmd.pem")
        #expect(parsed.json && parsed.fromCertificate && parsed.timeout == 2.5)
        // Without --manifest the rest builds the reference values.
        let reference = try command([
            "https://h", "--measurement", Self.measurement, "--measurement", digest, "--id-key-digest", digest,
            "--min-guest-svn", "3", "--min-tcb", "0300000000000873",
        ]).referenceValues()
        #expect(reference.measurements.map(Hex.encode) == [Self.measurement, digest])
        #expect(reference.idKeyDigests.map(Hex.encode) == [digest] && reference.minimumGuestSVN == 3)
        #expect(reference.minimumTCB?.hex == "0300000000000873" && !reference.allowDebug)
    }

    @Test func someSEVSNPVMIsNotVerification() throws {
        let text = try usageError(["https://127.0.0.1:8200", "--host-data", String(repeating: "00", count: 32)]) {
            _ = try $0.referenceValues()
        }
        #expect(text.contains("Verifying 'some SEV-SNP VM' is not verification"))
        #expect(text.contains("--measurement") && text.contains("--manifest") && text.contains("--id-key-digest"))
        // An author key digest alone names an identity.
        let digest = String(repeating: "11", count: 48)
        #expect(try command(["https://h", "--author-key-digest", digest]).referenceValues().namesAnIdentity)
    }

    @Test func provisionalFirmwareIsRefusedUnlessPermitted() throws {
        let m = ["--measurement", String(repeating: "ab", count: 48)]
        #expect(try !command(["https://h"] + m).referenceValues().permitProvisionalFirmware)
        #expect(
            try command(["https://h", "--permit-provisional-firmware"] + m).referenceValues()
                .permitProvisionalFirmware)
    }

    @Test func malformedOptionsAreUsageErrorsThatSayWhy() throws {
        let m = ["--measurement", Self.measurement]
        #expect(
            try usageError(["https://h", "--measurement", "abcd"]) { _ = try $0.referenceValues() }.contains(
                "--measurement"))
        #expect(
            try usageError(["https://h", "--id-key-digest", "zz"]) { _ = try $0.referenceValues() }.contains(
                "--id-key-digest"))
        #expect(
            try usageError(["https://h", "--min-tcb", "12"] + m) { _ = try $0.referenceValues() }.contains("--min-tcb"))
        #expect(
            try usageError(["https://h", "--min-guest-svn", "2"] + m) { _ = try $0.referenceValues() }
                .contains("applies to signed images"))
        #expect(
            try usageError(["http://127.0.0.1:8200"] + m) { _ = try $0.prepared() }.contains("must start with https://")
        )
        #expect(try usageError(["https://h", "--timeout", "0"] + m) { _ = try $0.prepared() }.contains("--timeout"))
        #expect(
            try usageError(["https://h", "--ca-out", "/nonexistent-dir/vhsmd.pem"] + m) { _ = try $0.prepared() }
                .contains("does not exist"))
        #expect(
            try usageError(["https://h", "--trust-emulator-root", "/nonexistent.pem"] + m) { _ = try $0.prepared() }
                .contains("no such file"))
    }

    @Test func manifestGivesItsMeasurementAndOnlyAManifestIsOne() throws {
        let workspace = try Workspace()
        let good = try workspace.write(
            "manifest.json",
            #"{"format": "vhsm-launch-manifest/1", "vcpus": 1, "policy": "0x30000", "measurement": "\#(Self.measurement)"}"#
        )
        #expect(
            try command(["https://h", "--manifest", good]).referenceValues().measurements.map(Hex.encode) == [
                Self.measurement
            ])
        let other = try workspace.write(
            "other.json", #"{"format": "something/2", "measurement": "\#(Self.measurement)"}"#)
        #expect(
            try usageError(["https://h", "--manifest", other]) { _ = try $0.referenceValues() }.contains(
                "'something/2'"))
        let short = try workspace.write("short.json", #"{"format": "vhsm-launch-manifest/1", "measurement": "abcd"}"#)
        #expect(
            try usageError(["https://h", "--manifest", short]) { _ = try $0.referenceValues() }.contains(
                "\"measurement\""))
        let text = try workspace.write("text.json", "MEASUREMENT abcd")
        #expect(
            try usageError(["https://h", "--manifest", text]) { _ = try $0.referenceValues() }.contains(
                "not a JSON object"))
    }

    // MARK: - Verdicts over TLS

    static func guest(policy: UInt64 = 0x30000) throws -> EmulatedGuest {
        try EmulatedGuest(
            chip: chip,
            launch: LaunchContext(measurement: try Hex.decode(measurement), policy: GuestPolicy(rawValue: policy)))
    }

    func root(_ workspace: Workspace) throws -> String {
        try workspace.write("ark.pem", ServerVerify.pem(Self.chip.ark.derRepresentation))
    }

    @Test func trustedVerdictWritesTheCertificateForCurl() async throws {
        let workspace = try Workspace()
        let guest = try Self.guest()
        let server = try await FakeVHSMD.start { server, uri in try server.attestation(uri, guest: guest) }
        defer { server.stop() }
        let caOut = workspace.directory + "/vhsmd.pem"
        let verdict = try await command([
            "https://127.0.0.1:\(server.port)", "--measurement", Self.measurement, "--trust-emulator-root",
            try root(workspace), "--ca-out", caOut, "--json",
        ]).verdict()
        #expect(verdict.problems == [])
        #expect(verdict.trusted && verdict.genuine && verdict.bound && verdict.acceptable && verdict.fresh)
        #expect(verdict.spki_sha256 == Hex.encode(server.spkiSHA256))
        #expect(verdict.certificate_sha256 == Hex.encode(SHA256.hash(data: server.certificateDER)))
        #expect(verdict.measurement == Self.measurement && verdict.root == "operator-trusted (--trust-emulator-root)")
        #expect(verdict.ca_out == caOut)
        // The file is the very certificate the handshake presented, as PEM.
        let written = try String(contentsOfFile: caOut, encoding: .utf8)
        #expect(try AMDCertificate(pemEncoded: written).derRepresentation == server.certificateDER)
        let requested = server.requests.withLock { $0 }
        #expect(requested.count == 1 && requested[0] == "/v1/sys/attestation?nonce=" + (verdict.nonce ?? ""))
        // The JSON a script reads.
        let json = Output.json(verdict)
        for key in [
            "\"trusted\" : true", "\"fresh\" : true", "\"bound\" : true", "\"certificate_sha256\"", "\"report\"",
        ] {
            #expect(json.contains(key), "\(key)")
        }
    }

    @Test func wrongMeasurementDebugAndUnnamedRootAreRefusedAndNothingIsWritten() async throws {
        let workspace = try Workspace()
        let guest = try Self.guest(policy: 0xB0000)  // DEBUG allowed
        let server = try await FakeVHSMD.start { server, uri in try server.attestation(uri, guest: guest) }
        defer { server.stop() }
        let caOut = workspace.directory + "/vhsmd.pem"
        let url = "https://127.0.0.1:\(server.port)"
        let expected = String(repeating: "cd", count: 48)
        var verdict = try await command([
            url, "--measurement", expected, "--trust-emulator-root", try root(workspace), "--ca-out", caOut,
        ]).verdict()
        #expect(!verdict.trusted && verdict.genuine && verdict.bound && !verdict.acceptable && !verdict.fresh)
        #expect(Set(verdict.violations.compactMap { $0["field"] }) == ["MEASUREMENT", "POLICY"])
        #expect(verdict.problems.contains { $0.contains(expected) && $0.contains(Self.measurement) })
        #expect(verdict.ca_out == nil && !FileManager.default.fileExists(atPath: caOut))
        let text = try command([url, "--measurement", expected, "--ca-out", caOut]).text(verdict)
        #expect(text.contains("NOT TRUSTED (genuine yes, bound yes, acceptable NO)"))
        #expect(text.contains("not written   \(caOut): the certificate is not trusted"))
        // --allow-debug and the right measurement: trusted.
        verdict = try await command([
            url, "--measurement", Self.measurement, "--allow-debug", "--trust-emulator-root", try root(workspace),
        ]).verdict()
        #expect(verdict.trusted, "\(verdict.problems)")
        // The emulator's root, not named: not genuine.
        verdict = try await command([url, "--measurement", Self.measurement, "--allow-debug"]).verdict()
        #expect(!verdict.trusted && !verdict.genuine && verdict.problems.contains { $0.hasPrefix("not genuine") })
    }

    @Test func evidenceForAnotherKeyIsAManInTheMiddle() async throws {
        let workspace = try Workspace()
        let guest = try Self.guest()
        // The stand-in answers with a report that binds another key than the one it serves, as vhsmd's real answer
        // does when a proxy with its own certificate forwards it.
        let vhsmdKey = AttestedTLSBinding.spkiSHA256(
            Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER)
        let proxy = try await FakeVHSMD.start { server, uri in
            try server.attestation(uri, guest: guest, spkiSHA256: vhsmdKey)
        }
        defer { proxy.stop() }
        let verdict = try await command([
            "https://127.0.0.1:\(proxy.port)", "--measurement", Self.measurement, "--trust-emulator-root",
            try root(workspace), "--json",
        ]).verdict()
        #expect(!verdict.trusted && verdict.genuine && !verdict.bound)
        #expect(
            verdict.problems.contains {
                $0.contains(Hex.encode(proxy.spkiSHA256)) && $0.contains(Hex.encode(vhsmdKey))
                    && $0.contains("terminates TLS with their own key")
            })
    }

    @Test func fromCertificateVerifiesTheExtensionAndSaysFreshnessWasNotChecked() async throws {
        let workspace = try Workspace()
        let guest = try Self.guest()
        let key = P256.Signing.PrivateKey()
        let spki = AttestedTLSBinding.spkiSHA256(Certificate.PublicKey(key.publicKey).subjectPublicKeyInfoDER)
        let data = try #require(
            AttestedTLSBinding.reportData(nonce: AttestedTLSBinding.certificateNonce, spkiSHA256: spki))
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: data))
        let report = try response.checked()
        let evidence = AttestationEvidence(
            nonce: AttestedTLSBinding.certificateNonce, report: report.bytes,
            certificates: AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey))
        let server = try await FakeVHSMD.start(
            extensions: try Certificate.Extensions { try evidence.certificateExtension() }, key: key
        ) { _, _ in (500, Array(#"{"errors":["nothing is asked with --from-certificate"]}"#.utf8)) }
        defer { server.stop() }
        let url = "https://127.0.0.1:\(server.port)"
        let arguments = [url, "--measurement", Self.measurement, "--trust-emulator-root", try root(workspace)]
        let verdict = try await command(arguments + ["--from-certificate"]).verdict()
        #expect(verdict.trusted && !verdict.fresh, "\(verdict.problems)")
        #expect(verdict.freshness.hasPrefix("not checked"))
        #expect(server.requests.withLock { $0 }.isEmpty)
        #expect(try command(arguments).text(verdict).contains("freshness     not checked"))
        // A server whose certificate has no evidence: refused, and the verdict says where to look.
        let plain = try await FakeVHSMD.start { _, _ in (500, []) }
        defer { plain.stop() }
        let bare = try await command(
            ["https://127.0.0.1:\(plain.port)", "--measurement", Self.measurement, "--from-certificate"]
        ).verdict()
        #expect(!bare.trusted && bare.problems.contains { $0.contains("carries no attestation evidence") })
    }

    @Test func evidenceWithoutCertificatesNeedsCertAndAnotherChipsVCEKIsNotGenuine() async throws {
        let workspace = try Workspace()
        let guest = try Self.guest()
        let server = try await FakeVHSMD.start { server, uri in
            try server.attestation(uri, guest: guest, certificates: false)
        }
        defer { server.stop() }
        let arguments = [
            "https://127.0.0.1:\(server.port)", "--measurement", Self.measurement, "--trust-emulator-root",
            try root(workspace),
        ]
        var verdict = try await command(arguments).verdict()
        #expect(!verdict.trusted && verdict.problems.contains { $0.contains("carries no VCEK or VLEK") })
        // The chip's VCEK with --cert: the emulator's ASK is not AMD's built-in one, so without --chain the chain
        // does not build; with it, trusted.
        let vcek = try #require(try guest.certificateTable()[.vcek])
        let vcekFile = workspace.directory + "/vcek.der"
        try Data(vcek).write(to: URL(fileURLWithPath: vcekFile))
        verdict = try await command(arguments + ["--cert", vcekFile]).verdict()
        #expect(!verdict.trusted && verdict.problems.contains { $0.hasPrefix("not genuine") })
        let askFile = try workspace.write("ask.pem", ServerVerify.pem(Self.chip.ask.derRepresentation))
        verdict = try await command(arguments + ["--cert", vcekFile, "--chain", askFile]).verdict()
        #expect(verdict.trusted, "\(verdict.problems)")
        // Another chip's VCEK: not genuine.
        let otherChip = try ChipState.create(product: .genoa)
        let foreign = try EmulatedGuest(
            chip: otherChip,
            launch: LaunchContext(measurement: try Hex.decode(Self.measurement), policy: GuestPolicy(rawValue: 0x30000))
        )
        let foreignFile = workspace.directory + "/foreign.der"
        try Data(try #require(try foreign.certificateTable()[.vcek])).write(to: URL(fileURLWithPath: foreignFile))
        verdict = try await command(arguments + ["--cert", foreignFile]).verdict()
        #expect(!verdict.trusted && !verdict.genuine && verdict.problems.contains { $0.hasPrefix("not genuine") })
    }

    @Test func unreachableIsASentenceInTextAndAProblemInJSON() async throws {
        // Port 1 on loopback: nothing listens there.
        let arguments = ["https://127.0.0.1:1", "--measurement", Self.measurement, "--timeout", "60"]
        let error = await #expect(throws: CLIError.self) { _ = try await command(arguments).verdict() }
        #expect(error?.exitCode == 3)
        #expect(
            error?.description
                == "cannot reach https://127.0.0.1:1: connection refused — check the URL and that vhsmd is running")
        let verdict = try await command(arguments + ["--json"]).verdict()
        #expect(!verdict.trusted && verdict.problems.count == 1 && verdict.problems[0].hasPrefix("cannot reach"))
        #expect(verdict.unreachable)
        await #expect(throws: ExitCode(3)) { try await command(arguments + ["--json"]).run() }
        // Every key is there for a script, null when unknown.
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(Output.json(verdict).utf8)) as? [String: Any])
        for key in [
            "url", "trusted", "fresh", "spki_sha256", "certificate_sha256", "measurement", "report", "problems",
        ] {
            #expect(object[key] != nil, "\(key)")
        }
        #expect(object["spki_sha256"] is NSNull && object["trusted"] as? Bool == false)
    }
}

import ArgumentParser
import AttestedTLS
import Crypto
import Foundation
import NIOHTTP1
import NIOSSL
import SNP
import SNPGuest
import Sealing

#if canImport(Glibc)
import Glibc
#endif

/// `vhsm login URL --role NAME`: the workload's agent for `auth/sev-snp` (issue 15 item 3). It verifies vhsmd (attested
/// TLS, or a certificate the operator pinned with --ca), draws a nonce, binds it, an ephemeral key and the server's
/// TLS key into a fresh report from the provider named, and logs in on a connection pinned to the certificate it
/// verified; the token comes back sealed to the ephemeral key unless --no-wrap.
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in to vhsmd with this VM's SEV-SNP evidence (auth/sev-snp) and print the token.",
        discussion: """
            Run inside the workload VM. The steps:
              1. Verify the server: attested TLS as 'vhsm server verify' does (the same options: --measurement, \
            --manifest, --id-key-digest, ...), or --ca FILE when the operator pins vhsmd's certificate by other \
            means (then its evidence is not checked, and stderr says so). The certificate verified here is pinned: \
            every later connection must present exactly it, or the login stops (exit 1).
              2. POST /v1/auth/MOUNT/nonce: a single-use 32-byte nonce.
              3. Make an ephemeral key (X25519, or P-384 with --key-type p384).
              4. Ask for a report through exactly the provider named (--device, --tsm or --emulator SOCKET; \
            /dev/sev-guest when none is named; never another one), with
                 REPORT_DATA = SHA-512("vhsm-login-v1" ‖ nonce ‖ K ‖ S)
               K = SHA-256 of the ephemeral key's DER SubjectPublicKeyInfo, S = SHA-256 of the SubjectPublicKeyInfo \
            of the TLS certificate pinned in step 1 (32 zero bytes with --insecure-http). A relay with another \
            certificate cannot use the report.
              5. POST /v1/auth/MOUNT/login with the role, nonce, report, certificates and the ephemeral public key, \
            asking for the auth block sealed to it (HPKE, info "vhsm/login/auth/v1", AAD the nonce); the agent opens \
            it. --no-wrap sends the key without asking for sealing (for proxies that forbid it).
              6. Print the token on stdout (--json: the whole auth block); -o FILE writes it to a new file of mode \
            0600 instead.

            --insecure-http (dev mode only) allows an http:// URL: the server is not verified at all and S is 32 \
            zero bytes; stderr says so.

            Example:
              vhsm login https://10.0.2.2:8200 --role payments \\
                  --manifest /etc/vhsm/vhsmd-manifest.json --device /dev/sev-guest \\
                  -o /run/vhsm/token
              VAULT_TOKEN=$(cat /run/vhsm/token) ...

            Exit codes: 0 logged in; 1 refused (the server is not trusted, presented another certificate, failed \
            the TLS handshake or refused the login: its reasons are printed one per line; or the Secure Processor \
            said no); 2 usage error or unreadable input; 3 the server or the Secure Processor could not be reached \
            (no connection, no answer within --timeout, no device or emulator listening): nothing was decided, \
            try again later.
            """)

    enum KeyType: String, ExpressibleByArgument, CaseIterable {
        case x25519, p384
    }

    @Argument(help: "vhsmd's URL: https://HOST:PORT (http:// only with --insecure-http).") var url: String
    @Option(help: "The sev-snp role to log in with.") var role: String
    @OptionGroup(title: "Verifying the server (as 'vhsm server verify')") var identity: ServerIdentityOptions
    @Option(
        help: ArgumentHelp(
            "Trust vhsmd by this PEM certificate (its own, or its CA) instead of attestation: no evidence is checked.",
            valueName: "file"))
    var ca: String?
    @Flag(help: "Allow an http:// URL (dev mode): nothing is verified and S is 32 zero bytes.") var insecureHttp = false
    @Option(help: "The path the sev-snp method is mounted at (auth/MOUNT).") var mount: String = "sev-snp"
    @OptionGroup(title: "The report provider (as 'vhsm report get')") var source: DeviceOptions
    @Option(help: "The ephemeral key's type.") var keyType: KeyType = .x25519
    @Flag(help: "Send the ephemeral public key without asking for the sealed (HPKE) answer.") var noWrap = false
    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Write the token (with --json the auth block) to this new file, mode 0600.", valueName: "file"))
    var output: String?
    @Flag(help: "Print the whole auth block as JSON instead of the token.") var json = false
    @OptionGroup var connection: ServerTimeoutOption

    /// How the server is trusted.
    enum Trust {
        case attested(ReferenceValues, ReportVerifier, [AMDCertificate], AMDCertificate?)
        case pinnedCA(String)
        case insecureHTTP
    }

    /// Everything checked before the network: usage errors (exit 2) say what is wrong.
    struct Plan {
        var trust: Trust
        var timeout: Duration
        var mount: String
    }

    func plan() throws -> Plan {
        let timeout = try connection.checked()
        guard !role.isEmpty, role.count <= 128 else {
            throw CLIError.usage("--role must name a role (1 to 128 characters)")
        }
        var mount = self.mount
        while mount.hasSuffix("/") { mount.removeLast() }
        guard !mount.isEmpty, !mount.hasPrefix("/"), !mount.contains("?"), !mount.contains("#") else {
            throw CLIError.usage("--mount '\(self.mount)' must be the method's path below auth/, e.g. sev-snp")
        }
        if let output {
            let directory = URL(fileURLWithPath: output).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else { throw CLIError.input(output, "cannot be written: its directory \(directory) does not exist") }
        }
        if url.hasPrefix("http://") {
            guard insecureHttp else {
                throw CLIError.usage(
                    "'\(url)' is plain HTTP: nothing about the server can be verified. Use https:// (attested TLS), or "
                        + "pass --insecure-http for a dev-mode vhsmd (tls_disable)")
            }
            guard ca == nil, !identity.anyGiven else {
                throw CLIError.usage(
                    "--insecure-http verifies nothing: --ca and the attestation options (--measurement, ...) need an "
                        + "https:// URL")
            }
            return Plan(trust: .insecureHTTP, timeout: timeout, mount: mount)
        }
        guard url.hasPrefix("https://") else {
            throw CLIError.usage("the URL '\(url)' must start with https:// (or http:// with --insecure-http)")
        }
        guard !insecureHttp else { throw CLIError.usage("--insecure-http is for http:// URLs; '\(url)' is https") }
        if let ca {
            guard !identity.anyGiven else {
                throw CLIError.usage(
                    "give either --ca FILE (a pinned certificate, no attestation) or the attestation options "
                        + "(--measurement, --manifest, ...), not both")
            }
            _ = try Self.client(url: url, caFile: ca, timeout: timeout)
            return Plan(trust: .pinnedCA(ca), timeout: timeout, mount: mount)
        }
        let reference: ReferenceValues
        let verifier: ReportVerifier
        let candidates: [AMDCertificate]
        let endorsement: AMDCertificate?
        do { (reference, verifier, candidates, endorsement) = try identity.evidenceInputs() } catch let error
            as CLIError where error.exitCode == 2 && error.description.hasPrefix("say which VM")
        {
            throw CLIError.usage(error.description + " (or pin vhsmd's certificate with --ca FILE)")
        }
        do { _ = try AttestedTLSClient(url: url) } catch { throw CLIError.usage(error.description) }
        return Plan(trust: .attested(reference, verifier, candidates, endorsement), timeout: timeout, mount: mount)
    }

    /// A VaultClient with the login's timeout.
    static func client(
        url: String, caFile: String? = nil, fingerprint: String? = nil, timeout: Duration
    ) throws
        -> VaultClient
    {
        var client = try VaultClient(url: url, caFile: caFile, fingerprint: fingerprint)
        client.timeout = timeout
        return client
    }

    /// What the login brought back: the auth block (JSON, keys sorted) and its token, as bytes the caller zeroes.
    struct Outcome {
        var authJSON: [UInt8]
        var token: [UInt8]
        /// The notes printed on stderr (the trust mode, what was written).
        var notes: [String]
        /// SHA-256 of the SPKI the login bound (S).
        var audienceSPKISHA256: [UInt8]
        var wrapped: Bool
    }

    func run() async throws {
        var outcome = try await perform(note: { FileHandle.standardError.write(Data("vhsm login: \($0)\n".utf8)) })
        defer {
            outcome.token.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            outcome.authJSON.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
        var printed = json ? outcome.authJSON : outcome.token
        printed.append(0x0A)
        defer { printed.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        if let output {
            try Self.writeNew(printed, to: output)
            FileHandle.standardError.write(
                Data("vhsm login: wrote the \(json ? "auth block" : "token") to \(output) (mode 0600)\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data(printed))
        }
    }

    /// The six steps; `note` gets what stderr must say (unverified server, pinned certificate).
    func perform(note: (String) -> Void = { _ in }) async throws -> Outcome {
        let plan = try plan()
        var notes: [String] = []
        func say(_ text: String) {
            notes.append(text)
            note(text)
        }
        // 1. The server, and the certificate every later connection must present.
        let api: VaultClient
        let audience: [UInt8]
        var nonceAnswer: VaultClient.Answer?
        let noncePath = "auth/\(plan.mount)/nonce"
        switch plan.trust {
        case .attested(let reference, let verifier, let candidates, let endorsement):
            let attested: AttestedTLSClient
            do { attested = try AttestedTLSClient(url: url, timeout: plan.timeout) } catch {
                throw CLIError.usage(error.description)
            }
            let result: ServerVerification
            do {
                result = try await attested.verify(
                    reference: reference, verifier: verifier, extraCertificates: candidates, endorsement: endorsement)
            } catch {
                throw Self.failure(error)
            }
            guard result.trusted, let spki = result.spkiSHA256 else {
                throw CLIError.refused(
                    (["\(attested.place) is not trusted; no report was requested:"]
                        + (result.verdict.problems.isEmpty
                            ? ["the evidence was not checked"] : result.verdict.problems))
                        .joined(separator: "\n"))
            }
            audience = spki
            api = try Self.client(
                url: url, fingerprint: Hex.encode(SHA256.hash(data: result.leafCertificate)), timeout: plan.timeout)
        case .pinnedCA(let file):
            say(
                "--ca: \(url) is trusted because its certificate is \(file) or signed by it; its SEV-SNP evidence is "
                    + "NOT checked")
            let anchored = try Self.client(url: url, caFile: file, timeout: plan.timeout)
            // vhsmd's own self-signed certificate as the file (the usual case) is no anchor to BoringSSL: a
            // handshake alone (nothing sent) shows whether the server presents a certificate the file holds; if
            // not, the nonce is drawn over a connection the file's CA verifies, and that leaf is pinned.
            let presented: [UInt8]
            do { presented = try await AttestedTLSClient(url: url, timeout: plan.timeout).leafCertificate() } catch {
                throw Self.failure(error)
            }
            var held: [[UInt8]] = []
            if case .certificates(let certificates) = anchored.trust {
                held = certificates.compactMap { try? $0.toDERBytes() }
            }
            let leaf: [UInt8]
            if held.contains(presented) {
                leaf = presented
            } else {
                let answer: VaultClient.Answer
                do { answer = try await anchored.send(.POST, noncePath, body: Array("{}".utf8)) } catch let error
                    as CLIError where error.exitCode == CLIError.refusedCode && error.description.hasPrefix("cannot ")
                {
                    // The handshake above reached the server: what failed here is the file's verdict on it.
                    throw CLIError.refused(
                        "\(url) presented a certificate (SHA-256 \(VaultClient.colonHex(Array(SHA256.hash(data: presented)))))"
                            + " that \(file) neither holds nor verifies: \(error.description)")
                }
                guard let seen = answer.leafCertificate else {
                    throw CLIError.refused("\(url) presented no certificate")
                }
                leaf = seen
                nonceAnswer = answer
            }
            let spkiDER: [UInt8]
            do { spkiDER = try AttestedTLSBinding.subjectPublicKeyInfo(certificate: leaf) } catch {
                throw CLIError.refused(
                    "the certificate \(url) presented has no readable SubjectPublicKeyInfo: \(error)")
            }
            audience = AttestedTLSBinding.spkiSHA256(spkiDER)
            api = try Self.client(url: url, fingerprint: Hex.encode(SHA256.hash(data: leaf)), timeout: plan.timeout)
        case .insecureHTTP:
            say(
                "--insecure-http: \(url) is plain HTTP and NOT verified (dev mode); the login binds 32 zero bytes as "
                    + "the server's key")
            audience = AttestedLoginBinding.absent
            api = try Self.client(url: url, timeout: plan.timeout)
        }
        // 2. The nonce (over the pinned connection unless --ca already drew it on the anchored one).
        let nonceReply: VaultClient.Answer
        if let nonceAnswer {
            nonceReply = nonceAnswer
        } else {
            nonceReply = try await api.send(.POST, noncePath, body: Array("{}".utf8))
        }
        let nonceData = try Self.answer(nonceReply, what: "the nonce request (POST /v1/\(noncePath))")
        guard let nonceText = (nonceData["data"] as? [String: Any])?["nonce"] as? String,
            let nonce = try? Hex.decode(nonceText, count: AttestedLoginBinding.nonceCount)
        else {
            throw CLIError.refused("the answer to POST /v1/\(noncePath) has no data.nonce of 32 bytes hex")
        }
        // 3. The ephemeral key.
        let privateKey = HPKEPrivateKey(generating: keyType == .p384 ? .p384 : .x25519)
        let publicPEM = privateKey.publicKey.pemRepresentation
        let keySHA256 = privateKey.publicKey.fingerprint
        // 4. The report, from exactly the provider named.
        guard
            let reportData = AttestedLoginBinding.reportData(
                nonce: nonce, publicKeySHA256: keySHA256, audienceSPKISHA256: audience)
        else { throw CLIError.refused("cannot compute REPORT_DATA: a digest has the wrong length") }
        let device = try source.open()
        let report: AttestationReport
        let certificates: [[UInt8]]
        do {
            let (response, table) = try device.extendedReport(try ReportRequest(reportData: reportData))
            report = try response.checked()
            certificates = AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey)
        } catch {
            throw CLIError.device(device, error)
        }
        guard !certificates.isEmpty else {
            throw CLIError.refused(
                "\(device.name) returned no VCEK or VLEK with the report (the host supplies no certificate table): "
                    + "vhsmd needs the chip's certificate to check it")
        }
        // 5. The login, pinned to the certificate of step 1.
        var body: [String: Any] = [
            "role": role, "nonce": Hex.encode(nonce), "report": Data(report.bytes).base64EncodedString(),
            "certificates": certificates.map { Data($0).base64EncodedString() }, "public_key": publicPEM,
        ]
        if !noWrap { body["wrap_to_public_key"] = true }
        let loginPath = "auth/\(plan.mount)/login"
        let reply = try await api.send(
            .POST, loginPath, body: Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])))
        if let leaf = reply.leafCertificate,
            let spki = try? AttestedTLSBinding.subjectPublicKeyInfo(certificate: leaf),
            AttestedTLSBinding.spkiSHA256(spki) != audience
        {
            throw CLIError.refused("the login connection presented another key than the one the report binds")
        }
        let envelope = try Self.answer(reply, what: "the login (POST /v1/\(loginPath))")
        // 6. The auth block.
        var authJSON: [UInt8]
        if noWrap {
            guard let auth = envelope["auth"] as? [String: Any] else {
                throw CLIError.refused("the login answer has no auth block")
            }
            authJSON = Array(
                try JSONSerialization.data(withJSONObject: auth, options: [.sortedKeys, .withoutEscapingSlashes]))
        } else {
            guard envelope["auth"] == nil || envelope["auth"] is NSNull,
                let data = envelope["data"] as? [String: Any], let sealed = data["sealed_auth"] as? String,
                let suite = data["suite"] as? String, let info = data["info"] as? String
            else {
                throw CLIError.refused(
                    "the login answer is not sealed (no data.sealed_auth, suite and info, or an auth block in the "
                        + "clear): the server, or something between, did not honour wrap_to_public_key")
            }
            var opened: Data
            do {
                opened = try SealedLoginAuth.open(sealed, suite: suite, info: info, with: privateKey, nonce: nonce)
            } catch { throw CLIError.refused(error.description) }
            defer { opened.resetBytes(in: 0..<opened.count) }
            guard let auth = try? JSONSerialization.jsonObject(with: opened) as? [String: Any] else {
                throw CLIError.refused("the opened auth block is not a JSON object")
            }
            authJSON = Array(
                try JSONSerialization.data(withJSONObject: auth, options: [.sortedKeys, .withoutEscapingSlashes]))
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(authJSON)) as? [String: Any],
            let token = object["client_token"] as? String, !token.isEmpty
        else {
            authJSON.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            throw CLIError.refused("the auth block has no client_token")
        }
        return Outcome(
            authJSON: authJSON, token: Array(token.utf8), notes: notes, audienceSPKISHA256: audience,
            wrapped: !noWrap)
    }

    /// A 200's JSON object; otherwise the server's reasons, one per line (exit 1).
    static func answer(_ answer: VaultClient.Answer, what: String) throws -> [String: Any] {
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        guard answer.status == 200 else {
            let errors = object?["errors"] as? [String] ?? []
            throw CLIError.refused(
                (["\(what) was refused (HTTP \(answer.status))" + (errors.isEmpty ? "" : ":")] + errors)
                    .joined(separator: "\n"))
        }
        guard let object else { throw CLIError.refused("the answer to \(what) is not a JSON object") }
        return object
    }

    /// Attested TLS failures: not reachable (exit 3), or a server that is not vhsmd's attested TLS (exit 1).
    static func failure(_ error: AttestedTLSError) -> CLIError {
        switch error {
        case .badURL: .usage(error.description)
        case .unreachable, .timedOut: .unreachable(error.description)
        default: .refused(error.description + "\nthe server is not trusted; no report was requested")
        }
    }

    /// Writes `bytes` to a new file at `path` created with mode 0600 (never widened, never chmod'd after), then
    /// renamed over `path`.
    static func writeNew(_ bytes: [UInt8], to path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let temporary = directory + "/.vhsm-login-\(UUID().uuidString)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CLIError.input(path, "cannot create a file in \(directory): \(String(cString: strerror(errno)))")
        }
        var written = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                written += result
            }
        }
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        close(descriptor)
        guard failure == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(failure != 0 ? failure : errno))
            unlink(temporary)
            throw CLIError.input(path, "cannot be written: \(reason)")
        }
    }
}

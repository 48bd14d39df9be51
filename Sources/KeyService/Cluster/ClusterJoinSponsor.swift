import AttestedTLS
import Crypto
import FoundationEssentials
import HTTPTypes
import SNP
import Sealing

/// The sponsor's half of the attested join (issue 17 item 4, the KBS RCAR pattern): any unsealed node of the
/// cluster, active or standby, hands the cluster root key to a new node that proves by a fresh SEV-SNP report that
/// it runs an admitted launch.
///
/// - `POST sys/cluster/join/nonce` (no token): `{"nonce": 64 hex, "expires_at": RFC 3339}`, single-use, 60 s,
///   bounded (`LoginNonces`; 429 with Retry-After past the bound).
/// - `POST sys/cluster/join` (no token): `{node_id, nonce, report, certificates, public_key}`. Checked in this
///   order, the first failure refused with a message naming it: the nonce (unknown, spent or expired: a replay),
///   the report's signature and chain (AMD's roots and `cluster_trusted_roots`), REPORT_DATA
///   (`ClusterJoinBinding`), DEBUG or MIGRATE_MA in the guest policy, then the join policy (by default the
///   sponsor's own MEASUREMENT, or its ID key digest when it launched with an ID block). On success the answer is
///   the cluster root key sealed to `public_key` (`SealedClusterRootKey`); the sponsor writes nothing.
/// - `GET|PUT|DELETE sys/cluster/join-policy` (sudo, the active node): the `sev-snp` role vocabulary, kept behind
///   the barrier at `core/cluster/join-policy`; a standby sponsor reads it from the database at each join.
final class ClusterJoinSponsor: Sendable {
    static let noncePath = "sys/cluster/join/nonce"
    static let joinPath = "sys/cluster/join"
    static let policyPath = "sys/cluster/join-policy"
    /// Where the join policy is kept (below the services' storage: the barrier behind hidden path names).
    static let policyRecord = "core/cluster/join-policy"

    /// The sponsor's own launch (its report at start): what the default policy admits.
    struct Launch: Sendable, Equatable {
        var measurement: [UInt8]
        var idKeyDigest: [UInt8]

        init(measurement: [UInt8], idKeyDigest: [UInt8]) {
            self.measurement = measurement
            self.idKeyDigest = idKeyDigest
        }

        init(_ report: AttestationReport) {
            self.init(measurement: report.measurement, idKeyDigest: report.idKeyDigest)
        }

        /// Launched with an ID block: its ID key digest is not all zero.
        var hasIDKey: Bool { idKeyDigest.contains { $0 != 0 } }
    }

    let launch: Launch
    let verifier: ReportVerifier
    let nonces: LoginNonces

    init(launch: Launch, verifier: ReportVerifier, nonces: LoginNonces = LoginNonces()) {
        self.launch = launch
        self.verifier = verifier
        self.nonces = nonces
    }

    /// AMD's pinned roots and the PEM ARKs of `cluster_trusted_roots` (an emulator's, for tests).
    static func verifier(trustedRoots: [AMDCertificate]) -> ReportVerifier {
        trustedRoots.reduce(ReportVerifier.amd) { $0.trusting($1) }
    }

    // MARK: - The nonce

    func issueNonce() throws(VaultError) -> VaultReply {
        do {
            let (nonce, expiresAt) = try nonces.issue()
            return .data([
                "nonce": .string(Hex.encode(nonce)), "expires_at": .string(TransitTime.rfc3339(expiresAt)),
                "ttl": .int(Int64(nonces.timeToLive)),
            ])
        } catch {
            var refusal = VaultError(
                status: .tooManyRequests,
                messages: [
                    "too many join nonces are outstanding (at most \(nonces.capacity) unspent and unexpired); retry "
                        + "when the oldest expires"
                ])
            if case .tooMany(let retryAfter) = error { refusal.retryAfter = Int(retryAfter.rounded(.up)) }
            throw refusal
        }
    }

    // MARK: - The join

    /// What a join needs from the node at the moment it is served.
    struct Context: Sendable {
        /// `cluster_name`.
        var cluster: String
        /// S of `ClusterJoinBinding`: the SHA-256 of the SPKI of the certificate this node serves (zeros over HTTP).
        var servedSPKISHA256: [UInt8]
        /// The sealed store (read only): where the join policy is.
        var storage: EngineStorage
        /// The cluster root key, derived only once every check has passed.
        var rootKey: @Sendable () throws -> SymmetricKey
    }

    /// A refusal: 403 (or 400 for malformed input) whose first message starts "join refused:" and names the reason.
    private static func refused(_ reason: String, status: HTTPResponse.Status = .forbidden) -> VaultError {
        VaultError(status: status, messages: ["join refused: " + reason])
    }

    /// `arrived`: when the request arrived (the nonce's expiry and the certificates' validity are judged then).
    func join(_ request: VaultRequest, context: Context, arrived: Date = Date()) throws(VaultError) -> VaultReply {
        let body = request.body
        var malformed: [String] = []
        // Refused as every malformed request is, its message naming the join (found by the cluster-join fuzz target).
        do {
            try SevSNPAuthConfig.refuseUnknown(
                body, ["node_id", "nonce", "report", "certificates", "public_key"], what: "a join request")
        } catch {
            throw VaultError(
                status: .badRequest, messages: error.messages.map { "join refused: malformed request: " + $0 })
        }
        var nonce: [UInt8]?
        switch body["nonce"] {
        case .string(let text)?:
            do { nonce = try Hex.decode(text, count: ClusterJoinBinding.nonceCount) } catch {
                malformed.append("'nonce' (a nonce from \(Self.noncePath)) \(error)")
            }
        default: malformed.append("'nonce' must be the 64 hex digits of a nonce from \(Self.noncePath)")
        }
        // The nonce is spent first, whatever follows: a report is never tried twice.
        var nonceProblem: String?
        if let nonce {
            do { try nonces.spend(nonce, now: arrived) } catch {
                nonceProblem =
                    error == .expired
                    ? "the nonce has expired (replay of an old join request?): draw a fresh one from "
                        + "\(Self.noncePath) and attest again"
                    : "the nonce is unknown: it was not issued by this node, or it was already spent (a replayed join "
                        + "request); a nonce from \(Self.noncePath) serves one join"
            }
        }
        var nodeID: String?
        switch body["node_id"] {
        case .string(let text)? where ClusterDrivers.isNodeID(text): nodeID = text
        default: malformed.append("'node_id' must be the joiner's node_id: 1 to 64 letters, digits, '.', '_' or '-'")
        }
        let report = SevSNPAuthBackend.report(
            body["report"], missing: "the base64 of the joiner's attestation report", malformed: &malformed)
        var certificates: [AMDCertificate] = []
        do { certificates = try Self.certificates(body["certificates"]) } catch { malformed += error.messages }
        var publicKey: HPKEPublicKey?
        switch body["public_key"] {
        case .string(let pem)?:
            publicKey = HPKEPublicKey(pem: pem)
            if publicKey == nil {
                malformed.append(
                    "'public_key' must be a PEM SubjectPublicKeyInfo of an X25519 or P-384 key (the HPKE recipient "
                        + "of the root key)")
            }
        default: malformed.append("'public_key' is missing: the PEM SubjectPublicKeyInfo of the joiner's HPKE key")
        }
        if let nonceProblem { throw Self.refused(nonceProblem) }
        guard malformed.isEmpty, let nonce, let report, let publicKey, nodeID != nil else {
            throw VaultError(status: .badRequest, messages: malformed.map { "join refused: malformed request: " + $0 })
        }
        // The report's signature and chain.
        let verified: VerifiedReport
        do {
            verified = try verifier.verify(report, endorsement: certificates[0], candidates: certificates, at: arrived)
        } catch {
            throw Self.refused(
                "the report is not genuine (signature or certificate chain): "
                    + error.problems.map(Self.describe).joined(separator: "; "))
        }
        // The binding: this nonce, this key, this sponsor.
        guard
            ClusterJoinBinding.reportData(
                nonce: nonce, publicKeySHA256: publicKey.fingerprint, audienceSPKISHA256: context.servedSPKISHA256)
                == report.reportData
        else {
            throw Self.refused(
                "REPORT_DATA binds another key or nonce: expected SHA-512(\"\(ClusterJoinBinding.label)\" ‖ nonce ‖ "
                    + "SHA-256 of public_key's SPKI ‖ SHA-256 of the SPKI of this node's certificate"
                    + (context.servedSPKISHA256 == AttestedLoginBinding.absent
                        ? " (32 zero bytes over plain HTTP)" : "")
                    + "), got \(Hex.encode(report.reportData))")
        }
        if report.policy.contains(.debugAllowed) {
            throw Self.refused("the joiner's guest policy allows DEBUG: its memory is open to the host")
        }
        if report.policy.contains(.migrationAgentAllowed) {
            throw Self.refused("the joiner's guest policy allows MIGRATE_MA: a migration agent could move it")
        }
        // The join policy.
        let (reference, rule) = try policy(context.storage)
        let violations = reference.violations(in: verified)
        guard violations.isEmpty else {
            throw Self.refused(
                "the join policy (\(rule)) does not admit this launch: "
                    + violations.map(\.description).joined(separator: "; "))
        }
        var rootKey: [UInt8]
        do { rootKey = try context.rootKey().withUnsafeBytes { Array($0) } } catch {
            throw .internalError("this node cannot read the cluster root key: \(error)")
        }
        defer { rootKey.zeroize() }
        let sealed: String
        do { sealed = try SealedClusterRootKey.seal(rootKey, to: publicKey, nonce: nonce) } catch {
            throw .internalError("\(error)")
        }
        return .data([
            "cluster": .string(context.cluster), "generation": .int(1), "suite": .string(publicKey.suite.rawValue),
            "sealed_root_key": .string(sealed), "info": .string(SealedClusterRootKey.info),
        ])
    }

    /// `certificates` as `auth/sev-snp/login` takes them (a list of base64 DER certificates, the VCEK or VLEK
    /// first), or one string: a PEM chain (VCEK or VLEK first), or the base64 of an extended report's certificate
    /// table.
    static func certificates(_ value: JSONValue?) throws(VaultError) -> [AMDCertificate] {
        let limit = AttestationEvidence.maximumCertificates
        switch value {
        case .array(let items)? where !items.isEmpty && items.count <= limit:
            var out: [AMDCertificate] = []
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item, let der = try? TransitBase64.decode(text) else {
                    throw .badRequest("'certificates' item \(index + 1) is not a base64 DER certificate")
                }
                do { out.append(try AMDCertificate(derEncoded: der)) } catch {
                    throw .badRequest("'certificates' item \(index + 1) is not a DER certificate: \(error)")
                }
            }
            return out
        case .string(let text)? where text.contains("-----BEGIN"):
            do {
                let chain = try AMDCertificate.all(pemEncoded: text)
                guard !chain.isEmpty, chain.count <= limit else {
                    throw VaultError.badRequest("'certificates' must hold 1 to \(limit) PEM certificates")
                }
                return chain
            } catch let error as VaultError {
                throw error
            } catch {
                throw .badRequest("'certificates' is not a PEM chain: \(error)")
            }
        case .string(let text)?:
            let table: CertificateTable
            do { table = try CertificateTable(bytes: try TransitBase64.decode(text)) } catch {
                throw .badRequest(
                    "'certificates' is neither a PEM chain nor the base64 of a certificate table: \(error)")
            }
            var out: [AMDCertificate] = []
            for kind in [CertificateTable.Kind.vcek, .vlek, .ask, .ark] {
                guard let der = table[kind] else { continue }
                do { out.append(try AMDCertificate(derEncoded: der)) } catch {
                    throw .badRequest("the certificate table's \(kind) entry is not a DER certificate: \(error)")
                }
            }
            guard !out.isEmpty else { throw .badRequest("the certificate table holds no VCEK or VLEK") }
            return out
        default:
            throw .badRequest(
                "'certificates' must be a list of 1 to \(limit) base64 DER certificates (the VCEK or VLEK first), a "
                    + "PEM chain, or the base64 of the extended report's certificate table")
        }
    }

    /// A verification problem as a refusal says it: the fix is `cluster_trusted_roots`.
    static func describe(_ problem: VerificationProblem) -> String {
        switch problem {
        case .untrustedRoot(let subject, let fingerprint):
            "the root \(subject) (SHA-256 \(fingerprint)) is neither a pinned AMD ARK nor one of this node's "
                + "cluster_trusted_roots (an untrusted root)"
        case .notSignedByAMDRoot(let subject, let root):
            "\(subject) is not signed by AMD's \(root) nor by one of this node's cluster_trusted_roots (an untrusted "
                + "root)"
        default: problem.description
        }
    }

    // MARK: - The join policy

    /// The fields a join policy takes: the `sev-snp` role's reference values (DEBUG is never admitted; no token
    /// settings).
    static let policyFields: Set<String> = [
        "bound_measurements", "bound_host_data", "bound_id_key_digests", "bound_author_key_digests",
        "bound_family_ids", "bound_image_ids", "min_guest_svn", "min_tcb", "bound_products", "bound_chip_ids",
        "bound_vmpl", "allow_vlek", "permit_provisional_firmware", "minimum_launch_tcb",
    ]

    /// The reference values a joiner must meet, and the rule's name for messages: the stored policy, else the
    /// sponsor's own launch.
    func policy(_ storage: EngineStorage) throws(VaultError) -> (ReferenceValues, String) {
        if let stored = try storage.read(SevSNPRole.self, Self.policyRecord) {
            var values = try stored.referenceValues()
            values.allowDebug = false
            return (values, "the cluster's join policy, \(Self.policyPath)")
        }
        return launch.hasIDKey
            ? (
                ReferenceValues(idKeyDigests: [launch.idKeyDigest]),
                "default: the sponsor's own ID key digest \(Hex.encode(launch.idKeyDigest).prefix(16))…"
            )
            : (
                ReferenceValues(measurements: [launch.measurement]),
                "default: the sponsor's own MEASUREMENT \(Hex.encode(launch.measurement).prefix(16))…"
            )
    }

    /// `sys/cluster/join-policy` on the active node (sudo): GET the policy in force, PUT a new one (it replaces the
    /// stored one whole), DELETE it (back to the default).
    func servePolicy(_ request: VaultRequest, storage: EngineStorage) throws(VaultError) -> VaultReply {
        switch request.operation {
        case .read:
            if let stored = try storage.read(SevSNPRole.self, Self.policyRecord) {
                var answer = stored.answer.filter { Self.policyFields.contains($0.key) }
                answer["default"] = .bool(false)
                return .data(answer)
            }
            var answer: [String: JSONValue] = ["default": .bool(true)]
            if launch.hasIDKey {
                answer["bound_id_key_digests"] = .array([.string(Hex.encode(launch.idKeyDigest))])
            } else {
                answer["bound_measurements"] = .array([.string(Hex.encode(launch.measurement))])
            }
            return .data(answer)
        case .update, .create:
            try SevSNPAuthConfig.refuseUnknown(request.body, Self.policyFields, what: "the cluster join policy")
            var policy = SevSNPRole()
            try policy.apply(request.body)
            guard try policy.referenceValues().namesAnIdentity else {
                throw .badRequest(
                    "a join policy must name an identity: set bound_measurements, bound_id_key_digests or "
                        + "bound_author_key_digests (\"some SEV-SNP VM\" is not a cluster member)")
            }
            try storage.write(policy, Self.policyRecord)
            return .noContent
        case .delete:
            try storage.remove(Self.policyRecord)
            return .noContent
        default:
            throw .unsupportedOperation(Self.policyPath)
        }
    }
}

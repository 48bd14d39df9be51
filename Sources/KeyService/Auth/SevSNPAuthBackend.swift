import AttestedTLS
import Crypto
import FoundationEssentials
import HTTPTypes
import SNP
import Sealing
import SwiftASN1
import Synchronization
import X509

/// `auth/<path>/` of an auth method of type `sev-snp`: a confidential VM logs in with a fresh SEV-SNP report bound
/// to a nonce vhsmd issued (`AttestedLoginBinding`) and gets a token whose policies are its role's.
///
/// - `config` (read, write): `trusted_roots`, `nonce_ttl`, `audience_spki_sha256`, `clock_skew`; kept in the
///   barrier at `config` below the mount's storage, as transit keeps its keys.
/// - `role/:name` (read, write, delete) and LIST `role`: the role's reference values and token settings, at
///   `role/<name>`.
/// - `nonce` (write, no token): a single-use nonce from the mount's `LoginNonces`; 429 past the bound.
/// - `login` (write, no token): spends the nonce, verifies the report (chain, signature, TCB, binding, role) and
///   issues a token in Vault's `auth` shape; 400 for malformed input and 403 for evidence that is not acceptable,
///   each with every reason found.
///
/// A class (one per mount, made by `Engines`) because the outstanding nonces live in memory with the mount.
final class SevSNPAuthBackend: Backend {
    static let type = "sev-snp"

    /// What the login needs beyond the mount's own storage: the token store, the policies, and the SHA-256 of the
    /// SPKI of the TLS certificate vhsmd serves (32 zero bytes over plain HTTP in dev mode).
    struct Context: Sendable {
        let tokens: TokenStore
        let policies: PolicyStore
        let servedSPKISHA256: [UInt8]
        /// The mount's lease TTLs (`sys/auth/<path>` config or tune; 0: the token store's).
        var defaultLeaseTTL: Int64 = 0
        var maxLeaseTTL: Int64 = 0
    }

    private let storage: EngineStorage
    /// Held across each read-modify-write of the config or a role, so that two writers never lose a change.
    private let writes = Mutex(())
    /// The store new nonces come from, and the one before the last `nonce_ttl` change (its nonces stay good for
    /// the time they were issued with, so a config write does not break logins in flight).
    private let nonces: Mutex<(current: LoginNonces, previous: LoginNonces?)>

    init(storage: EngineStorage) {
        self.storage = storage
        let ttl = (try? storage.read(SevSNPAuthConfig.self, SevSNPAuthConfig.record))?.nonceTTL ?? 60
        nonces = Mutex((LoginNonces(timeToLive: TimeInterval(max(ttl, 1))), nil))
    }

    /// The paths of a `sev-snp` mount that need no token.
    static let unauthenticated: Set<String> = ["nonce", "login"]

    /// Vault's existence check: writing a role that does not exist needs `create`, changing one `update`; the
    /// config exists once written.
    var hasExistenceCheck: Bool { true }

    func existence(of path: String) async -> Bool? {
        if path == SevSNPAuthConfig.record {
            return (try? storage.read(SevSNPAuthConfig.self, SevSNPAuthConfig.record)) != nil
        }
        guard path.hasPrefix("role/"), let name = try? Self.roleName(path) else { return nil }
        return (try? storage.read(SevSNPRole.self, "role/" + name)) != nil
    }

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        throw .internalError("auth/sev-snp is served with its context (VaultCore.serve)")
    }

    func serve(_ request: VaultRequest, path: String, context: Context) async throws(VaultError) -> VaultReply {
        switch (request.operation, path) {
        case (.read, "config"): return .data(try config().answer)
        case (.update, "config"):
            let written = try writes.withLock { (_) throws(VaultError) -> SevSNPAuthConfig in
                var next = try config()
                try next.apply(request.body)
                try storage.write(next, SevSNPAuthConfig.record)
                return next
            }
            let ttl = TimeInterval(written.nonceTTL)
            nonces.withLock { stores in
                guard stores.current.timeToLive != ttl else { return }
                stores = (LoginNonces(timeToLive: ttl), stores.current)
            }
            return .noContent
        case (.list, "role"), (.list, "role/"):
            let names = try storage.children("role/").filter { !$0.hasSuffix("/") }.sorted()
            guard !names.isEmpty else { throw .notFound }
            return .data(["keys": .array(names.map(JSONValue.string))])
        case (.read, _) where path.hasPrefix("role/"):
            guard let role = try storage.read(SevSNPRole.self, "role/" + (try Self.roleName(path))) else {
                throw .notFound
            }
            return .data(role.answer)
        case (.update, _) where path.hasPrefix("role/"):
            let name = try Self.roleName(path)
            try writes.withLock { (_) throws(VaultError) in
                var role = try storage.read(SevSNPRole.self, "role/" + name) ?? SevSNPRole()
                try role.apply(request.body)
                try role.check(policies: context.policies)
                try storage.write(role, "role/" + name)
            }
            return .noContent
        case (.delete, _) where path.hasPrefix("role/"):
            try storage.remove("role/" + (try Self.roleName(path)))
            return .noContent
        case (.update, "nonce"):
            return try issueNonce()
        case (.update, "login"):
            return try await login(request, context: context)
        default:
            throw .unsupportedPath(request.path)
        }
    }

    private func config() throws(VaultError) -> SevSNPAuthConfig {
        try storage.read(SevSNPAuthConfig.self, SevSNPAuthConfig.record) ?? SevSNPAuthConfig()
    }

    /// A role name: letters, digits, '-', '_' and '.', as Vault's role names.
    static func roleName(_ path: String) throws(VaultError) -> String {
        let name = String(path.dropFirst("role/".count))
        guard !name.isEmpty, name.count <= 128,
            name.unicodeScalars.allSatisfy({
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
            }), name != ".", name != ".."
        else {
            throw .badRequest(
                "the role name '\(name)' is not valid: use 1 to 128 letters, digits, '-', '_' and '.'")
        }
        return name
    }

    private func issueNonce() throws(VaultError) -> VaultReply {
        let store = nonces.withLock { $0.current }
        do {
            let (nonce, expiresAt) = try store.issue()
            return .data([
                "nonce": .string(Hex.encode(nonce)), "expires_at": .string(TransitTime.rfc3339(expiresAt)),
                "ttl": .int(Int64(store.timeToLive)),
            ])
        } catch {
            var refusal = VaultError(status: .tooManyRequests, messages: ["\(error)"])
            if case .tooMany(let retryAfter) = error { refusal.retryAfter = Int(retryAfter.rounded(.up)) }
            throw refusal
        }
    }

    /// Spends `nonce` from the current store, else from the one before the last `nonce_ttl` change.
    private func spend(_ nonce: [UInt8], at instant: Date) throws(LoginNonceError) {
        let stores = nonces.withLock { $0 }
        do { try stores.current.spend(nonce, now: instant) } catch {
            guard error == .unknown, let previous = stores.previous else { throw error }
            try previous.spend(nonce, now: instant)
        }
    }

    /// The login. The nonce is spent first, whatever happens next, so that a report is never tried twice.
    private func login(_ request: VaultRequest, context: Context) async throws(VaultError) -> VaultReply {
        let body = request.body
        var malformed: [String] = []
        var refusals: [String] = []
        let arrived = Date()
        var nonce: [UInt8]?
        switch body["nonce"] {
        case .string(let text)?:
            do { nonce = try Hex.decode(text, count: LoginNonces.nonceCount) } catch {
                malformed.append("'nonce' (a nonce from auth/\(Self.type)/nonce) \(error)")
            }
        case nil, .null?: malformed.append("'nonce' is missing: draw one from auth/\(Self.type)/nonce")
        default: malformed.append("'nonce' must be a string of \(LoginNonces.nonceCount * 2) hex digits")
        }
        if let nonce {
            do { try spend(nonce, at: arrived) } catch { refusals.append("\(error)") }
        }
        var roleName: String?
        switch body["role"] {
        case .string(let text)? where !text.isEmpty:
            do { roleName = try Self.roleName("role/" + text) } catch { malformed += error.messages }
        default: malformed.append("'role' is missing: name the role to log in with")
        }
        let report = Self.report(
            body["report"], missing: "the base64 of the attestation report", malformed: &malformed)
        var certificates: [AMDCertificate] = []
        switch body["certificates"] {
        case .array(let items)? where !items.isEmpty && items.count <= AttestationEvidence.maximumCertificates:
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    malformed.append("'certificates' item \(index + 1) is not a string")
                    continue
                }
                do {
                    let der = try TransitBase64.decode(text)
                    do { certificates.append(try AMDCertificate(derEncoded: der)) } catch {
                        malformed.append("'certificates' item \(index + 1) is not a DER certificate: \(error)")
                    }
                } catch {
                    malformed.append("'certificates' item \(index + 1) is not standard base64: \(error)")
                }
            }
        default:
            malformed.append(
                "'certificates' must be a list of 1 to \(AttestationEvidence.maximumCertificates) base64 DER "
                    + "certificates, the VCEK or VLEK first")
        }
        var publicKeySHA256: [UInt8]?
        // A P-384 or X25519 key can take the sealed answer (HPKE); any other key swift-certificates reads is bound
        // by K only.
        var hpkeKey: HPKEPublicKey?
        var publicKeyGiven = false
        switch body["public_key"] {
        case nil, .null?: break
        case .string(let pem)?:
            publicKeyGiven = true
            if let key = HPKEPublicKey(pem: pem) {
                hpkeKey = key
                publicKeySHA256 = key.fingerprint
            } else {
                do {
                    let key = try Certificate.PublicKey(pemEncoded: pem)
                    publicKeySHA256 = Array(SHA256.hash(data: key.subjectPublicKeyInfoDER))
                } catch {
                    malformed.append("'public_key' is not a PEM SubjectPublicKeyInfo (BEGIN PUBLIC KEY): \(error)")
                }
            }
        default: malformed.append("'public_key' must be a PEM SubjectPublicKeyInfo")
        }
        var wrapTo: HPKEPublicKey?
        switch body["wrap_to_public_key"] {
        case nil, .null?, .bool(false)?: break
        case .bool(true)?:
            if let hpkeKey {
                wrapTo = hpkeKey
            } else if !publicKeyGiven {
                malformed.append(
                    "'wrap_to_public_key' needs 'public_key': the PEM SubjectPublicKeyInfo of the P-384 or X25519 key "
                        + "to seal the auth block to")
            } else if publicKeySHA256 != nil {
                malformed.append(
                    "'wrap_to_public_key' needs a P-384 or X25519 'public_key' (HPKE "
                        + HPKESuite.allCases.map(\.rawValue).joined(separator: " or ")
                        + "); this public_key is of another type")
            }
        default: malformed.append("'wrap_to_public_key' must be true or false")
        }
        guard malformed.isEmpty, let nonce, let roleName, let report else {
            throw VaultError(status: .badRequest, messages: malformed + refusals)
        }
        // A nonce vhsmd did not issue, or spent or expired, ends the login before any signature is checked: each
        // verification costs CPU, and issued nonces are bounded, so a caller gets no more verifications than
        // nonces.
        guard refusals.isEmpty else { throw VaultError(status: .forbidden, messages: refusals) }
        guard let role = try storage.read(SevSNPRole.self, "role/" + roleName) else {
            throw VaultError(status: .badRequest, messages: ["role '\(roleName)' does not exist"])
        }
        let config = try config()
        let reference = try role.referenceValues()
        var audiences = [context.servedSPKISHA256]
        audiences += try config.audiences()
        let verifier = try config.verifier()
        // The checks of EvidenceCheck (chain, signature, TCB, then the reference values), with this method's
        // binding instead of attested TLS's.
        let verified: VerifiedReport?
        var problems: [String] = []
        do {
            verified = try Self.verify(
                report, certificates: certificates, verifier: verifier, at: arrived, skew: config.clockSkew)
            problems += reference.violations(in: verified!).map(\.description)
        } catch {
            verified = nil
            problems += error.problems.map { "not genuine: \(Self.describe($0))" }
            problems += reference.violations(in: report, layout: report.product?.tcbLayout ?? .milanGenoa).map {
                "\($0) (in the unverified report)"
            }
        }
        let bound = audiences.contains { audience in
            AttestedLoginBinding.reportData(
                nonce: nonce, publicKeySHA256: publicKeySHA256, audienceSPKISHA256: audience) == report.reportData
        }
        if !bound {
            problems.append(
                "REPORT_DATA does not bind this login: expected SHA-512(\"\(AttestedLoginBinding.label)\" ‖ nonce ‖ "
                    + (publicKeySHA256 == nil ? "32 zero bytes (no public_key)" : "SHA-256 of public_key")
                    + " ‖ SHA-256 of the SPKI of vhsmd's certificate" + (audiences.count > 1 ? " or an audience" : "")
                    + "), got \(Hex.encode(report.reportData))")
        }
        guard problems.isEmpty, let verified else {
            throw VaultError(
                status: .forbidden,
                messages: problems.isEmpty ? ["the report is not genuine"] : problems)
        }
        return try issue(
            role: role, name: roleName, verified: verified, mountPath: request.path, context: context,
            wrap: wrapTo.map { ($0, nonce) })
    }

    /// ReportVerifier's verdict at `instant`; a chain refused only for validity times is tried again at the
    /// instant ± `skew` seconds.
    /// A verification problem as a login's refusal says it: where the verifier names its command-line fix
    /// (`--trust-emulator-root`), the method's own fix (`config` `trusted_roots`) is named instead.
    /// The `report` field of a login or a join: the base64 of a report; nil with the problem in `malformed`.
    static func report(_ value: JSONValue?, missing: String, malformed: inout [String]) -> AttestationReport? {
        guard case .string(let text)? = value else {
            malformed.append("'report' is missing: \(missing)")
            return nil
        }
        let bytes: [UInt8]
        do { bytes = try TransitBase64.decode(text) } catch {
            malformed.append("'report' is not standard base64: \(error)")
            return nil
        }
        do { return try AttestationReport(bytes: bytes) } catch {
            malformed.append(
                "'report' (\(bytes.count) bytes) is not an attestation report of \(AttestationReport.byteCount) "
                    + "bytes: \(error)")
            return nil
        }
    }

    static func describe(_ problem: VerificationProblem) -> String {
        switch problem {
        case .untrustedRoot(let subject, let fingerprint):
            "the root \(subject) (SHA-256 \(fingerprint)) is neither a pinned AMD ARK nor one of this method's "
                + "trusted_roots; to accept it (an emulator's, say), add its PEM to config trusted_roots"
        case .notSignedByAMDRoot(let subject, let root):
            "\(subject) is not signed by AMD's \(root) nor by one of this method's trusted_roots; to accept an "
                + "emulator's chain, add its ARK to config trusted_roots"
        default: problem.description
        }
    }

    static func verify(
        _ report: AttestationReport, certificates: [AMDCertificate], verifier: ReportVerifier, at instant: Date,
        skew: Int64
    ) throws(VerificationFailure) -> VerifiedReport {
        do {
            return try verifier.verify(report, endorsement: certificates[0], candidates: certificates, at: instant)
        } catch {
            let onlyTimes = error.problems.allSatisfy {
                if case .notValidAt = $0 { return true }
                return false
            }
            guard skew > 0, onlyTimes else { throw error }
            for shifted in [instant.addingTimeInterval(-Double(skew)), instant.addingTimeInterval(Double(skew))] {
                if let verified = try? verifier.verify(
                    report, endorsement: certificates[0], candidates: certificates, at: shifted)
                {
                    return verified
                }
            }
            throw error
        }
    }

    /// Issues the role's token. With `wrap`, the answer's `auth` is null and its `data` carries the auth block
    /// sealed to the login's key for its nonce (`SealedLoginAuth`); the audit log records the auth block with the
    /// token and accessor hashed, as for any login.
    private func issue(
        role: SevSNPRole, name: String, verified: VerifiedReport, mountPath: String, context: Context,
        wrap: (key: HPKEPublicKey, nonce: [UInt8])? = nil
    ) throws(VaultError) -> VaultReply {
        let report = verified.report
        var policies = TokenStore.sanitizePolicies(role.tokenPolicies)
        if !role.tokenNoDefaultPolicy, !policies.contains("default") { policies.append("default") }
        policies = TokenStore.sanitizePolicies(policies)
        // Vault's order: the role's period or TTL, else the mount's default; never above the mount's maximum (the
        // token store's where the mount sets none) nor the role's token_max_ttl.
        let tuning = context.tokens.tuning
        let maximum = context.maxLeaseTTL > 0 ? context.maxLeaseTTL : tuning.maximum
        let fallback = context.defaultLeaseTTL > 0 ? context.defaultLeaseTTL : tuning.defaultTTL
        var ttl = role.tokenPeriod > 0 ? role.tokenPeriod : role.tokenTTL > 0 ? role.tokenTTL : fallback
        ttl = min(ttl, maximum)
        if role.tokenMaxTTL > 0 { ttl = min(ttl, role.tokenMaxTTL) }
        var meta: [String: JSONValue] = [
            "role": .string(name), "measurement": .string(Hex.encode(report.measurement)),
            "product": .string(verified.product.name), "chip_id": .string(Hex.encode(report.chipID)),
            "reported_tcb": .string(report.reportedTCB.hex), "host_data": .string(Hex.encode(report.hostData)),
            "policy": .string("0x" + String(report.policy.rawValue, radix: 16)), "vmpl": .string("\(report.vmpl)"),
            "report_id": .string(Hex.encode(report.reportID)), "signer": .string(verified.signer.description),
        ]
        if report.idKeyDigest.contains(where: { $0 != 0 }) {
            meta["id_key_digest"] = .string(Hex.encode(report.idKeyDigest))
            meta["family_id"] = .string(Hex.encode(report.familyID))
            meta["image_id"] = .string(Hex.encode(report.imageID))
            meta["guest_svn"] = .string("\(report.guestSVN)")
        }
        if report.authorKeyDigest.contains(where: { $0 != 0 }) {
            meta["author_key_digest"] = .string(Hex.encode(report.authorKeyDigest))
        }
        let batch = role.tokenType == "batch"
        var entry = TokenStore.Entry(
            accessor: TokenStore.newToken(prefix: ""), policies: policies, displayName: "\(Self.type)-\(name)",
            creationTime: Date(), ttl: ttl, explicitMaxTTL: role.tokenMaxTTL, renewable: !batch,
            numUses: role.tokenNumUses, meta: meta, parent: nil, orphan: true, path: mountPath)
        entry.period = role.tokenPeriod > 0 ? role.tokenPeriod : nil
        entry.type = batch ? "batch" : nil
        let token = try context.tokens.create(entry: entry)
        let auth = TokenBackend.auth(entry, token: token)
        guard let wrap else { return VaultReply(auth: auth) }
        var plaintext = auth.serialized
        defer { plaintext.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        let sealed: String
        do { sealed = try SealedLoginAuth.seal(plaintext, to: wrap.key, nonce: wrap.nonce) } catch {
            // The token must not outlive an answer that cannot carry it.
            try? context.tokens.revoke(key: context.tokens.key(token: token))
            throw .internalError("\(error)")
        }
        var reply = VaultReply.data([
            "sealed_auth": .string(sealed), "suite": .string(wrap.key.suite.rawValue),
            "info": .string(SealedLoginAuth.info),
        ])
        reply.auditedAuth = auth
        return reply
    }
}

/// `auth/<path>/config` as kept in the barrier.
struct SevSNPAuthConfig: Codable, Sendable {
    static let record = "config"
    /// PEM ARKs trusted beyond AMD's pinned ones (an emulator's root only when named here).
    var trustedRoots: [String] = []
    /// Seconds a nonce stays valid.
    var nonceTTL: Int64 = 60
    /// Hex SHA-256 digests of SPKIs a login may be bound to besides the served certificate's (TLS proxies).
    var audienceSPKISHA256: [String] = []
    /// Seconds of clock skew allowed on certificate validity times.
    var clockSkew: Int64 = 0

    var answer: [String: JSONValue] {
        [
            "trusted_roots": .array(trustedRoots.map(JSONValue.string)), "nonce_ttl": .int(nonceTTL),
            "audience_spki_sha256": .array(audienceSPKISHA256.map(JSONValue.string)), "clock_skew": .int(clockSkew),
        ]
    }

    static let fields: Set<String> = ["trusted_roots", "nonce_ttl", "audience_spki_sha256", "clock_skew"]

    /// A 400 naming the body's fields that are not in `known`.
    static func refuseUnknown(_ body: JSONValue, _ known: Set<String>, what: String) throws(VaultError) {
        let unknown = body.objectMembers.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw .badRequest(
                "\(what) has no field " + unknown.map { "'\($0)'" }.joined(separator: ", ") + "; its fields are "
                    + known.sorted().joined(separator: ", "))
        }
    }

    /// Sets the fields the body names; every value is checked before anything changes, and an unknown field is
    /// refused.
    mutating func apply(_ body: JSONValue) throws(VaultError) {
        try Self.refuseUnknown(body, Self.fields, what: "the sev-snp config")
        var next = self
        if let roots = try TokenBackend.stringList(body, "trusted_roots") {
            for (index, pem) in roots.enumerated() {
                let certificates: [AMDCertificate]
                do { certificates = try AMDCertificate.all(pemEncoded: pem) } catch {
                    throw .badRequest("trusted_roots item \(index + 1) is not a PEM certificate: \(error)")
                }
                guard certificates.count == 1, let root = certificates.first, root.issuer == root.subject else {
                    throw .badRequest(
                        "trusted_roots item \(index + 1) must be one self-issued PEM root certificate (an ARK)")
                }
            }
            next.trustedRoots = roots
        }
        if let ttl = try body.duration("nonce_ttl") {
            guard (1...300).contains(ttl) else {
                throw .badRequest("nonce_ttl must be between 1 s and 5 minutes, not \(ttl) s")
            }
            next.nonceTTL = ttl
        }
        if let audiences = try TokenBackend.stringList(body, "audience_spki_sha256") {
            for (index, text) in audiences.enumerated() {
                do { _ = try Hex.decode(text, count: 32) } catch {
                    throw .badRequest(
                        "audience_spki_sha256 item \(index + 1) (an SPKI SHA-256) \(error)")
                }
            }
            next.audienceSPKISHA256 = audiences.map { $0.lowercased() }
        }
        if let skew = try body.duration("clock_skew") {
            guard (0...3600).contains(skew) else {
                throw .badRequest("clock_skew must be between 0 and 1 h, not \(skew) s")
            }
            next.clockSkew = skew
        }
        self = next
    }

    func audiences() throws(VaultError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for text in audienceSPKISHA256 {
            do { out.append(try Hex.decode(text, count: 32)) } catch {
                throw .internalError("the stored audience_spki_sha256 \(text) is not a SHA-256: \(error)")
            }
        }
        return out
    }

    /// AMD's pinned roots and the configured ones.
    func verifier() throws(VaultError) -> ReportVerifier {
        var verifier = ReportVerifier.amd
        for pem in trustedRoots {
            do { verifier = verifier.trusting(try AMDCertificate(pemEncoded: pem)) } catch {
                throw .internalError("a stored trusted root does not parse: \(error)")
            }
        }
        return verifier
    }
}

/// `auth/<path>/role/:name` as kept in the barrier: go-sev-guest's constraint names (`ReferenceValues`), hex in
/// lower case, and Vault's token settings.
struct SevSNPRole: Codable, Sendable {
    var boundMeasurements: [String] = []
    var boundHostData: String?
    var boundIDKeyDigests: [String] = []
    var boundAuthorKeyDigests: [String] = []
    var boundFamilyIDs: [String] = []
    var boundImageIDs: [String] = []
    var minGuestSVN: Int64?
    var minTCB: String?
    var boundProducts: [String] = []
    var boundChipIDs: [String] = []
    var boundVMPL: Int64?
    var allowDebug = false
    var allowVLEK = true
    var permitProvisionalFirmware = false
    var minimumLaunchTCB: String?
    var tokenPolicies: [String] = []
    var tokenTTL: Int64 = 0
    var tokenMaxTTL: Int64 = 0
    var tokenPeriod: Int64 = 0
    var tokenNumUses: Int64 = 0
    var tokenType = "default"
    var tokenNoDefaultPolicy = false

    /// The hex lists: field, bytes per item, key path.
    private static var hexLists: [(String, Int, WritableKeyPath<SevSNPRole, [String]>)] {
        [
            ("bound_measurements", 48, \.boundMeasurements), ("bound_id_key_digests", 48, \.boundIDKeyDigests),
            ("bound_author_key_digests", 48, \.boundAuthorKeyDigests), ("bound_family_ids", 16, \.boundFamilyIDs),
            ("bound_image_ids", 16, \.boundImageIDs), ("bound_chip_ids", 64, \.boundChipIDs),
        ]
    }

    /// The fields a role write takes; `policies`, `ttl`, `max_ttl` and `period` are Vault's legacy names.
    static let fields: Set<String> = [
        "bound_measurements", "bound_host_data", "bound_id_key_digests", "bound_author_key_digests",
        "bound_family_ids", "bound_image_ids", "min_guest_svn", "min_tcb", "bound_products", "bound_chip_ids",
        "bound_vmpl", "allow_debug", "allow_vlek", "permit_provisional_firmware", "minimum_launch_tcb",
        "token_policies", "token_ttl", "token_max_ttl", "token_period", "token_num_uses", "token_type",
        "token_no_default_policy", "policies", "ttl", "max_ttl", "period",
    ]

    /// Sets the fields the body names (a write to an existing role changes only those); each malformed value is a
    /// 400 naming its field, and so is a field the role does not have: a misspelt constraint must not leave the role
    /// weaker than it reads.
    mutating func apply(_ body: JSONValue) throws(VaultError) {
        try SevSNPAuthConfig.refuseUnknown(body, Self.fields, what: "a sev-snp role")
        var next = self
        for (field, count, keyPath) in Self.hexLists {
            guard let items = try TokenBackend.stringList(body, field) else { continue }
            next[keyPath: keyPath] = try items.enumerated().map { (index, text) throws(VaultError) in
                try Self.hex(text, count: count, field: "\(field) item \(index + 1)")
            }
        }
        if let text = try body.string("bound_host_data") {
            next.boundHostData = text.isEmpty ? nil : try Self.hex(text, count: 32, field: "bound_host_data")
        }
        for (field, keyPath) in [("min_tcb", \SevSNPRole.minTCB), ("minimum_launch_tcb", \.minimumLaunchTCB)] {
            guard let text = try body.string(field) else { continue }
            next[keyPath: keyPath] = text.isEmpty ? nil : try Self.hex(text, count: 8, field: field)
        }
        if let svn = try body.int("min_guest_svn") {
            guard (0...Int64(UInt32.max)).contains(svn) else {
                throw .badRequest("min_guest_svn must be between 0 and \(UInt32.max), not \(svn)")
            }
            next.minGuestSVN = svn
        }
        if let vmpl = try body.int("bound_vmpl") {
            guard (-1...3).contains(vmpl) else { throw .badRequest("bound_vmpl must be 0 to 3 (-1: any), not \(vmpl)") }
            next.boundVMPL = vmpl < 0 ? nil : vmpl
        }
        if let products = try TokenBackend.stringList(body, "bound_products") {
            next.boundProducts = try products.map { (name) throws(VaultError) -> String in
                guard let product = Product(rawValue: name.lowercased()) else {
                    throw .badRequest(
                        "bound_products names '\(name)', not one of "
                            + Product.allCases.map(\.name).joined(separator: ", "))
                }
                return product.rawValue
            }
        }
        if let value = try body.bool("allow_debug") { next.allowDebug = value }
        if let value = try body.bool("allow_vlek") { next.allowVLEK = value }
        if let value = try body.bool("permit_provisional_firmware") { next.permitProvisionalFirmware = value }
        if let value = try body.bool("token_no_default_policy") { next.tokenNoDefaultPolicy = value }
        var policies = try TokenBackend.stringList(body, "token_policies")
        if policies == nil { policies = try TokenBackend.stringList(body, "policies") }
        if let policies {
            next.tokenPolicies = TokenStore.sanitizePolicies(policies)
        }
        for (field, legacy, keyPath) in [
            ("token_ttl", "ttl", \SevSNPRole.tokenTTL), ("token_max_ttl", "max_ttl", \.tokenMaxTTL),
            ("token_period", "period", \.tokenPeriod),
        ] {
            var seconds = try body.duration(field)
            if seconds == nil { seconds = try body.duration(legacy) }
            guard let seconds else { continue }
            guard seconds >= 0 else { throw .badRequest("\(field) cannot be negative") }
            next[keyPath: keyPath] = seconds
        }
        if let uses = try body.int("token_num_uses") {
            guard uses >= 0 else { throw .badRequest("token_num_uses cannot be negative") }
            next.tokenNumUses = uses
        }
        if let type = try body.string("token_type") {
            switch type {
            case "", "default", "service", "default-service": next.tokenType = "default"
            case "batch", "default-batch": next.tokenType = "batch"
            default: throw .badRequest("invalid 'token_type' value '\(type)': service, batch or default")
            }
        }
        self = next
    }

    static func hex(_ text: String, count: Int, field: String) throws(VaultError) -> String {
        do { return Hex.encode(try Hex.decode(text, count: count)) } catch {
            throw .badRequest("\(field) \(error)")
        }
    }

    /// The checks that span fields: an identity is named, the TTLs agree, the policies exist.
    func check(policies store: PolicyStore) throws(VaultError) {
        let values = try referenceValues()
        guard values.namesAnIdentity else {
            throw .badRequest(
                "a sev-snp role must name an identity: set bound_measurements, bound_id_key_digests or "
                    + "bound_author_key_digests (\"some SEV-SNP VM\" is not an identity)")
        }
        if tokenMaxTTL > 0, tokenTTL > tokenMaxTTL {
            throw .badRequest("token_ttl (\(tokenTTL) s) cannot be greater than token_max_ttl (\(tokenMaxTTL) s)")
        }
        if tokenType == "batch", tokenPeriod > 0 { throw .badRequest("batch tokens cannot have a token_period") }
        let missing = tokenPolicies.filter { $0 != "default" && store.policy($0) == nil }
        guard missing.isEmpty else {
            throw .badRequest(
                "token_policies names policies that do not exist: \(missing.joined(separator: ", ")); write them at "
                    + "sys/policies/acl first")
        }
        if tokenPolicies.contains("root") { throw .badRequest("a sev-snp role cannot grant the root policy") }
    }

    func referenceValues() throws(VaultError) -> ReferenceValues {
        func bytes(_ text: String) throws(VaultError) -> [UInt8] {
            do { return try Hex.decode(text) } catch { throw .internalError("a stored role holds bad hex: \(error)") }
        }
        func tcb(_ text: String?) throws(VaultError) -> TCBVersion? {
            guard let text else { return nil }
            do { return try TCBVersion(hex: text) } catch {
                throw .internalError("a stored role holds a bad TCB: \(error)")
            }
        }
        func list(_ texts: [String]) throws(VaultError) -> [[UInt8]] {
            var out: [[UInt8]] = []
            for text in texts { out.append(try bytes(text)) }
            return out
        }
        return ReferenceValues(
            measurements: try list(boundMeasurements), idKeyDigests: try list(boundIDKeyDigests),
            authorKeyDigests: try list(boundAuthorKeyDigests), minimumGuestSVN: minGuestSVN.map { UInt32($0) },
            hostData: try boundHostData.map { (text) throws(VaultError) in try bytes(text) },
            minimumTCB: try tcb(minTCB), allowDebug: allowDebug, familyIDs: try list(boundFamilyIDs),
            imageIDs: try list(boundImageIDs), products: boundProducts.compactMap(Product.init(rawValue:)),
            chipIDs: try list(boundChipIDs), vmpl: boundVMPL.map { UInt32($0) }, allowVLEK: allowVLEK,
            permitProvisionalFirmware: permitProvisionalFirmware, minimumLaunchTCB: try tcb(minimumLaunchTCB))
    }

    var answer: [String: JSONValue] {
        func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
        return [
            "bound_measurements": strings(boundMeasurements), "bound_host_data": .string(boundHostData ?? ""),
            "bound_id_key_digests": strings(boundIDKeyDigests),
            "bound_author_key_digests": strings(boundAuthorKeyDigests), "bound_family_ids": strings(boundFamilyIDs),
            "bound_image_ids": strings(boundImageIDs), "min_guest_svn": minGuestSVN.map(JSONValue.int) ?? .null,
            "min_tcb": .string(minTCB ?? ""), "bound_products": strings(boundProducts),
            "bound_chip_ids": strings(boundChipIDs), "bound_vmpl": boundVMPL.map(JSONValue.int) ?? .null,
            "allow_debug": .bool(allowDebug), "allow_vlek": .bool(allowVLEK),
            "permit_provisional_firmware": .bool(permitProvisionalFirmware),
            "minimum_launch_tcb": .string(minimumLaunchTCB ?? ""), "token_policies": strings(tokenPolicies),
            "token_ttl": .int(tokenTTL), "token_max_ttl": .int(tokenMaxTTL), "token_period": .int(tokenPeriod),
            "token_num_uses": .int(tokenNumUses), "token_type": .string(tokenType),
            "token_no_default_policy": .bool(tokenNoDefaultPolicy),
        ]
    }
}

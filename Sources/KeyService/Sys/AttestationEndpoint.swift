import AttestedTLS
import FoundationEssentials
import HTTPTypes
import NIOCore
import NIOPosix
import SNP
import Synchronization

/// Why vhsmd has no evidence to give: one sentence naming the source.
enum AttestationError: Error, Sendable, CustomStringConvertible {
    /// The Secure Processor (the device or the report broker) failed or refused.
    case source(String, String)
    /// The answer is not a report for the REPORT_DATA asked for.
    case wrongReportData(String)
    /// The source did not answer within the endpoint's timeout.
    case timedOut(String, after: TimeAmount)

    var description: String {
        switch self {
        case .source(let name, let why): "cannot get an attestation report from \(name): \(why)"
        case .wrongReportData(let name):
            "\(name) answered a report whose REPORT_DATA is not the one asked for; the answer is discarded"
        case .timedOut(let name, let timeout):
            "\(name) did not answer an attestation report request within "
                + (timeout.nanoseconds % 1_000_000_000 == 0
                    ? "\(timeout.nanoseconds / 1_000_000_000) s" : "\(timeout.nanoseconds / 1_000_000) ms")
                + "; try again later"
        }
    }
}

/// Where vhsmd's attestation evidence comes from: the Secure Processor (in config mode the seal's device; under
/// vhsm-init the report broker, never the device) and, for hosts that supply no certificate table with the
/// extended report, the certificates the operator configured (`attestation_certificates`).
struct EvidenceSource: Sendable {
    let device: any GuestDevice
    /// DER certificates, VCEK or VLEK first, then ASK or ASVK, then ARK (any may be missing).
    var configuredCertificates: [[UInt8]] = []

    var name: String { device.name }

    /// A fresh extended report binding `nonce` and `spkiSHA256` (`AttestedTLSBinding`), with its certificates: the
    /// table's when the host supplies the endorsement key (VCEK or VLEK) in it, else the configured ones. Blocks
    /// while the Secure Processor works: never call it on an event loop.
    func evidence(nonce: [UInt8], spkiSHA256: [UInt8]) throws(AttestationError) -> AttestationEvidence {
        guard let data = AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: spkiSHA256) else {
            throw .source(
                name, "the nonce (\(nonce.count) bytes) or SPKI digest (\(spkiSHA256.count) bytes) is not 32 bytes")
        }
        let (report, certificates) = try report(reportData: data)
        return AttestationEvidence(nonce: nonce, report: report.bytes, certificates: certificates)
    }

    /// A fresh extended report with `reportData` (64 bytes), and its certificates: the table's when the host
    /// supplies the endorsement key (VCEK or VLEK) in it, else the configured ones (DER, VCEK or VLEK first). Blocks
    /// while the Secure Processor works.
    func report(reportData data: [UInt8]) throws(AttestationError) -> (AttestationReport, [[UInt8]]) {
        let report: AttestationReport
        let table: CertificateTable
        do {
            let (response, answered) = try device.extendedReport(try ReportRequest(reportData: data))
            report = try response.checked()
            table = answered
        } catch {
            throw .source(name, "\(error)")
        }
        guard report.reportData == data else { throw .wrongReportData(name) }
        let fromTable = AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey)
        let endorsed = table[report.keyInfo.signingKey == .vlek ? .vlek : .vcek] != nil
        return (report, endorsed ? fromTable : configuredCertificates)
    }

    /// The certificates of an `attestation_certificates` PEM file: at least one, each an X.509 certificate, leaf
    /// first (each issued by the next).
    static func certificates(file path: String) throws(ConfigError) -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read attestation_certificates \(path)")
        }
        let certificates: [AMDCertificate]
        do { certificates = try AMDCertificate.all(pemEncoded: String(decoding: data, as: UTF8.self)) } catch {
            throw ConfigError(
                "attestation_certificates \(path) must hold PEM certificates (VCEK or VLEK first, then ASK or ASVK, "
                    + "then ARK): \(error)")
        }
        guard !certificates.isEmpty else {
            throw ConfigError(
                "attestation_certificates \(path) holds no PEM certificate; it must hold the VCEK or VLEK first, then "
                    + "ASK or ASVK, then ARK")
        }
        guard certificates.count <= AttestationEvidence.maximumCertificates else {
            throw ConfigError(
                "attestation_certificates \(path) holds \(certificates.count) certificates, at most "
                    + "\(AttestationEvidence.maximumCertificates) are served")
        }
        for (index, pair) in zip(certificates, certificates.dropFirst()).enumerated()
        where pair.0.issuer != pair.1.subject {
            throw ConfigError(
                "attestation_certificates \(path): certificate \(index + 1) (\(pair.0.subject)) is issued by "
                    + "\(pair.0.issuer), not by certificate \(index + 2) (\(pair.1.subject)); put the VCEK or VLEK "
                    + "first, then ASK or ASVK, then ARK")
        }
        return certificates.map(\.derRepresentation)
    }

    /// Checks at start that configured certificates endorse this launch (`evidence` is fresh): served only when the
    /// host gives no table, they must verify the report (signature, CHIP_ID, TCB). Returns a start notice when the
    /// answer will carry no certificate at all, or when the configured ones go unused.
    func check(_ evidence: AttestationEvidence, at instant: Date = Date()) throws(ConfigError) -> String? {
        if evidence.certificates.isEmpty {
            return "vhsmd: the host supplies no certificate table with reports and attestation_certificates is not "
                + "set: sys/attestation answers no certificates, so clients must fetch the VCEK themselves"
        }
        guard !configuredCertificates.isEmpty, evidence.certificates == configuredCertificates else {
            return configuredCertificates.isEmpty
                ? nil
                : "vhsmd: the host supplies certificates with reports: sys/attestation serves them, and "
                    + "attestation_certificates only when a report comes without them"
        }
        do {
            let report = try AttestationReport(bytes: evidence.report)
            let chain = try configuredCertificates.map { (der) throws -> AMDCertificate in
                try AMDCertificate(derEncoded: der)
            }
            var verifier = ReportVerifier.amd
            if let root = chain.last, root.issuer == root.subject { verifier = verifier.trusting(root) }
            _ = try verifier.verify(report, endorsement: chain[0], candidates: chain, at: instant)
        } catch {
            throw ConfigError(
                "attestation_certificates do not endorse this launch's report from \(name): \(error). The first "
                    + "must be this chip's VCEK (or VLEK) at its REPORTED_TCB")
        }
        return nil
    }
}

/// `sys/attestation`'s rate and queue (README: 10 reports per second, bursts of 10, at most 4 waiting).
struct AttestationLimits: Sendable {
    /// Reports per second, on average.
    var rate: Double = 10
    /// Reports that may be asked for at once after a quiet period.
    var burst: Double = 10
    /// Requests that may wait while one report is made; one more is refused (429).
    var queue = 4
    /// How long a request waits for its report (in the queue and at the Secure Processor) before a 503.
    var timeout = TimeAmount.seconds(10)
}

/// `GET /v1/sys/attestation?nonce=<64 hex digits>`: unauthenticated, served whenever vhsmd runs on an SNP seal with
/// TLS, sealed or not. Each answer is a fresh extended report binding the nonce and the served certificate's SPKI
/// (`AttestedTLSBinding`), in Vault's envelope: `data.format`, `data.nonce`, `data.report`, `data.certificates`,
/// `data.spki_sha256`.
///
/// Every call is a Secure Processor request, so the endpoint bounds them: reports are made on the endpoint's own
/// thread, one at a time, never on an event loop; a token bucket (`AttestationLimits`) and a bounded wait queue
/// refuse the rest with 429 and `Retry-After`. Refusals (400, 429, 501) are answered on the event loop without a
/// task, and other requests never wait for a report.
final class AttestationEndpoint: Sendable {
    static let path = "sys/attestation"

    private struct Served: Sendable {
        let source: EvidenceSource
        let spkiSHA256: [UInt8]
        let limits: AttestationLimits
        let pool: NIOThreadPool
    }

    private struct Bucket {
        var tokens: Double
        var refilled: ContinuousClock.Instant
        /// Requests admitted and not finished: the one at the Secure Processor and those waiting.
        var pending = 0
    }

    private let served: Served?
    /// Why the endpoint answers 501 (nil when it serves).
    let unavailable: String?
    private let bucket: Mutex<Bucket>

    /// An endpoint that serves `source`'s evidence for the certificate whose DER SubjectPublicKeyInfo is `spki`.
    init(source: EvidenceSource, spki: [UInt8], limits: AttestationLimits = AttestationLimits()) {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        served = Served(
            source: source, spkiSHA256: AttestedTLSBinding.spkiSHA256(spki), limits: limits, pool: pool)
        unavailable = nil
        bucket = Mutex(Bucket(tokens: limits.burst, refilled: .now))
    }

    /// An endpoint that answers 501 with `reason`.
    init(unavailable reason: String) {
        served = nil
        unavailable = reason
        bucket = Mutex(Bucket(tokens: 0, refilled: .now))
    }

    deinit { served?.pool.shutdownGracefully { _ in } }

    static let devMode = AttestationEndpoint(
        unavailable:
            "vhsmd runs in dev mode: there is no SEV-SNP Secure Processor behind it and no TLS key for a report to "
            + "bind; sys/attestation is served in config mode on an SNP seal ('sev-guest') over HTTPS")
    static let notSNP = AttestationEndpoint(
        unavailable:
            "this vhsmd runs on no SEV-SNP seal: there is no Secure Processor to make a report; sys/attestation is "
            + "served in config mode on an SNP seal ('sev-guest') over HTTPS")
    static let tlsDisabled = AttestationEndpoint(
        unavailable:
            "vhsmd serves plain HTTP (tls_disable): there is no TLS key for a report to bind; serve HTTPS (a "
            + "self-signed certificate or tls_cert_file) to use sys/attestation")

    /// Requests admitted and not finished (at the Secure Processor or waiting for it).
    var pending: Int { bucket.withLock { $0.pending } }

    /// The SHA-256 of the SPKI the reports bind (nil when not served).
    var spkiSHA256: [UInt8]? { served?.spkiSHA256 }

    /// On the event loop: the answer when it is a refusal that needs no report (a wrong method or nonce, no SNP
    /// seal, no token left); nil when the request must go to `answer`.
    func refusal(_ request: VaultRequest) -> VaultError? {
        do throws(VaultError) {
            guard let served = try check(request) else { return nil }
            let wait: Int? = bucket.withLock { bucket in
                Self.refill(&bucket, served.limits)
                if bucket.pending > served.limits.queue { return 1 }
                return bucket.tokens < 1 ? Self.wait(for: bucket, served.limits) : nil
            }
            return wait.map { Self.tooManyRequests(retryAfter: $0) }
        } catch {
            return error
        }
    }

    /// The answer: a fresh report made on the endpoint's thread, or a refusal.
    func answer(_ request: VaultRequest) async throws(VaultError) -> VaultReply {
        guard let served = try check(request) else { throw .internalError("sys/attestation has nothing to serve") }
        let nonce = try Self.nonce(request)
        try admit(served.limits)
        let outcome = await make(served, nonce: nonce)
        let evidence: AttestationEvidence
        switch outcome {
        case .success(let made): evidence = made
        case .failure(let error):
            var refusal = VaultError(status: .serviceUnavailable, messages: ["\(error)"])
            refusal.retryAfter = 1
            throw refusal
        }
        return VaultReply(
            data: .object([
                "format": .string(evidence.format), "nonce": .string(Hex.encode(evidence.nonce)),
                "report": .string(TransitBase64.encode(evidence.report)),
                "certificates": .array(evidence.certificates.map { .string(TransitBase64.encode($0)) }),
                "spki_sha256": .string(Hex.encode(served.spkiSHA256)),
            ]))
    }

    /// The method, the mode and the nonce; the served state when the request may go on.
    private func check(_ request: VaultRequest) throws(VaultError) -> Served? {
        guard request.operation == .read else { throw .unsupportedOperation(Self.path) }
        guard let served else {
            throw VaultError(status: .notImplemented, messages: [unavailable ?? "sys/attestation is not served"])
        }
        _ = try Self.nonce(request)
        return served
    }

    static let expectedNonce = "64 hex digits (32 bytes, fresh and random for each request)"

    /// The query's `nonce`: exactly 64 hex digits.
    static func nonce(_ request: VaultRequest) throws(VaultError) -> [UInt8] {
        guard let text = request.query["nonce"], !text.isEmpty else {
            throw .badRequest(
                "sys/attestation needs a nonce: GET /v1/sys/attestation?nonce=<\(expectedNonce)>")
        }
        let count = text.utf8.count
        guard count == 2 * AttestedTLSBinding.nonceCount else {
            throw .badRequest("the nonce has \(count) characters; sys/attestation expects \(expectedNonce)")
        }
        guard text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x46).contains($0 & 0xDF) }) else {
            throw .badRequest("the nonce is not hexadecimal; sys/attestation expects \(expectedNonce)")
        }
        do { return try Hex.decode(text, count: AttestedTLSBinding.nonceCount) } catch {
            throw .badRequest("the nonce \(error); sys/attestation expects \(expectedNonce)")
        }
    }

    /// Takes a token and a place in the queue, or refuses with 429.
    private func admit(_ limits: AttestationLimits) throws(VaultError) {
        let wait: Int? = bucket.withLock { bucket in
            Self.refill(&bucket, limits)
            guard bucket.pending <= limits.queue else { return 1 }
            guard bucket.tokens >= 1 else { return Self.wait(for: bucket, limits) }
            bucket.tokens -= 1
            bucket.pending += 1
            return nil
        }
        if let wait { throw Self.tooManyRequests(retryAfter: wait) }
    }

    private static func refill(_ bucket: inout Bucket, _ limits: AttestationLimits) {
        let now = ContinuousClock.now
        let elapsed = bucket.refilled.duration(to: now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        bucket.tokens = min(limits.burst, bucket.tokens + max(0, seconds) * limits.rate)
        bucket.refilled = now
    }

    /// Whole seconds until the bucket holds a token, at least 1.
    private static func wait(for bucket: Bucket, _ limits: AttestationLimits) -> Int {
        guard limits.rate > 0 else { return 60 }
        let seconds = ((1 - bucket.tokens) / limits.rate).rounded(.up)
        return max(1, min(3600, Int(seconds)))
    }

    private static func tooManyRequests(retryAfter seconds: Int) -> VaultError {
        var error = VaultError(
            status: .tooManyRequests,
            messages: [
                "too many attestation requests: each is a Secure Processor request, and vhsmd makes at most one at a "
                    + "time within its rate limit; retry after \(seconds) s"
            ])
        error.retryAfter = seconds
        return error
    }

    /// Makes the report on the endpoint's thread; gives up after the timeout (a request still waiting then is not
    /// made at all). The place in the queue is released when the thread is done with it.
    private func make(_ served: Served, nonce: [UInt8]) async -> Result<AttestationEvidence, AttestationError> {
        let once = OneShot<Result<AttestationEvidence, AttestationError>>()
        return await withCheckedContinuation { continuation in
            once.arm(continuation)
            let timer = ServerThreads.group.next().scheduleTask(in: served.limits.timeout) {
                once.resume(.failure(.timedOut(served.source.name, after: served.limits.timeout)))
            }
            served.pool.submit { [self] state in
                defer { bucket.withLock { $0.pending -= 1 } }
                guard case .active = state, !once.isDone else { return }
                let result: Result<AttestationEvidence, AttestationError>
                do throws(AttestationError) {
                    result = .success(try served.source.evidence(nonce: nonce, spkiSHA256: served.spkiSHA256))
                } catch {
                    result = .failure(error)
                }
                timer.cancel()
                once.resume(result)
            }
        }
    }
}

/// A continuation resumed once, by whichever of the work and its timeout comes first.
private final class OneShot<Value: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Value, Never>?, done: Bool)>((nil, false))

    func arm(_ continuation: CheckedContinuation<Value, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    var isDone: Bool { state.withLock { $0.done } }

    func resume(_ value: Value) {
        let continuation: CheckedContinuation<Value, Never>? = state.withLock { state in
            guard !state.done else { return nil }
            state.done = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: value)
    }
}

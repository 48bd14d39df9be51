import AttestedTLS
import Crypto
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOSSL
import SNP
import SNPEmulator
import SNPGuest
import SwiftASN1
import Synchronization
import Testing
import X509

@testable import KeyService

/// A guest device whose extended reports wait until the test opens the gate, and that counts them.
final class GatedDevice: GuestDevice {
    let inner: any GuestDevice
    /// Reports asked for; reports started (entered the device).
    let calls = Mutex(0)
    private let gate = DispatchSemaphore(value: 0)
    private let entered = DispatchSemaphore(value: 0)
    let gated: Bool
    /// When set, extendedReport fails with it.
    let failure: String?

    init(_ inner: any GuestDevice, gated: Bool = true, failure: String? = nil) {
        self.inner = inner
        self.gated = gated
        self.failure = failure
    }

    var name: String { "the test device" }
    var count: Int { calls.withLock { $0 } }
    func report(_ request: ReportRequest) throws -> ReportResponse { try inner.report(request) }
    func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable) {
        calls.withLock { $0 += 1 }
        entered.signal()
        if gated { gate.wait() }
        if let failure { throw AttestationTestFailure(failure) }
        return try inner.extendedReport(request)
    }
    func derivedKey(_ request: DerivedKeyRequest) throws -> DerivedKeyResponse { try inner.derivedKey(request) }

    /// Lets `count` reports through.
    func open(_ count: Int = 1) { for _ in 0..<count { gate.signal() } }
    /// Waits (off the cooperative pool) until a report has entered the device.
    func waitUntilEntered(seconds: Int = 10) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: self.entered.wait(timeout: .now() + .seconds(seconds)) == .success)
            }
        }
    }
}

/// A device that answers reports with no certificate table, as a host that supplies none.
struct TablelessDevice: GuestDevice {
    let inner: EmulatedGuest
    var name: String { "a host without certificates" }
    func report(_ request: ReportRequest) throws -> ReportResponse { inner.report(request) }
    func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable) {
        (inner.report(request), CertificateTable(entries: []))
    }
    func derivedKey(_ request: DerivedKeyRequest) throws -> DerivedKeyResponse { inner.derivedKey(request) }
}

struct AttestationTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Issue 14, vhsmd's half: `GET /v1/sys/attestation` (answers, refusals, rate and isolation) and the evidence in the
/// self-signed certificate, through the served HTTP path.
@Suite struct AttestationEndpointTests {
    static let chip: ChipState = try! ChipState.create(product: .genoa)
    static let otherChip: ChipState = try! ChipState.create(product: .genoa)
    static let measurementA = Array(repeating: UInt8(0xA1), count: 48)
    static let measurementB = Array(repeating: UInt8(0xB2), count: 48)

    let directory = TemporaryDirectory()

    static func guest(_ measurement: [UInt8] = measurementA, chip: ChipState = chip) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: measurement, policy: GuestPolicy(rawValue: 0x30000)))
    }

    static func evidence(from device: any GuestDevice) -> (_ spkiSHA256: [UInt8]) throws -> AttestationEvidence {
        { spkiSHA256 in
            try EvidenceSource(device: device).evidence(
                nonce: AttestedTLSBinding.certificateNonce, spkiSHA256: spkiSHA256)
        }
    }

    var verifier: ReportVerifier { ReportVerifier.amd.trusting(Self.chip.ark) }
    static let reference = ReferenceValues(measurements: [measurementA])

    /// A served core (dev storage: the endpoint does not depend on the store) with `attestation`.
    static func app(
        _ attestation: AttestationEndpoint, tls: TLSIdentity? = nil, sealed: Bool = false
    ) throws -> some ApplicationProtocol {
        let services = try Services.open(try DevStorage.make())
        let core = VaultCore(
            runtime: Runtime(
                state: ServerState(initialized: true, sealed: sealed, sealType: "emulator:test", storageType: "inmem"),
                services: services), metrics: ServiceMetrics(), attestation: attestation)
        return try buildApplication(
            core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), tls: tls?.configuration,
            limits: ServerTests.patientLimits)
    }

    static func randomNonce() -> [UInt8] { (0..<32).map { _ in UInt8.random(in: 0...255) } }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    /// The evidence of a 200 answer, with its field names and encodings checked exactly.
    func evidence(_ body: [String: Any], nonce: [UInt8]) throws -> (AttestationEvidence, [UInt8]) {
        for key in ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"] {
            #expect(body.keys.contains(key), "the envelope has \(key)")
        }
        let data = try #require(body["data"] as? [String: Any])
        #expect(Set(data.keys) == ["format", "nonce", "report", "certificates", "spki_sha256"])
        #expect(data["format"] as? String == "vhsm-attested-tls-v1")
        #expect(data["nonce"] as? String == Hex.encode(nonce), "the nonce is echoed in lower-case hex")
        let reportText = try #require(data["report"] as? String)
        let report = try #require(Data(base64Encoded: reportText), "report is standard base64")
        #expect(report.count == 1184)
        let certificates = try #require(data["certificates"] as? [String]).map { text in
            try #require(Data(base64Encoded: text), "certificates are standard base64")
        }
        let spki = try Hex.decode(try #require(data["spki_sha256"] as? String), count: 32)
        return (
            AttestationEvidence(
                format: try #require(data["format"] as? String), nonce: nonce, report: Array(report),
                certificates: certificates.map { Array($0) }),
            spki
        )
    }

    /// GET sys/attestation with `nonce` on `client`: the status, body and Retry-After.
    func attest(
        _ client: some TestClientProtocol, _ query: String
    ) async throws -> (
        HTTPResponse.Status, [String: Any], String?
    ) {
        try await client.execute(uri: "/v1/sys/attestation\(query)", method: .get) { response in
            (response.status, try json(response.body), response.headers[HTTPField.Name("Retry-After")!])
        }
    }

    /// A TLS client that takes whatever certificate the server presents (as an attested-TLS client does before it
    /// has checked the evidence), and returns the handshake's leaf with the answer.
    func overTLS(port: Int, uri: String) async throws -> (NIOSSLCertificate, TestClient.Response) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try await TestClient.withClient(
            host: "127.0.0.1", port: port,
            configuration: .init(tlsConfiguration: configuration, serverName: "localhost")
        ) { client in
            let response = try await client.get(uri)
            let channel = try await client.channelPromise.futureResult.get()
            let leaf = try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
            }.get()
            return (try #require(leaf), response)
        }
    }

    // MARK: The answer

    @Test func theAnswerVerifiesAgainstTheSPKIOfTheHandshakeAndTheCertificateCarriesEvidence() async throws {
        let device = Self.guest()
        let identity = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", evidence: Self.evidence(from: device))
        let (endpoint, notices) = try VHSMD.attestation(tls: identity, source: EvidenceSource(device: device))
        #expect(notices.isEmpty, "the emulator's table carries the certificates")
        let app = try Self.app(endpoint, tls: identity)
        let nonce = Self.randomNonce()
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let (leaf, response) = try await overTLS(
                port: port,
                uri: "/v1/sys/attestation?nonce=\(Hex.encode(nonce).uppercased())")
            #expect(response.status == .ok)
            let handshake = try Certificate(derEncoded: try leaf.toDERBytes())
            #expect(handshake == identity.leaf, "the handshake presents the certificate vhsmd made")
            let handshakeSPKI = AttestedTLSBinding.spkiSHA256(handshake.publicKey.subjectPublicKeyInfoDER)
            let (evidence, announced) = try evidence(try json(try #require(response.body)), nonce: nonce)
            #expect(announced == handshakeSPKI)
            #expect(evidence.certificates.count == 3, "VCEK, ASK, ARK")
            #expect(try AMDCertificate(derEncoded: evidence.certificates[0]).hardwareID != nil, "the VCEK is first")
            #expect(evidence.certificates[2] == Self.chip.ark.derRepresentation, "the ARK is last")
            let verdict = EvidenceCheck.check(
                evidence, nonce: nonce, handshakeSPKISHA256: handshakeSPKI, announcedSPKISHA256: announced,
                reference: Self.reference, verifier: verifier)
            #expect(verdict.trusted, "\(verdict.problems)")
            // Another client's key (a proxy's) is not what the report binds.
            let proxy = AttestedTLSBinding.spkiSHA256(
                Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER)
            #expect(
                !EvidenceCheck.check(
                    evidence, nonce: nonce, handshakeSPKISHA256: proxy, reference: Self.reference, verifier: verifier
                ).bound)

            // The certificate of the handshake carries the evidence over the zero nonce and its own key.
            let carried = try #require(try AttestationEvidence(certificate: handshake))
            #expect(handshake.extensions.first { $0.oid == AttestationEvidence.oid }?.critical == false)
            let fromCertificate = EvidenceCheck.check(
                carried, nonce: AttestedTLSBinding.certificateNonce, handshakeSPKISHA256: handshakeSPKI,
                reference: Self.reference, verifier: verifier)
            #expect(fromCertificate.trusted, "\(fromCertificate.problems)")
        }
    }

    @Test func itIsServedWhileSealedAndComesFromTheReportBroker() async throws {
        let socket = directory.path + "/report.sock"
        let listener = try ReportBrokerListener(path: socket, owner: (uid: getuid(), gid: getgid()))
        defer { listener.stop() }
        try listener.start(device: Self.guest())
        let source = EvidenceSource(device: ReportBrokerClient(path: socket))
        let identity = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", evidence: Self.evidence(from: source.device))
        let (endpoint, _) = try VHSMD.attestation(tls: identity, source: source)
        let nonce = Self.randomNonce()
        try await Self.app(endpoint, sealed: true).test(.live) { client in
            try await client.execute(uri: "/v1/sys/health", method: .get) { response in
                #expect(response.status.code == 503, "the store is sealed")
            }
            let (status, body, _) = try await attest(client, "?nonce=\(Hex.encode(nonce))")
            #expect(status == .ok)
            let (evidence, _) = try evidence(body, nonce: nonce)
            let verdict = EvidenceCheck.check(
                evidence, nonce: nonce,
                handshakeSPKISHA256: AttestedTLSBinding.spkiSHA256(identity.subjectPublicKeyInfo),
                reference: Self.reference, verifier: verifier)
            #expect(verdict.trusted, "\(verdict.problems)")
        }
    }

    @Test func withTheOperatorsCertificateTheBindingCoversItsSPKI() async throws {
        let key = P384.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("operator.example") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 60,
            notValidAfter: Date() + 86_400, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName("localhost")]) },
            issuerPrivateKey: .init(key))
        let certificatePath = directory.path + "/operator.crt"
        let keyPath = directory.path + "/operator.key"
        try certificate.serializeAsPEM().pemString.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        #expect(FileManager.default.createFile(atPath: keyPath, contents: Data(key.pemRepresentation.utf8)))
        #expect(chmod(keyPath, 0o600) == 0)
        let identity = try TLSIdentity.load(certificateFile: certificatePath, keyFile: keyPath)
        #expect(try AttestationEvidence(certificate: identity.leaf) == nil, "the operator's certificate is left as is")
        let (endpoint, _) = try VHSMD.attestation(tls: identity, source: EvidenceSource(device: Self.guest()))
        let nonce = Self.randomNonce()
        try await Self.app(endpoint, tls: identity).test(.live) { client in
            let (leaf, response) = try await overTLS(
                port: try #require(client.port),
                uri: "/v1/sys/attestation?nonce=\(Hex.encode(nonce))")
            #expect(response.status == .ok)
            let served = try Certificate(derEncoded: try leaf.toDERBytes())
            #expect(served == certificate)
            let spki = AttestedTLSBinding.spkiSHA256(Certificate.PublicKey(key.publicKey).subjectPublicKeyInfoDER)
            let (evidence, announced) = try evidence(try json(try #require(response.body)), nonce: nonce)
            #expect(announced == spki)
            let verdict = EvidenceCheck.check(
                evidence, nonce: nonce, handshakeSPKISHA256: spki, reference: Self.reference, verifier: verifier)
            #expect(verdict.trusted, "\(verdict.problems)")
        }
    }

    // MARK: Refusals

    @Test func aMissingShortLongOrNonHexNonceIs400AndAsksNoReport() async throws {
        let device = GatedDevice(Self.guest(), gated: false)
        let endpoint = AttestationEndpoint(
            source: EvidenceSource(device: device),
            spki: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
                .subjectPublicKeyInfoDER)
        let good = Hex.encode(Self.randomNonce())
        try await Self.app(endpoint).test(.live) { client in
            for query in [
                "", "?nonce=", "?nonce=\(good.dropLast(2))", "?nonce=\(good)00", "?nonce=\(good.dropLast(2))zz",
                "?nonce=0x\(good.dropLast(2))", "?other=\(good)",
            ] {
                let (status, body, _) = try await attest(client, query)
                #expect(status == .badRequest, "\(query)")
                let message = (body["errors"] as? [String])?.first ?? ""
                #expect(message.contains("64 hex digits (32 bytes"), "\(query): \(message)")
            }
            // A PUT is not a way around it.
            try await client.execute(uri: "/v1/sys/attestation?nonce=\(good)", method: .put) { response in
                #expect(response.status == .methodNotAllowed)
            }
        }
        #expect(device.count == 0, "a refused request costs no Secure Processor request")
    }

    @Test(arguments: [("dev", "dev mode"), ("tls_disable", "tls_disable")])
    func devModeAndPlainHTTPAre501(mode: String, phrase: String) async throws {
        let endpoint: AttestationEndpoint
        if mode == "dev" {
            endpoint = .devMode
        } else {
            // As vhsmd builds it for "tls_disable": true on an SNP seal.
            let device = GatedDevice(Self.guest(), gated: false)
            (endpoint, _) = try VHSMD.attestation(tls: nil, source: EvidenceSource(device: device))
            #expect(device.count == 0)
        }
        try await Self.app(endpoint).test(.live) { client in
            let (status, body, _) = try await attest(client, "?nonce=\(Hex.encode(Self.randomNonce()))")
            #expect(status == .notImplemented)
            let message = (body["errors"] as? [String])?.first ?? ""
            #expect(message.contains(phrase), "\(message)")
        }
    }

    @Test func anEmptyBucketIs429WithRetryAfter() async throws {
        var limits = AttestationLimits()
        limits.rate = 1.0 / 60
        limits.burst = 2
        let device = GatedDevice(Self.guest(), gated: false)
        let endpoint = AttestationEndpoint(
            source: EvidenceSource(device: device),
            spki: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER, limits: limits)
        try await Self.app(endpoint).test(.live) { client in
            for _ in 0..<2 {
                let (status, _, retry) = try await attest(client, "?nonce=\(Hex.encode(Self.randomNonce()))")
                #expect(status == .ok)
                #expect(retry == nil)
            }
            let (status, body, retry) = try await attest(client, "?nonce=\(Hex.encode(Self.randomNonce()))")
            #expect(status == .tooManyRequests)
            let seconds = try #require(retry.flatMap { Int($0) }, "Retry-After is whole seconds")
            #expect(seconds >= 1 && seconds <= 60, "\(seconds)")
            #expect((body["errors"] as? [String])?.first?.contains("too many attestation requests") == true)
        }
        #expect(device.count == 2)
        // The documented defaults.
        let defaults = AttestationLimits()
        #expect(defaults.rate == 10 && defaults.burst == 10 && defaults.queue == 4)
    }

    @Test func hammeringGetsNoMoreReportsThanTheRateAllows() async throws {
        let device = GatedDevice(Self.guest(), gated: false)
        let endpoint = AttestationEndpoint(
            source: EvidenceSource(device: device),
            spki: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER)
        let limits = AttestationLimits()
        try await Self.app(endpoint).test(.live) { client in
            let port = try #require(client.port)
            let start = ContinuousClock.now
            let statuses = try await withThrowingTaskGroup(of: [(Int, String?)].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await TestClient.withClient(host: "127.0.0.1", port: port) { other in
                            var seen: [(Int, String?)] = []
                            for _ in 0..<25 {
                                let response = try await other.get(
                                    "/v1/sys/attestation?nonce=\(Hex.encode(Self.randomNonce()))")
                                seen.append((response.status.code, response.headers[HTTPField.Name("Retry-After")!]))
                            }
                            return seen
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let served = statuses.filter { $0.0 == 200 }.count
            #expect(statuses.count == 200)
            #expect(statuses.allSatisfy { $0.0 == 200 || ($0.0 == 429 && Int($0.1 ?? "") ?? 0 >= 1) })
            // The first wave fills the queue from a full bucket: at least one report at the device and `queue` waiting.
            #expect(served >= limits.queue + 1, "\(served) served")
            #expect(Double(served) <= limits.burst + limits.rate * seconds + 1, "\(served) reports in \(seconds) s")
            #expect(device.count == served, "every report asked for was answered, and no refused one was made")
        }
    }

    @Test(.timeLimit(.minutes(2))) func aSlowReportBlocksNothingElseAndAFullQueueIs429() async throws {
        var limits = AttestationLimits()
        limits.queue = 1
        let device = GatedDevice(Self.guest())
        let endpoint = AttestationEndpoint(
            source: EvidenceSource(device: device),
            spki: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER, limits: limits)
        let app = try Self.app(endpoint)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            @Sendable func attestOnNewConnection() async throws -> HTTPResponse.Status {
                try await TestClient.withClient(host: "127.0.0.1", port: port) { other in
                    try await other.get("/v1/sys/attestation?nonce=\(Hex.encode(Self.randomNonce()))").status
                }
            }
            // One report in flight (held at the device), one waiting for the endpoint's thread.
            let first = Task { try await attestOnNewConnection() }
            #expect(await device.waitUntilEntered(), "the first report reached the device")
            let second = Task { try await attestOnNewConnection() }
            // The waiting one is admitted before the third is asked for.
            var admitted = false
            for _ in 0..<200 where !admitted {
                try await Task.sleep(for: .milliseconds(10))
                admitted = endpoint.pending == 2
            }
            #expect(admitted)
            // The queue is full: refused on the spot, with Retry-After.
            let (status, _, retry) = try await attest(client, "?nonce=\(Hex.encode(Self.randomNonce()))")
            #expect(status == .tooManyRequests)
            #expect(retry == "1")
            // Other requests do not wait for the Secure Processor.
            try await client.execute(uri: "/v1/sys/health", method: .get) { response in
                #expect(response.status == .ok)
            }
            // A request served by a task (PUT sys/init) is not held either: reports never block the task threads.
            try await client.execute(uri: "/v1/sys/init", method: .put, body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .badRequest, "already initialised")
            }
            // Both answered while the report is still held at the device (it is released only below): had either
            // waited for the Secure Processor, it would never have returned (the time limit ends the test). No wall
            // clock bound: parallel tests that make RSA-4096 chips can starve the task pool for tens of seconds.
            #expect(device.count == 1, "still one report at the device")
            device.open(2)
            #expect(try await first.value == .ok)
            #expect(try await second.value == .ok)
            #expect(device.count == 2, "one at a time: the second started after the first")
        }
    }

    @Test func aSourceThatFailsOrDoesNotAnswerIs503NamingIt() async throws {
        var limits = AttestationLimits()
        limits.timeout = .milliseconds(300)
        let stuck = GatedDevice(Self.guest())
        let failing = GatedDevice(Self.guest(), gated: false, failure: "the firmware said no")
        let spki = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey).subjectPublicKeyInfoDER
        try await Self.app(AttestationEndpoint(source: EvidenceSource(device: stuck), spki: spki, limits: limits))
            .test(.live) { client in
                let (status, body, retry) = try await attest(client, "?nonce=\(Hex.encode(Self.randomNonce()))")
                #expect(status == .serviceUnavailable)
                #expect(retry == "1")
                let message = (body["errors"] as? [String])?.first ?? ""
                #expect(
                    message.contains("the test device did not answer") && message.contains("within 300 ms"),
                    "\(message)")
                stuck.open()
            }
        try await Self.app(AttestationEndpoint(source: EvidenceSource(device: failing), spki: spki, limits: limits))
            .test(.live) { client in
                let (status, body, _) = try await attest(client, "?nonce=\(Hex.encode(Self.randomNonce()))")
                #expect(status == .serviceUnavailable)
                let message = (body["errors"] as? [String])?.first ?? ""
                #expect(message.contains("cannot get an attestation report from the test device"), "\(message)")
                #expect(message.contains("the firmware said no"), "\(message)")
            }
    }

    // MARK: The certificate

    @Test func aRestartWithAnotherMeasurementReissuesTheCertificateForTheSameKey() throws {
        let first = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", evidence: Self.evidence(from: Self.guest()))
        #expect(first.origin == .generated)
        let evidence = try #require(try AttestationEvidence(certificate: first.leaf))
        #expect(try AttestationReport(bytes: evidence.report).measurement == Self.measurementA)
        // The same launch again: kept.
        let again = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", evidence: Self.evidence(from: Self.guest()))
        #expect(again.origin == .kept && again.fingerprint == first.fingerprint && again.notices.isEmpty)
        // Another measurement: a new certificate, the same key, a notice with both fingerprints and the change.
        let moved = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", evidence: Self.evidence(from: Self.guest(Self.measurementB)))
        #expect(moved.origin == .reissued)
        #expect(moved.fingerprint != first.fingerprint)
        #expect(moved.leaf.publicKey == first.leaf.publicKey)
        let notice = try #require(moved.notices.first)
        #expect(notice.contains(first.fingerprint) && notice.contains(moved.fingerprint))
        #expect(
            notice.contains(
                "MEASUREMENT changed from \(Hex.encode(Self.measurementA)) to \(Hex.encode(Self.measurementB))"),
            "\(notice)")
        let carried = try #require(try AttestationEvidence(certificate: moved.leaf))
        let verdict = EvidenceCheck.check(
            carried, nonce: AttestedTLSBinding.certificateNonce,
            handshakeSPKISHA256: AttestedTLSBinding.spkiSHA256(moved.subjectPublicKeyInfo),
            reference: ReferenceValues(measurements: [Self.measurementB]), verifier: verifier)
        #expect(verdict.trusted, "\(verdict.problems)")
        // Another chip: reissued again, saying so.
        let chipMoved = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1",
            evidence: Self.evidence(from: Self.guest(Self.measurementB, chip: Self.otherChip)))
        #expect(chipMoved.origin == .reissued && chipMoved.leaf.publicKey == first.leaf.publicKey)
        #expect(chipMoved.notices.first?.contains("CHIP_ID changed") == true)
    }

    @Test func aKeptCertificateWithoutEvidenceIsReissuedForTheSameKey() throws {
        let plain = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        #expect(try AttestationEvidence(certificate: plain.leaf) == nil)
        let attested = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", evidence: Self.evidence(from: Self.guest()))
        #expect(attested.origin == .reissued && attested.leaf.publicKey == plain.leaf.publicKey)
        #expect(attested.notices.first?.contains("it carries no attestation evidence") == true)
        #expect(try AttestationEvidence(certificate: attested.leaf) != nil)
        // A renewal near expiry still makes a new key, and the new certificate carries evidence for it.
        let renewed = try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1", now: Date() + TLSIdentity.lifetime,
            evidence: Self.evidence(from: Self.guest()))
        #expect(renewed.origin == .renewed && renewed.leaf.publicKey != plain.leaf.publicKey)
        let carried = try #require(try AttestationEvidence(certificate: renewed.leaf))
        let report = try AttestationReport(bytes: carried.report)
        #expect(
            report.reportData
                == AttestedTLSBinding.reportData(
                    nonce: AttestedTLSBinding.certificateNonce,
                    spkiSHA256: AttestedTLSBinding.spkiSHA256(renewed.subjectPublicKeyInfo)))
    }

    // MARK: attestation_certificates

    @Test func configuredCertificatesAreServedWhenTheHostGivesNoneAndCheckedAtStart() throws {
        let table = try Self.guest().certificateTable()
        let chain = [table[.vcek]!, table[.ask]!, table[.ark]!]
        let pem = try chain.map { try AMDCertificate(derEncoded: $0).pemRepresentation }.joined()
        let file = directory.path + "/amd.pem"
        try pem.write(toFile: file, atomically: true, encoding: .utf8)
        let certificates = try EvidenceSource.certificates(file: file)
        #expect(certificates == chain)
        // Read from the config file.
        let config = directory.path + "/vhsmd.json"
        try
            #"{"listener": {}, "storage": {"path": "\#(directory.path)"}, "seal": "sev-guest", "attestation_certificates": "\#(file)"}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try ServerConfig.load(config).attestationCertificates == chain)
        // Out of order, or not PEM: refused at start with a sentence.
        let reversed = directory.path + "/reversed.pem"
        try chain.reversed().map { try AMDCertificate(derEncoded: $0).pemRepresentation }.joined()
            .write(toFile: reversed, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try EvidenceSource.certificates(file: reversed) }
        do {
            _ = try EvidenceSource.certificates(file: reversed)
        } catch { #expect(error.description.contains("VCEK or VLEK first")) }
        try "not a certificate".write(toFile: reversed, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try EvidenceSource.certificates(file: reversed) }

        // A host without a table: the configured certificates are served, and they endorse the report.
        let identity = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        let source = EvidenceSource(device: TablelessDevice(inner: Self.guest()), configuredCertificates: certificates)
        let (_, notices) = try VHSMD.attestation(tls: identity, source: source)
        #expect(notices.isEmpty)
        let nonce = Self.randomNonce()
        let spki = AttestedTLSBinding.spkiSHA256(identity.subjectPublicKeyInfo)
        let evidence = try source.evidence(nonce: nonce, spkiSHA256: spki)
        #expect(evidence.certificates == chain)
        #expect(
            EvidenceCheck.check(
                evidence, nonce: nonce, handshakeSPKISHA256: spki, reference: Self.reference, verifier: verifier
            ).trusted)
        // Another chip's VCEK does not endorse this launch: refused at start.
        let foreign = try Self.guest(chip: Self.otherChip).certificateTable()
        let wrong = EvidenceSource(
            device: TablelessDevice(inner: Self.guest()),
            configuredCertificates: [foreign[.vcek]!, foreign[.ask]!, foreign[.ark]!])
        #expect(throws: ConfigError.self) { try VHSMD.attestation(tls: identity, source: wrong) }
        // Neither a table nor a file: served without certificates, and said so at start.
        let bare = EvidenceSource(device: TablelessDevice(inner: Self.guest()))
        let (_, bareNotices) = try VHSMD.attestation(tls: identity, source: bare)
        #expect(bareNotices.first?.contains("clients must fetch the VCEK themselves") == true)
        // A host that supplies a table: its certificates are served, and the unused file is mentioned.
        let both = EvidenceSource(device: Self.guest(), configuredCertificates: certificates)
        let (_, bothNotices) = try VHSMD.attestation(tls: identity, source: both)
        #expect(bothNotices.first?.contains("the host supplies certificates with reports") == true)
    }
}

/// The vhsmd process wires the endpoint as the mode says: dev mode answers 501 with its reason.
@Suite struct AttestationProcessTests {
    let directory = TemporaryDirectory()

    @Test func devModeVHSMDAnswers501() async throws {
        let vhsmd = try VHSMDProcess(["--dev", "--dev-listen-address", "127.0.0.1:0"], directory: directory.path)
        let url = try await vhsmd.readyURL()
        let nonce = String(repeating: "ab", count: 32)
        #expect(try httpStatus(url + "/v1/sys/attestation?nonce=\(nonce)") == "501")
        let body = try runProgram(
            "/usr/bin/curl", ["-s", "--max-time", "10", url + "/v1/sys/attestation?nonce=\(nonce)"])
        #expect(body.output.contains("vhsmd runs in dev mode"), "\(body.output)")
        #expect(vhsmd.stop() == 0)
    }
}

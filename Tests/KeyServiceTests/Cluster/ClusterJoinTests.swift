import AttestedTLS
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SNP
import SNPEmulator
import Sealing
import Synchronization
import Testing

@testable import KeyService

/// The attested join (issue 17 item 4): a sponsor node hands the cluster root key, HPKE-sealed, to a joiner whose
/// fresh report binds the sponsor's nonce and the joiner's ephemeral key and meets the join policy; every other
/// attempt is refused with its reason, hands nothing out, and is audited.
@Suite struct ClusterJoinTests {
    // The chips and launches of the login tests: a join is a login's evidence with another binding.
    static var chip: ChipState { SevSNPAuthTests.chip }
    static var otherChip: ChipState { SevSNPAuthTests.otherChip }
    static var measurement: [UInt8] { SevSNPAuthTests.measurement }
    static var otherMeasurement: [UInt8] { SevSNPAuthTests.otherMeasurement }

    static func guest(
        _ chip: ChipState = chip, measurement: [UInt8] = measurement, policy: UInt64 = 0x30000,
        idKeyDigest: [UInt8]? = nil
    ) -> EmulatedGuest {
        SevSNPAuthTests.guest(
            chip, measurement: measurement, policy: policy,
            identity: idKeyDigest.map {
                LaunchIdentity(
                    familyID: Array(repeating: 1, count: 16), imageID: Array(repeating: 2, count: 16), guestSVN: 1,
                    idKeyDigest: $0, authorKeyDigest: nil)
            })
    }

    let store = FencedMemory()
    let lease = FakeLease()
    let sponsorRuntime: Runtime
    let sponsorSeal: ClusterSeal
    let directory = TemporaryDirectory()
    var auditPath: String { directory.path + "/audit.log" }

    init() throws {
        sponsorSeal = ClusterSeal(
            seal: FixedSeal(key: SymmetricKey(size: .bits256)),
            members: ClusterMembers(
                backend: store, nodeID: "node1", cluster: "c", tags: .init(chipID: "00", measurement: "00")))
        sponsorRuntime = try Runtime(
            barrier: Barrier(backend: store), seal: sponsorSeal, storageType: "postgresql", clustered: true,
            clusterName: "c")
        sponsorRuntime.attach(lease)
    }

    /// The sponsor's served core: its launch is `guest()`'s, the emulator chip's ARK is a cluster_trusted_root.
    func makeApp(
        tls: TLSIdentity? = nil, nonces: LoginNonces = LoginNonces(), launch device: EmulatedGuest = guest()
    ) throws -> some ApplicationProtocol {
        let launch = try device.attestationReport(ReportRequest())
        let sponsor = ClusterJoinSponsor(
            launch: .init(launch), verifier: ClusterJoinSponsor.verifier(trustedRoots: [Self.chip.ark]),
            nonces: nonces)
        var core = VaultCore(
            runtime: sponsorRuntime, audit: AuditBroker(devices: [try AuditDevice(filePath: auditPath)]),
            clusterJoin: sponsor)
        if let tls {
            // As vhsmd serves HTTPS: attested TLS from the sponsor's device, S the served SPKI's SHA-256.
            (core.attestation, _) = try VHSMD.attestation(tls: tls, source: EvidenceSource(device: device))
            core.servedSPKISHA256 = VHSMD.servedSPKISHA256(tls)
        }
        return try buildApplication(
            core: core, host: "127.0.0.1", port: 0, logger: Logger(label: "test"), tls: tls?.configuration,
            limits: ServerTests.patientLimits)
    }

    /// The sponsor's self-signed certificate, carrying its evidence, as vhsmd makes it.
    func sponsorIdentity() throws -> TLSIdentity {
        try TLSIdentity.selfSigned(
            directory: directory.path, host: "127.0.0.1",
            evidence: AttestationEndpointTests.evidence(from: Self.guest()))
    }

    struct Answer {
        let status: Int
        let body: [String: Any]
        var errors: [String] { body["errors"] as? [String] ?? [] }
        var data: [String: Any] { body["data"] as? [String: Any] ?? [:] }
    }

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String? = nil,
        _ body: [String: Any] = [:]
    ) async throws -> Answer {
        var headers: HTTPFields = [:]
        if let token { headers[HTTPField.Name("X-Vault-Token")!] = token }
        let bytes = try JSONSerialization.data(withJSONObject: body)
        return try await client.execute(
            uri: "/v1/" + path, method: method, headers: headers, body: ByteBuffer(bytes: bytes)
        ) { response in
            let parsed =
                response.body.readableBytes == 0
                ? [:]
                : (try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                    ?? [:])
            return Answer(status: Int(response.status.code), body: parsed)
        }
    }

    /// Makes the sponsor active and initialises the cluster; returns the root token.
    func initialise(_ client: some TestClientProtocol) async throws -> String {
        store.active.store(true, ordering: .relaxed)
        lease.activate()
        try sponsorRuntime.becameActive()
        let answer = try await Self.call(client, .put, "sys/init")
        #expect(answer.status == 200, "\(answer.errors)")
        return try #require(answer.body["root_token"] as? String)
    }

    static func nonce(_ client: some TestClientProtocol) async throws -> [UInt8] {
        let answer = try await call(client, .post, ClusterJoinSponsor.noncePath)
        #expect(answer.status == 200, "\(answer.errors)")
        #expect(answer.data["expires_at"] is String)
        return try Hex.decode(try #require(answer.data["nonce"] as? String), count: 32)
    }

    /// A join body: `guest`'s report binding `nonce` and `boundKey`'s SPKI (S: zeros, plain HTTP); `sentKey` is the
    /// public_key sent (the bound one unless given).
    static func joinBody(
        _ guest: EmulatedGuest, nonce: [UInt8], boundKey: HPKEPublicKey, sentKey: HPKEPublicKey? = nil
    ) throws -> [String: Any] {
        let data = try #require(
            ClusterJoinBinding.reportData(
                nonce: nonce, publicKeySHA256: boundKey.fingerprint, audienceSPKISHA256: AttestedLoginBinding.absent))
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: data))
        let report = try response.checked()
        let certificates = AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey)
        return [
            "node_id": "node2", "nonce": Hex.encode(nonce), "report": Data(report.bytes).base64EncodedString(),
            "certificates": certificates.map { Data($0).base64EncodedString() },
            "public_key": (sentKey ?? boundKey).pemRepresentation,
        ]
    }

    /// The joiner's transport: the sponsor's test client (plain HTTP, S = zeros).
    struct ClientTransport: ClusterJoinTransport {
        let client: any TestClientProtocol
        var place: String { "test sponsor" }
        var audienceSPKISHA256: [UInt8] { AttestedLoginBinding.absent }

        func post(_ path: String, body: [UInt8]) async throws -> (status: Int, body: [UInt8]) {
            try await client.execute(
                uri: "/v1/" + path, method: .post, headers: [:], body: ByteBuffer(bytes: body)
            ) { response in (Int(response.status.code), Array(response.body.readableBytesView)) }
        }
    }

    func joinerSeal(_ key: SymmetricKey) -> ClusterSeal {
        ClusterSeal(
            seal: FixedSeal(key: key),
            members: ClusterMembers(
                backend: store, nodeID: "node2", cluster: "c", tags: .init(chipID: "01", measurement: "5a")))
    }

    /// Asserts a refusal: its status, a message naming `reason`, no sealed_root_key, and the attempt in the audit
    /// log with that reason.
    func expectRefused(_ answer: Answer, _ reason: String, status: Int = 403) throws {
        #expect(answer.status == status, "\(answer.errors)")
        #expect(answer.errors.contains { $0.hasPrefix("join refused") && $0.contains(reason) }, "\(answer.errors)")
        #expect(answer.data["sealed_root_key"] == nil && answer.body["sealed_root_key"] == nil)
        let log = try String(contentsOfFile: auditPath, encoding: .utf8)
        let lines = log.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let responses = lines.filter {
            ($0["type"] as? String) == "response"
                && (($0["request"] as? [String: Any])?["path"] as? String) == ClusterJoinSponsor.joinPath
        }
        #expect(
            responses.contains { ($0["error"] as? String)?.contains(reason) == true },
            "the audit log records the refused attempt with its reason")
    }

    // MARK: - Tests

    @Test func aJoinerWithTheSponsorsMeasurementEnrollsAndUnseals() async throws {
        let joinerKey = SymmetricKey(size: .bits256)
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            // The sponsor answers as a standby too (it reads, writes nothing).
            store.active.store(false, ordering: .relaxed)
            lease.set(
                HAView(
                    isActive: false,
                    leader: LeaderAdvertisement(nodeID: "node9", apiAddress: "http://10.0.0.9:8200", activeTime: "t"),
                    activeSince: nil))
            sponsorRuntime.becameStandby(reason: "test")
            let seal = joinerSeal(joinerKey)
            #expect(try seal.members.entry() == nil)
            try await ClusterJoiner(nodeID: "node2", evidence: EvidenceSource(device: Self.guest())).join(
                via: ClientTransport(client: client), seal: seal, barrier: Barrier(backend: store))
            // Its own entry opens with its own key and holds the sponsor's root key.
            #expect(try seal.rootKey() == sponsorSeal.rootKey())
            #expect(try seal.members.entry()?.nodeID == "node2")
            // A fresh start of the joiner unseals by itself and comes up as a standby.
            let joiner = try Runtime(
                barrier: Barrier(backend: store), seal: joinerSeal(joinerKey), storageType: "postgresql",
                clustered: true, clusterName: "c")
            #expect(joiner.state.initialized && !joiner.state.sealed)
            #expect(joiner.pendingRecovery == nil)
            let log = try String(contentsOfFile: auditPath, encoding: .utf8)
            #expect(log.contains(ClusterJoinSponsor.joinPath), "the accepted join is audited")
            let rootBytes = try sponsorSeal.rootKey().withUnsafeBytes { Data($0).base64EncodedString() }
            #expect(!log.contains(rootBytes), "the root key never reaches the audit log")
        }
    }

    @Test func aJoinOverAttestedTLSBindsTheSponsorsCertificate() async throws {
        let identity = try sponsorIdentity()
        let joinerKey = SymmetricKey(size: .bits256)
        // The test client speaks plain HTTP: the sponsor is initialised directly, and the joiner's own HTTPS
        // transport carries every request.
        store.active.store(true, ordering: .relaxed)
        lease.activate()
        try sponsorRuntime.becameActive()
        _ = try sponsorRuntime.initialize()
        try await makeApp(tls: identity).test(.live) { client in
            let port = try #require(client.port)
            let verifier = ClusterJoinSponsor.verifier(trustedRoots: [Self.chip.ark])
            // A joiner of another measurement does not trust this sponsor: nothing is sent.
            let distrust = await #expect(throws: ClusterJoinError.self) {
                _ = try await ClusterJoinHTTP.connect(
                    url: "https://127.0.0.1:\(port)", measurement: Self.otherMeasurement, verifier: verifier)
            }
            #expect("\(distrust!)".contains("not trusted by attested TLS"), "\(distrust!)")
            let transport = try await ClusterJoinHTTP.connect(
                url: "https://127.0.0.1:\(port)", measurement: Self.measurement, verifier: verifier)
            #expect(transport.audienceSPKISHA256 == VHSMD.servedSPKISHA256(identity))
            let seal = joinerSeal(joinerKey)
            try await ClusterJoiner(nodeID: "node2", evidence: EvidenceSource(device: Self.guest())).join(
                via: transport, seal: seal, barrier: Barrier(backend: store))
            #expect(try seal.rootKey() == sponsorSeal.rootKey())
            // A report bound to plain HTTP (S = zeros) is not for this HTTPS sponsor.
            let (_, nonceBytes) = try await transport.post(ClusterJoinSponsor.noncePath, body: Array("{}".utf8))
            let nonceAnswer = try #require(try JSONSerialization.jsonObject(with: Data(nonceBytes)) as? [String: Any])
            let nonceText = try #require((nonceAnswer["data"] as? [String: Any])?["nonce"] as? String)
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            let body = try Self.joinBody(Self.guest(), nonce: try Hex.decode(nonceText, count: 32), boundKey: key)
            let (status, answer) = try await transport.post(
                ClusterJoinSponsor.joinPath, body: Array(try JSONSerialization.data(withJSONObject: body)))
            try expectRefused(
                Answer(
                    status: status,
                    body: try #require(try JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any])),
                "binds another key or nonce")
        }
    }

    @Test func aJoinOverPlainHTTPThroughTheRealTransport() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let port = try #require(client.port)
            let transport = try await ClusterJoinHTTP.connect(
                url: "http://127.0.0.1:\(port)/", measurement: Self.measurement,
                verifier: ClusterJoinSponsor.verifier(trustedRoots: [Self.chip.ark]))
            #expect(transport.audienceSPKISHA256 == AttestedLoginBinding.absent)
            let seal = joinerSeal(SymmetricKey(size: .bits256))
            try await ClusterJoiner(nodeID: "node2", evidence: EvidenceSource(device: Self.guest())).join(
                via: transport, seal: seal, barrier: Barrier(backend: store))
            #expect(try seal.rootKey() == sponsorSeal.rootKey())
            // A joiner of another measurement is refused by the sponsor, named in the joiner's error.
            let refused = await #expect(throws: ClusterJoinError.self) {
                try await ClusterJoiner(
                    nodeID: "node3", evidence: EvidenceSource(device: Self.guest(measurement: Self.otherMeasurement))
                ).join(via: transport, seal: joinerSeal(SymmetricKey(size: .bits256)), barrier: Barrier(backend: store))
            }
            #expect("\(refused!)".contains("does not admit this launch"), "\(refused!)")
            #expect("\(refused!)".contains("http://127.0.0.1:\(port)"), "the error names the sponsor")
        }
    }

    @Test func aSponsorThatReturnsAnotherKeyIsRefusedAndNothingIsWritten() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let seal = joinerSeal(SymmetricKey(size: .bits256))
            // The sponsor's answer with the cluster root key replaced by another, sealed to the same key: the
            // transport cannot know the ephemeral key, so the forgery is a well-formed answer for an unknown key.
            let error = await #expect(throws: ClusterJoinError.self) {
                try await ClusterJoiner(nodeID: "node2", evidence: EvidenceSource(device: Self.guest())).join(
                    via: WrongKeyTransport(inner: ClientTransport(client: client)), seal: seal,
                    barrier: Barrier(backend: store))
            }
            #expect("\(error!)".contains("does not open the cluster's keyring"), "\(error!)")
            #expect(try seal.members.entry() == nil)
        }
    }

    /// A sponsor that lies: it seals a random key to the public_key of the join request it forwards.
    struct WrongKeyTransport: ClusterJoinTransport {
        let inner: ClientTransport
        var place: String { "lying sponsor" }
        var audienceSPKISHA256: [UInt8] { AttestedLoginBinding.absent }

        func post(_ path: String, body: [UInt8]) async throws -> (status: Int, body: [UInt8]) {
            guard path == ClusterJoinSponsor.joinPath else { return try await inner.post(path, body: body) }
            let request = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            let pem = try #require(request["public_key"] as? String)
            let key = try #require(HPKEPublicKey(pem: pem))
            let nonce = try Hex.decode(try #require(request["nonce"] as? String), count: 32)
            let random = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            let sealed = try SealedClusterRootKey.seal(random, to: key, nonce: nonce)
            let answer: [String: Any] = [
                "data": [
                    "cluster": "c", "generation": 1, "suite": key.suite.rawValue, "sealed_root_key": sealed,
                    "info": SealedClusterRootKey.info,
                ]
            ]
            return (200, Array(try JSONSerialization.data(withJSONObject: answer)))
        }
    }

    @Test func anotherMeasurementIsRefusedByTheDefaultPolicy() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            let body = try Self.joinBody(
                Self.guest(measurement: Self.otherMeasurement), nonce: try await Self.nonce(client), boundKey: key)
            let answer = try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body)
            try expectRefused(answer, "does not admit this launch")
            #expect(answer.errors.first?.contains("MEASUREMENT") == true)
        }
    }

    @Test func aReplayedJoinRequestIsRefused() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let key = HPKEPrivateKey(generating: .p384)
            let nonce = try await Self.nonce(client)
            let body = try Self.joinBody(Self.guest(), nonce: nonce, boundKey: key.publicKey)
            let first = try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body)
            #expect(first.status == 200, "\(first.errors)")
            // The first answer opens only with the joiner's key and nonce, and holds the cluster root key.
            let sealed = try #require(first.data["sealed_root_key"] as? String)
            #expect(first.data["cluster"] as? String == "c" && first.data["generation"] as? Int == 1)
            let opened = try SealedClusterRootKey.open(
                sealed, suite: try #require(first.data["suite"] as? String), info: SealedClusterRootKey.info,
                with: key, nonce: nonce)
            #expect(SymmetricKey(data: opened) == (try sponsorSeal.rootKey()))
            let second = try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body)
            try expectRefused(second, "replayed join request")
        }
    }

    @Test func aReportBindingAnotherEphemeralKeyIsRefused() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let bound = HPKEPrivateKey(generating: .x25519).publicKey
            let sent = HPKEPrivateKey(generating: .x25519).publicKey
            let body = try Self.joinBody(
                Self.guest(), nonce: try await Self.nonce(client), boundKey: bound, sentKey: sent)
            try expectRefused(
                try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body), "binds another key or nonce")
        }
    }

    @Test func anUnknownNonceIsRefused() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            let invented = (0..<32).map { _ in UInt8.random(in: 0...255) }
            let body = try Self.joinBody(Self.guest(), nonce: invented, boundKey: key)
            try expectRefused(try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body), "nonce is unknown")
        }
    }

    @Test func aReportFromAnUntrustedRootIsRefused() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            // Another emulated chip: its ARK is neither AMD's nor a cluster_trusted_root.
            let body = try Self.joinBody(
                Self.guest(Self.otherChip), nonce: try await Self.nonce(client), boundKey: key)
            try expectRefused(
                try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body), "untrusted root")
        }
    }

    @Test func theJoinPolicyIsSudoAndAdmitsWhatItNames() async throws {
        try await makeApp().test(.live) { client in
            let root = try await initialise(client)
            let policy = ClusterJoinSponsor.policyPath
            let defaults = try await Self.call(client, .get, policy, token: root)
            #expect(defaults.status == 200 && defaults.data["default"] as? Bool == true)
            #expect(defaults.data["bound_measurements"] as? [String] == [Hex.encode(Self.measurement)])
            // A policy naming no identity, or a token setting, is refused.
            #expect(
                try await Self.call(client, .put, policy, token: root, ["min_tcb": "0000000000000000"]).status == 400)
            #expect(try await Self.call(client, .put, policy, token: root, ["token_ttl": "1h"]).status == 400)
            #expect(try await Self.call(client, .put, policy, token: nil, ["bound_measurements": []]).status == 403)
            let written = try await Self.call(
                client, .put, policy, token: root, ["bound_measurements": [Hex.encode(Self.otherMeasurement)]])
            #expect(written.status == 204, "\(written.errors)")
            // Now the other measurement joins, and the sponsor's own is refused by the stored policy.
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            let other = try Self.joinBody(
                Self.guest(measurement: Self.otherMeasurement), nonce: try await Self.nonce(client), boundKey: key)
            let admitted = try await Self.call(client, .post, ClusterJoinSponsor.joinPath, other)
            #expect(admitted.status == 200, "\(admitted.errors)")
            let same = try Self.joinBody(Self.guest(), nonce: try await Self.nonce(client), boundKey: key)
            try expectRefused(
                try await Self.call(client, .post, ClusterJoinSponsor.joinPath, same), "the cluster's join policy")
            #expect(try await Self.call(client, .delete, policy, token: root).status == 204)
            #expect(try await Self.call(client, .get, policy, token: root).data["default"] as? Bool == true)
        }
    }

    @Test func aDebugOrMigratableJoinerIsRefusedWhateverItsMeasurement() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            for (bit, name) in [(UInt64(1) << 19, "DEBUG"), (UInt64(1) << 18, "MIGRATE_MA")] {
                let body = try Self.joinBody(
                    Self.guest(policy: 0x30000 | bit), nonce: try await Self.nonce(client), boundKey: key)
                try expectRefused(
                    try await Self.call(client, .post, ClusterJoinSponsor.joinPath, body), "policy allows \(name)")
            }
        }
    }

    @Test func noncesAreBoundedAndAMalformedJoinIs400() async throws {
        try await makeApp(nonces: LoginNonces(capacity: 2)).test(.live) { client in
            _ = try await initialise(client)
            _ = try await Self.nonce(client)
            _ = try await Self.nonce(client)
            let full = try await client.execute(
                uri: "/v1/" + ClusterJoinSponsor.noncePath, method: .post, body: ByteBuffer(string: "{}")
            ) { ($0.status.code, $0.headers[.retryAfter]) }
            #expect(full.0 == 429 && full.1 != nil, "past the bound: 429 with Retry-After")
            let malformed = try await Self.call(
                client, .post, ClusterJoinSponsor.joinPath,
                ["node_id": "node2", "nonce": "zz", "report": "***", "certificates": 3, "public_key": "no"])
            try expectRefused(malformed, "malformed request", status: 400)
            #expect(malformed.errors.count >= 4, "\(malformed.errors)")
            // A GET is not a join.
            #expect(try await Self.call(client, .get, ClusterJoinSponsor.joinPath).status == 405)
        }
    }

    @Test func theConfigurationTakesJoinAndClusterTrustedRootsForAClusterOnly() throws {
        let directory = TemporaryDirectory()
        let roots = directory.path + "/roots.pem"
        try Self.chip.ark.pemRepresentation.write(toFile: roots, atomically: true, encoding: .utf8)
        let notRoot = directory.path + "/ask.pem"
        try Self.chip.ask.pemRepresentation.write(toFile: notRoot, atomically: true, encoding: .utf8)
        func load(_ extra: String, tls: String = #""tls_disable": true"#, cluster: Bool = true) throws -> ServerConfig {
            let path = directory.path + "/config.json"
            let storage =
                cluster
                ? #"{"path": "/tmp/x", "postgresql": {"connection_url": "postgres://vhsm@127.0.0.1:5432/vhsm"}}"#
                : #"{"path": "/tmp/x"}"#
            let node = cluster ? #", "node_id": "n2", "api_addr": "http://10.0.0.2:8200""# : ""
            try #"{"listener": {\#(tls)}, "storage": \#(storage), "seal": "sev-guest"\#(node)\#(extra)}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            return try ServerConfig.load(path)
        }
        let plain = try load(#", "join": "http://10.0.0.1:8200", "cluster_trusted_roots": "\#(roots)""#)
        #expect(plain.join == "http://10.0.0.1:8200")
        #expect(plain.clusterTrustedRoots.map(\.derRepresentation) == [Self.chip.ark.derRepresentation])
        #expect(try load(#", "join": "https://10.0.0.1:8200""#, tls: "").join == "https://10.0.0.1:8200")
        #expect(try load("").join == nil)
        // Plain HTTP to the sponsor while this node serves HTTPS; not a URL; roots that are not ARKs; no cluster.
        #expect(throws: ConfigError.self) { try load(#", "join": "http://10.0.0.1:8200""#, tls: "") }
        #expect(throws: ConfigError.self) { try load(#", "join": "10.0.0.1:8200""#) }
        #expect(throws: ConfigError.self) { try load(#", "cluster_trusted_roots": "\#(notRoot)""#) }
        #expect(throws: ConfigError.self) { try load(#", "cluster_trusted_roots": "/nonexistent""#) }
        #expect(throws: ConfigError.self) { try load(#", "join": "https://10.0.0.1:8200""#, cluster: false) }
    }

    @Test func vhsmdsStartupJoinFailsClosedOrFallsBackToOperatorRecovery() async throws {
        try await makeApp().test(.live) { client in
            _ = try await initialise(client)
            let port = try #require(client.port)
            func settings(operatorKey: Bool) throws -> ServerConfig {
                var object: [String: Any] = [
                    "listener": ["tls_disable": true],
                    "storage": ["path": directory.path, "postgresql": ["connection_url": "postgres://v@127.0.0.1/v"]],
                    "seal": "sev-guest", "node_id": "node2", "cluster_name": "c", "api_addr": "http://10.0.0.2:8200",
                    "join": "http://127.0.0.1:\(port)",
                ]
                if operatorKey {
                    object["operator_key"] = HPKEPrivateKey(generating: .x25519).publicKey.pemRepresentation
                }
                let path = directory.path + "/node2-\(operatorKey).json"
                try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
                return try ServerConfig.load(path)
            }
            let stranger = Self.guest(measurement: Self.otherMeasurement)
            for operatorKey in [false, true] {
                let config = try settings(operatorKey: operatorKey)
                let seal = joinerSeal(SymmetricKey(size: .bits256))
                let join = {
                    try await VHSMD.join(
                        url: try #require(config.join), cluster: try #require(config.cluster), seal: seal,
                        barrier: Barrier(backend: store), launch: try stranger.attestationReport(ReportRequest()),
                        settings: config, evidence: EvidenceSource(device: stranger))
                }
                if operatorKey {
                    // Falls back: no error; the node starts sealed, waiting for vhsm operator recover.
                    try await join()
                } else {
                    let error = await #expect(throws: ConfigError.self) { try await join() }
                    let text = "\(try #require(error))"
                    #expect(text.contains("http://127.0.0.1:\(port)") && text.contains("does not admit"), "\(text)")
                }
                #expect(try seal.members.entry() == nil)
            }
            // The node's own launch joins.
            let config = try settings(operatorKey: false)
            let seal = joinerSeal(SymmetricKey(size: .bits256))
            try await VHSMD.join(
                url: try #require(config.join), cluster: try #require(config.cluster), seal: seal,
                barrier: Barrier(backend: store), launch: try Self.guest().attestationReport(ReportRequest()),
                settings: config, evidence: EvidenceSource(device: Self.guest()))
            #expect(try seal.rootKey() == sponsorSeal.rootKey())
        }
    }

    @Test func aSponsorLaunchedWithAnIDBlockAdmitsItsIDKeyByDefault() async throws {
        let idKey = Array(repeating: UInt8(0x1D), count: 48)
        try await makeApp(launch: Self.guest(idKeyDigest: idKey)).test(.live) { client in
            let root = try await initialise(client)
            let policy = try await Self.call(client, .get, ClusterJoinSponsor.policyPath, token: root)
            #expect(policy.data["bound_id_key_digests"] as? [String] == [Hex.encode(idKey)])
            let key = HPKEPrivateKey(generating: .x25519).publicKey
            // Another image signed with the same ID key (a new measurement) joins.
            let signed = try Self.joinBody(
                Self.guest(measurement: Self.otherMeasurement, idKeyDigest: idKey),
                nonce: try await Self.nonce(client), boundKey: key)
            let admitted = try await Self.call(client, .post, ClusterJoinSponsor.joinPath, signed)
            #expect(admitted.status == 200 && admitted.data["sealed_root_key"] is String, "\(admitted.errors)")
            // The sponsor's own measurement without the ID key does not.
            let unsigned = try Self.joinBody(Self.guest(), nonce: try await Self.nonce(client), boundKey: key)
            try expectRefused(
                try await Self.call(client, .post, ClusterJoinSponsor.joinPath, unsigned), "ID_KEY_DIGEST")
        }
    }
}

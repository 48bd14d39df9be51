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

/// A guest device that counts its MSG_KEY_REQs.
final class CountingDevice: GuestDevice {
    let inner: EmulatedGuest
    let derivations = Mutex(0)
    init(_ inner: EmulatedGuest) { self.inner = inner }
    var name: String { inner.name }
    func report(_ request: ReportRequest) throws -> ReportResponse { inner.report(request) }
    func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable) {
        try inner.extendedReport(request)
    }
    func derivedKey(_ request: DerivedKeyRequest) throws -> DerivedKeyResponse {
        derivations.withLock { $0 += 1 }
        return inner.derivedKey(request)
    }
}

/// Issue 13 item 8, vhsmd's half: the barrier root key is escrowed to the operator key, and a store that a new chip,
/// measurement or TCB cannot open waits sealed until the operator releases the escrowed key to the new launch's
/// attested key (`sys/unseal/operator`); the store is then rekeyed to the new launch and opens there by itself.
@Suite struct BarrierRecoveryTests {
    static let chipA: ChipState = try! ChipState.create(product: .genoa)
    static let chipB: ChipState = try! ChipState.create(product: .genoa)
    static let measurement = Array(repeating: UInt8(0x7C), count: 48)

    let operatorKey = P384.KeyAgreement.PrivateKey()
    let directory = TemporaryDirectory()
    let backend = MemoryBackend()

    func guest(_ chip: ChipState, measurement: [UInt8] = Self.measurement) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: measurement, policy: GuestPolicy(rawValue: 0x20000)))
    }

    /// A config-mode runtime over the suite's store on `guest`, as vhsmd builds it.
    func runtime(_ guest: any GuestDevice, operatorKey: HPKEPublicKey?) throws -> (Runtime, Barrier) {
        let barrier = Barrier(backend: backend)
        let seal = try BarrierSeal.provider(
            device: guest, setting: "emulator:test", mode: .measurement, requirements: SealingRequirements(),
            directory: directory.path, warn: { _ in })
        let recovery = BarrierSeal.recovery(
            device: guest, setting: "emulator:test", mode: .measurement, requirements: SealingRequirements(),
            directory: directory.path)
        let runtime = try Runtime(
            barrier: barrier, seal: seal, storageType: "inmem", operatorKey: operatorKey, recovery: recovery)
        return (runtime, barrier)
    }

    var publicKey: HPKEPublicKey { .p384(operatorKey.publicKey) }

    /// First boot on chip A: initialised, with a value stored through the barrier.
    func initialiseOnChipA(operatorKey: HPKEPublicKey?) throws {
        let (runtime, barrier) = try runtime(guest(Self.chipA), operatorKey: operatorKey)
        _ = try runtime.initialize()
        try barrier.put("logical/secret", Array("kept across chips".utf8))
    }

    func app(_ runtime: Runtime) throws -> some ApplicationProtocol {
        try ServerTests.serve(VaultCore(runtime: runtime))
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    /// What `vhsm operator recover` does with vhsmd's answer: verify the request, open the escrow, grant.
    func grant(
        for answer: [String: Any], secret: [UInt8]? = nil, trusting chip: ChipState = Self.chipB
    ) throws
        -> String
    {
        let request = try RecoveryRequest.parse(armored: try #require(answer["request"] as? String))
        _ = try request.verify(
            verifier: ReportVerifier.amd.trusting(chip.ark), measurement: Self.measurement,
            extraCertificates: [chip.ark])
        let escrow = try SealedSecret.parse(armored: try #require(answer["escrow"] as? String), kind: .barrierKey)
        let rootKey = try secret ?? escrow.open(with: .p384(operatorKey))
        return try request.grant(rootKey).armored
    }

    func put(_ client: some TestClientProtocol, grant: String) async throws -> (HTTPResponse.Status, [String: Any]) {
        let body = try JSONSerialization.data(withJSONObject: ["grant": grant])
        return try await client.execute(
            uri: "/v1/sys/unseal/operator", method: .put, body: ByteBuffer(bytes: body)
        ) { response in (response.status, try json(response.body)) }
    }

    func get(_ client: some TestClientProtocol) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await client.execute(uri: "/v1/sys/unseal/operator", method: .get) { response in
            (response.status, try json(response.body))
        }
    }

    @Test func theRootKeyIsEscrowedToTheOperatorKeyAtInit() throws {
        try initialiseOnChipA(operatorKey: publicKey)
        let (_, barrier) = try runtime(guest(Self.chipA), operatorKey: publicKey)
        let escrow = try #require(try barrier.escrowed())
        #expect(escrow.recipientFingerprint == publicKey.fingerprint)
        #expect(escrow.context == "barrier|\(directory.path)")
        // The escrowed key is the one the seal derives on chip A.
        let seal = try BarrierSeal.provider(
            device: guest(Self.chipA), setting: "emulator:test", mode: .measurement,
            requirements: SealingRequirements(), directory: directory.path, warn: { _ in })
        #expect(SymmetricKey(data: try escrow.open(with: .p384(operatorKey))) == (try seal.rootKey()))
        // Nothing reads or writes the escrow through the barrier.
        #expect(throws: BarrierError.reservedPath(Barrier.escrowPath)) {
            try barrier.put(Barrier.escrowPath, [1])
        }
    }

    @Test func aStoreInitialisedWithoutAnOperatorKeyIsEscrowedAtItsNextStartWithOne() throws {
        try initialiseOnChipA(operatorKey: nil)
        #expect(try Barrier(backend: backend).escrowed() == nil)
        _ = try runtime(guest(Self.chipA), operatorKey: publicKey)
        #expect(try Barrier(backend: backend).escrowed()?.recipientFingerprint == publicKey.fingerprint)
    }

    @Test func anotherChipWaitsSealedAndTheOperatorMovesTheStoreToIt() async throws {
        try initialiseOnChipA(operatorKey: publicKey)
        let (runtime, barrier) = try runtime(guest(Self.chipB), operatorKey: publicKey)
        #expect(runtime.state.initialized && runtime.state.sealed)
        #expect(runtime.pendingRecovery?.cause.contains("does not open") == true)
        try await app(runtime).test(.live) { client in
            try await client.execute(uri: "/v1/sys/health", method: .get) { #expect($0.status == .serviceUnavailable) }
            let (status, answer) = try await get(client)
            #expect(status == .ok)
            #expect(answer["measurement"] as? String == Hex.encode(Self.measurement))
            let (put, reply) = try await put(client, grant: try grant(for: answer))
            #expect(put == .ok)
            #expect(reply["sealed"] as? Bool == false)
            try await client.execute(uri: "/v1/sys/health", method: .get) { #expect($0.status == .ok) }
            // Recovery is over: the endpoint says so instead of serving a request.
            #expect(try await get(client).0 == .badRequest)
        }
        #expect(try barrier.get("logical/secret") == Array("kept across chips".utf8))
        // The pin was rewritten for chip B, and the next start on chip B opens the store by itself.
        let pin = try JSONDecoder().decode(
            BarrierSeal.Pin.self, from: Data(contentsOf: URL(fileURLWithPath: directory.path + "/seal.json")))
        #expect(pin.tcb == Self.chipB.tcbVersion.hex && pin.provider == "emulator:test")
        let (again, reopened) = try self.runtime(guest(Self.chipB), operatorKey: publicKey)
        #expect(!again.state.sealed && again.pendingRecovery == nil)
        #expect(try reopened.get("logical/secret") == Array("kept across chips".utf8))
        // The escrow now holds chip B's root key; chip A no longer opens the store.
        let (onA, _) = try self.runtime(guest(Self.chipA), operatorKey: publicKey)
        #expect(onA.state.sealed && onA.pendingRecovery != nil)
    }

    @Test func aGrantThatIsNotTheEscrowedKeyOrNotForThisRequestIsRefusedAndTheStoreStaysSealed() async throws {
        try initialiseOnChipA(operatorKey: publicKey)
        let device = CountingDevice(guest(Self.chipB))
        let (runtime, _) = try runtime(device, operatorKey: publicKey)
        try await app(runtime).test(.live) { client in
            let (_, answer) = try await get(client)
            // A host that makes up a root key can seal it to the request's key, but it does not open the keyring,
            // and it is refused before this launch's key is derived (no Secure Processor request).
            let derivations = device.derivations.withLock { $0 }
            let (forged, forgedReply) = try await put(
                client, grant: try grant(for: answer, secret: Array(repeating: 0x42, count: 32)))
            #expect(forged == .badRequest)
            #expect((forgedReply["errors"] as? [String])?.first?.contains("does not open this data directory") == true)
            #expect(device.derivations.withLock { $0 } == derivations)
            // A grant sealed to another request's key (another process, or a host's own) does not open here.
            let other = RecoveryRequest(
                purpose: .barrier, subject: directory.path,
                publicKey: Curve25519.KeyAgreement.PrivateKey().publicKey,
                report: try RecoveryRequest.parse(armored: answer["request"] as! String).report, certificates: [])
            let escrow = try SealedSecret.parse(armored: answer["escrow"] as! String, kind: .barrierKey)
            let misdirected = try other.grant(try escrow.open(with: .p384(operatorKey))).armored
            #expect(try await put(client, grant: misdirected).0 == .badRequest)
            #expect(try await put(client, grant: "not a grant").0 == .badRequest)
            try await client.execute(uri: "/v1/sys/health", method: .get) { #expect($0.status == .serviceUnavailable) }
        }
        #expect(runtime.state.sealed && runtime.pendingRecovery != nil)
    }

    @Test func theRequestIsBoundToItsKeyAndTheLaunch() async throws {
        try initialiseOnChipA(operatorKey: publicKey)
        let (runtime, _) = try runtime(guest(Self.chipB), operatorKey: publicKey)
        let request = try #require(runtime.pendingRecovery?.request)
        #expect(
            request.report.reportData
                == RecoveryRequest.reportData(purpose: .barrier, subject: directory.path, publicKey: request.publicKey))
        // The operator's checks: another MEASUREMENT, or a chain the operator does not trust, release nothing.
        #expect(throws: SealingError.self) {
            try request.verify(
                verifier: ReportVerifier.amd.trusting(Self.chipB.ark),
                measurement: Array(repeating: 0, count: 48), extraCertificates: [Self.chipB.ark])
        }
        #expect(throws: SealingError.self) {
            try request.verify(verifier: ReportVerifier.amd, measurement: Self.measurement)
        }
        // A request whose key was swapped by the host no longer matches its REPORT_DATA.
        var swapped = request
        swapped.publicKey = Curve25519.KeyAgreement.PrivateKey().publicKey
        #expect(throws: SealingError.self) {
            try swapped.verify(
                verifier: ReportVerifier.amd.trusting(Self.chipB.ark), measurement: Self.measurement,
                extraCertificates: [Self.chipB.ark])
        }
        // The armored form round-trips.
        let parsed = try RecoveryRequest.parse(armored: "console noise\r\n" + request.armored + "more noise")
        #expect(parsed.report.bytes == request.report.bytes && parsed.certificates == request.certificates)
    }

    @Test func withoutAnEscrowAStoreThatDoesNotOpenStillRefusesToStart() throws {
        try initialiseOnChipA(operatorKey: nil)
        // No operator key: as before, the start fails.
        #expect(throws: BarrierError.wrongRootKey) { _ = try runtime(guest(Self.chipB), operatorKey: nil) }
        // An operator key now, but the store has no escrow (it never started on chip A with one).
        let error = #expect(throws: Runtime.RecoveryUnavailable.self) {
            _ = try runtime(guest(Self.chipB), operatorKey: publicKey)
        }
        #expect(error?.description.contains("no escrowed root key") == true)
    }

    @Test func theEndpointIsRefusedWhenNothingWaitsForRecovery() async throws {
        try initialiseOnChipA(operatorKey: publicKey)
        let (runtime, _) = try runtime(guest(Self.chipA), operatorKey: publicKey)
        try await app(runtime).test(.live) { client in
            let (status, answer) = try await get(client)
            #expect(status == .badRequest)
            #expect((answer["errors"] as? [String])?.first?.contains("not waiting for operator recovery") == true)
            try await client.execute(uri: "/v1/sys/unseal/operator", method: .delete) {
                #expect($0.status == .methodNotAllowed || $0.status == .badRequest || $0.status == .notFound)
            }
        }
    }
}

import Foundation
import SNP
import Testing

@testable import SNPEmulator

@Suite struct WireProtocolTests {
    /// Starts a server for `guest` on a fresh socket and returns its path.
    func serve(_ guest: EmulatedGuest) async throws -> String {
        let path = NSTemporaryDirectory() + "vhsm-\(UUID().uuidString.prefix(8)).sock"
        let server = EmulatorServer(guest: guest, socketPath: path)
        Thread.detachNewThread { try? server.run() }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: path) {
            try await Task.sleep(for: .milliseconds(10))
        }
        return path
    }

    @Test func theClientGetsReportsKeysAndCertificatesOverTheSocket() async throws {
        let guest = TestChips.guest(TestChips.milan, LaunchContext(measurement: TestChips.measurementA))
        let client = EmulatorClient(path: try await serve(guest))
        let data = Array(repeating: UInt8(0x33), count: 64)

        let report = try client.attestationReport(try ReportRequest(reportData: data))
        #expect(report.reportData == data)
        #expect(report.measurement == TestChips.measurementA)

        // The table (VCEK + ASK + ARK) is larger than one page: this exercises the INVALID_LEN round trip.
        let (response, table) = try client.extendedReport(try ReportRequest(reportData: data))
        #expect(table.bytes.count > 4096)
        let vcek = try AMDCertificate(derEncoded: table[.vcek]!)
        let ask = try AMDCertificate(derEncoded: table[.ask]!)
        _ = try ReportVerifier(roots: [TestChips.milan.ark]).verify(
            try response.checked(), endorsement: vcek, candidates: [ask], at: Date())

        let request = DerivedKeyRequest(root: .vcek, guestFieldSelect: .measurement)
        #expect(try client.derivedKeyBytes(request) == guest.derivedKeyBytes(request))
        #expect(throws: FirmwareError(status: .invalidKey, request: "MSG_KEY_REQ")) {
            try client.derivedKeyBytes(DerivedKeyRequest(root: .vlek))
        }
    }

    @Test func aMissingSocketSaysTheEmulatorIsNotRunning() {
        let client = EmulatorClient(path: "/nonexistent/snp.sock")
        do {
            _ = try client.report(ReportRequest())
            Issue.record("a missing socket answered")
        } catch {
            #expect("\(error)".contains("vhsm emulator serve"))
        }
    }

    @Test func framesRoundTripAndBadHeadersAreRefused() throws {
        let frame = WireProtocol.Frame(type: .report, payload: [1, 2, 3])
        let (type, length) = try WireProtocol.Frame.header(Array(frame.bytes.prefix(12)))
        #expect(type == .report && length == 3)
        var badMagic = frame.bytes
        badMagic[0] = 0
        #expect(throws: EmulatorError.protocolViolation("bad magic")) {
            try WireProtocol.Frame.header(Array(badMagic.prefix(12)))
        }
        var huge = frame.bytes
        huge[8...11] = [0, 0, 2, 0]
        #expect(throws: EmulatorError.self) { try WireProtocol.Frame.header(Array(huge.prefix(12))) }
    }

    @Test func malformedRequestsGetFirmwareStatusNotACrash() {
        let guest = TestChips.guest()
        let short = WireProtocol.respond(to: .init(type: .report, payload: [1, 2, 3]), guest: guest)
        #expect(short.type == .reportResponse)
        #expect((try? ReportResponse(bytes: short.payload))?.status == .invalidParam)
        let key = WireProtocol.respond(to: .init(type: .derivedKey, payload: []), guest: guest)
        #expect((try? DerivedKeyResponse(bytes: key.payload))?.status == .invalidParam)
        let notRequest = WireProtocol.respond(to: .init(type: .reportResponse, payload: []), guest: guest)
        #expect(notRequest.type == .error)
    }
}

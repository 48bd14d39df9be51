import Glibc
import SNP
import SNPEmulator
import SNPGuest
import Testing

@testable import Boot

/// The report-only broker PID 1 serves to vhsmd: a fixed 68-byte request that can only carry REPORT_DATA, an
/// extended report (or a refusal sentence) back, one connection at a time, only for the service's uid.
@Suite struct ReportBrokerTests {
    let data = (0..<64).map { UInt8($0) }

    @Test func aRequestIsTheMagicAndSixtyFourBytesOfReportDataAndNothingElse() throws {
        let request = try ReportBroker.request(reportData: data)
        #expect(request.count == 68 && Array(request[0..<4]) == Array("VRB1".utf8))
        #expect(try ReportBroker.reportData(fromRequest: request) == data)
        #expect(throws: ReportBrokerError.badReportData(count: 63)) {
            try ReportBroker.request(reportData: Array(data.prefix(63)))
        }
        #expect(throws: ReportBrokerError.self) { try ReportBroker.reportData(fromRequest: request + [0]) }
        #expect(throws: ReportBrokerError.self) { try ReportBroker.reportData(fromRequest: Array(request.dropLast())) }
        #expect(throws: ReportBrokerError.self) { try ReportBroker.reportData(fromRequest: Array("VRB2".utf8) + data) }
    }

    /// There is no message type: MSG_KEY_REQ's bytes (32, or wrapped in anything but the one 68-byte shape) are
    /// refused, and the client's `derivedKey` throws without a connection.
    @Test func aKeyRequestCannotBeExpressed() throws {
        let keyRequest = DerivedKeyRequest(
            root: .vcek, guestFieldSelect: [.measurement, .guestPolicy], guestSVN: 0,
            tcbVersion: TCBVersion(rawValue: 0)
        ).bytes
        #expect(throws: ReportBrokerError.self) { try ReportBroker.reportData(fromRequest: keyRequest) }
        #expect(throws: ReportBrokerError.self) {
            try ReportBroker.reportData(fromRequest: Array("VRB1".utf8) + keyRequest)
        }
        let answer = ReportBroker.answer(keyRequest, device: TestLaunch.guest())
        #expect(throws: ReportBrokerError.self) { try ReportBroker.parseAnswer(answer) }
        let client = ReportBrokerClient(path: "/nonexistent/report.sock")
        #expect(throws: ReportBrokerError.keyRequest("/nonexistent/report.sock")) {
            try client.derivedKey(
                DerivedKeyRequest(root: .vcek, guestFieldSelect: [], guestSVN: 0, tcbVersion: TCBVersion(rawValue: 0)))
        }
    }

    @Test func anAnswerIsBoundedAndMustMatchItsHeader() throws {
        let answer = ReportBroker.answer(try ReportBroker.request(reportData: data), device: TestLaunch.guest())
        let (response, _) = try ReportBroker.parseAnswer(answer)
        #expect(try response.checked().reportData == data)
        #expect(throws: ReportBrokerError.self) { try ReportBroker.parseAnswer(answer + [0]) }
        #expect(throws: ReportBrokerError.self) { try ReportBroker.parseAnswer(Array(answer.dropLast())) }
        var huge = Array(answer[0..<12])
        huge[8] = 0xFF
        huge[9] = 0xFF
        huge[10] = 0xFF
        #expect(throws: ReportBrokerError.self) { try ReportBroker.parseAnswer(huge) }
    }

    @Test func theBrokerServesExtendedReportsOverItsSocket() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/report.sock"
        let guest = TestLaunch.guest()
        let listener = try ReportBrokerListener(path: path, owner: (uid: getuid(), gid: getgid()))
        defer { listener.stop() }
        try listener.start(device: guest)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let client = ReportBrokerClient(path: path)
        for round in 0..<3 {
            let reportData = Array(repeating: UInt8(round), count: 64)
            let (response, table) = try client.extendedReport(try ReportRequest(reportData: reportData))
            let report = try response.checked()
            #expect(report.reportData == reportData)
            #expect(report.measurement == TestLaunch.measurementA)
            #expect(table[.vcek] != nil, "the emulator's certificate table comes through")
        }
        // RecoveryRequest.make, as vhsmd's recovery uses it, works over the broker.
        #expect(try client.attestationReport(ReportRequest()).measurement == TestLaunch.measurementA)
        // A peer that sends more than a request gets no answer.
        let fd = try connected(path)
        defer { close(fd) }
        let oversized = try ReportBroker.request(reportData: data) + [1, 2, 3]
        #expect(oversized.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == oversized.count)
        var byte: UInt8 = 0
        #expect(read(fd, &byte, 1) <= 0)
        // And the broker goes on serving.
        #expect(try client.attestationReport(try ReportRequest(reportData: data)).reportData == data)
    }

    @Test(.enabled(if: getuid() == 0, "chowning the socket to another uid needs root"))
    func onlyTheServicesUIDIsAnswered() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/report.sock"
        let listener = try ReportBrokerListener(path: path, owner: (uid: getuid() &+ 4242, gid: getgid()))
        defer { listener.stop() }
        try listener.start(device: TestLaunch.guest())
        #expect(throws: ReportBrokerError.self) { try ReportBrokerClient(path: path).report(ReportRequest()) }
    }

    func connected(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(status == 0)
        return fd
    }
}

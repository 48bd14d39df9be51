// vhsm-bench login: logins per second that a running vhsmd completes on `auth/<mount>/login` over HTTP.
//
// Untimed first: draw COUNT nonces from the server (`POST auth/<mount>/nonce`) and make one report per nonce with the
// emulated chip in-process (REPORT_DATA = SHA-512("vhsm-login-v1" ‖ nonce ‖ 0³² ‖ 0³²): no public key, plain HTTP),
// so that neither the Secure Processor nor the client's own work is in the figure. Timed: CONNECTIONS concurrent
// clients post the COUNT logins. Every login must succeed (200 with a client token); anything else stops the bench
// with the server's answer.
import AttestedTLS
import Foundation
import SNP
import SNPEmulator

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct LoginBench: Sendable {
    let base: URL
    let mount: String
    let role: String
    let guest: EmulatedGuest

    func post(_ path: String, _ body: [String: Any]) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: base.appendingPathComponent("v1/auth/\(mount)/\(path)"))
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (status, object)
    }

    /// One login body for a fresh nonce.
    func prepare() async throws -> Data {
        let (status, answer) = try await post("nonce", [:])
        guard status == 200, let data = answer["data"] as? [String: Any], let hex = data["nonce"] as? String else {
            fail("POST auth/\(mount)/nonce answered \(status): \(answer)")
        }
        let nonce = try Hex.decode(hex, count: 32)
        guard
            let reportData = AttestedLoginBinding.reportData(
                nonce: nonce, publicKeySHA256: nil, audienceSPKISHA256: AttestedLoginBinding.absent)
        else { fail("the login binding refused a 32-byte nonce") }
        let (response, table) = try guest.extendedReport(try ReportRequest(reportData: reportData))
        let report = try response.checked()
        let certificates = AttestationEvidence.certificates(from: table, signer: report.keyInfo.signingKey)
        return try JSONSerialization.data(withJSONObject: [
            "role": role, "nonce": hex, "report": Data(report.bytes).base64EncodedString(),
            "certificates": certificates.map { Data($0).base64EncodedString() },
        ])
    }

    func login(_ body: Data) async throws -> Bool {
        var request = URLRequest(url: base.appendingPathComponent("v1/auth/\(mount)/login"))
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200,
            let answer = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let auth = answer["auth"] as? [String: Any], auth["client_token"] is String
        else {
            FileHandle.standardError.write(
                Data("vhsm-bench: a login answered \(status): \(String(decoding: data, as: UTF8.self))\n".utf8))
            return false
        }
        return true
    }
}

func loginBench(_ arguments: [String]) async {
    guard let url = option("--url", in: arguments).flatMap(URL.init(string:)),
        let state = option("--state", in: arguments), let measurementHex = option("--measurement", in: arguments)
    else {
        fail(
            "usage: vhsm-bench login --url http://127.0.0.1:PORT --state CHIP-DIR --measurement HEX [--role R] "
                + "[--mount M] [--count N] [--connections C]")
    }
    let count = Int(option("--count", in: arguments) ?? "2000") ?? 2000
    let connections = Int(option("--connections", in: arguments) ?? "8") ?? 8
    do {
        let chip = try ChipStore(directory: state).load()
        let guest = try EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: try Hex.decode(measurementHex, count: 48)),
            store: ChipStore(directory: state))
        let bench = LoginBench(
            base: url, mount: option("--mount", in: arguments) ?? "sev-snp",
            role: option("--role", in: arguments) ?? "bench", guest: guest)
        var bodies: [Data] = []
        bodies.reserveCapacity(count)
        for _ in 0..<count { bodies.append(try await bench.prepare()) }
        let prepared = bodies
        let clock = ContinuousClock()
        let start = clock.now
        let succeeded = try await withThrowingTaskGroup(of: Int.self) { group in
            for lane in 0..<connections {
                group.addTask {
                    var done = 0
                    for index in stride(from: lane, to: prepared.count, by: connections) {
                        guard try await bench.login(prepared[index]) else { return done }
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = clock.now - start
        guard succeeded == count else { fail("\(count - succeeded) of \(count) logins failed") }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            "vhsmd logins/s: \(String(format: "%.1f", Double(count) / seconds)) (\(count) logins, \(connections) connections)"
        )
    } catch {
        fail("the login bench stopped: \(error)")
    }
}

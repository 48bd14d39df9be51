// vhsm-bench: in-process throughput figures for `make bench`.
//
// `verify`: each round does what a verifier receiving evidence does, and what the Python peer
// (scripts/verify_snp.py --bench) does: parse the report and the ARK, ASK and VCEK from bytes, check the chain and
// the signature.
// `seal`: AES-256-GCM of one 32-byte plaintext through swift-crypto's `AES.GCM.seal`, the call vhsmd makes per
// transit item, with a fresh random nonce each time: the ceiling of batch encrypt through the library vhsmd uses,
// set beside `openssl speed -evp aes-256-gcm -bytes 32` by scripts/bench-vhsmd.sh.
// `login`: logins per second a running vhsmd completes (LoginBench.swift).
import Crypto
import Foundation
import SNP

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vhsm-bench: \(message)\n".utf8))
    exit(2)
}

func option(_ name: String, in arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

/// Runs `body` repeatedly for `seconds`; returns the rounds per second.
func rate(seconds: Double, _ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    var rounds = 0
    let start = clock.now
    while clock.now - start < .seconds(seconds) {
        for _ in 0..<64 { try body() }
        rounds += 64
    }
    let elapsed = clock.now - start
    return Double(rounds) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "login" {
    await loginBench(arguments)
    exit(0)
}
if arguments.first == "seal" {
    let seconds = Double(option("--seconds", in: arguments) ?? "2") ?? 2
    let key = SymmetricKey(size: .bits256)
    let plaintext = [UInt8](repeating: 0x5A, count: 32)
    var sink = 0
    // As openssl speed does: no nonce generation in the loop (a counter makes each nonce distinct); the key
    // schedule, the sealing and the nonce ‖ ciphertext ‖ tag output are swift-crypto's.
    var counter = [UInt8](repeating: 0, count: 12)
    let perSecond = try rate(seconds: seconds) {
        for index in 0..<8 {
            counter[index] &+= 1
            if counter[index] != 0 { break }
        }
        let box = try AES.GCM.seal(plaintext, using: key, nonce: try AES.GCM.Nonce(data: counter))
        sink &+= box.combined?.count ?? 0
    }
    guard sink > 0 else { fail("AES.GCM.seal produced nothing") }
    print("swift-crypto AES.GCM.seal 32 bytes/s: \(String(format: "%.1f", perSecond))")
    exit(0)
}
guard arguments.first == "verify",
    let reportPath = option("--report", in: arguments), let arkPath = option("--ark", in: arguments),
    let askPath = option("--ask", in: arguments), let vcekPath = option("--vcek", in: arguments)
else {
    fail(
        "usage: vhsm-bench verify --report R --ark ARK.pem --ask ASK.pem --vcek VCEK.der [--at RFC3339] [--seconds S]\n"
            + "       vhsm-bench seal [--seconds S]\n"
            + "       vhsm-bench login --url http://127.0.0.1:PORT --state CHIP-DIR --measurement HEX [--count N]")
}
func read(_ path: String) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
    return Array(data)
}
let reportBytes = read(reportPath)
let arkBytes = read(arkPath)
let askBytes = read(askPath)
let vcekBytes = read(vcekPath)
let instant = option("--at", in: arguments).flatMap { ISO8601DateFormatter().date(from: $0) } ?? Date()
let seconds = Double(option("--seconds", in: arguments) ?? "2") ?? 2

func verifyOnce() throws {
    let report = try AttestationReport(bytes: reportBytes)
    let ark = try AMDCertificate(bytes: arkBytes)
    let ask = try AMDCertificate(bytes: askBytes)
    let vcek = try AMDCertificate(bytes: vcekBytes)
    _ = try ReportVerifier.amd.trusting(ark).verify(report, endorsement: vcek, candidates: [ask, ark], at: instant)
}

do { try verifyOnce() } catch { fail("the evidence does not verify: \(error)") }
let clock = ContinuousClock()
var rounds = 0
let start = clock.now
while clock.now - start < .seconds(seconds) {
    try! verifyOnce()
    rounds += 1
}
let elapsed = clock.now - start
let perSecond = Double(rounds) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
print("vhsm verifications/s: \(String(format: "%.1f", perSecond))")

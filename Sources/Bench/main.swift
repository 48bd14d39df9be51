// vhsm-bench: in-process throughput of report verification, for `make bench`.
//
// Each round does what a verifier receiving evidence does, and what the Python peer (scripts/verify_snp.py
// --bench) does: parse the report and the ARK, ASK and VCEK from bytes, check the chain and the signature.
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

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.first == "verify",
    let reportPath = option("--report", in: arguments), let arkPath = option("--ark", in: arguments),
    let askPath = option("--ask", in: arguments), let vcekPath = option("--vcek", in: arguments)
else {
    fail("usage: vhsm-bench verify --report R --ark ARK.pem --ask ASK.pem --vcek VCEK.der [--at RFC3339] [--seconds S]")
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

import ArgumentParser
import Foundation
import SNP
import SNPEmulator
import Testing

@testable import CLI

@Suite struct CLIParsingTests {
    @Test func parsesTheVerifySurface() throws {
        let command = try VHSM.parseAsRoot([
            "report", "verify", "r.bin", "--cert", "v.der", "--chain", "c.pem", "--cert-table", "t.bin",
            "--at", "2024-01-01T00:00:00Z", "--trust-emulator-root", "a.pem", "--measurement", "aa", "--report-data",
            "bb", "--host-data", "cc", "--min-tcb", "0300000000000873", "--json",
        ])
        let verify = try #require(command as? ReportVerify)
        #expect(verify.file == "r.bin" && verify.cert == "v.der" && verify.chain == "c.pem")
        #expect(verify.certTable == "t.bin" && verify.trustEmulatorRoot == "a.pem" && verify.json)
        #expect(verify.minTCB == "0300000000000873")
    }

    @Test func parsesKeyDeriveAndItsRoots() throws {
        let command = try VHSM.parseAsRoot([
            "key", "derive", "--root", "vmrk", "--fields", "policy,tcb", "--vmpl", "1", "--guest-svn", "2",
            "--tcb", "0300000000000873", "--emulator", "/tmp/s",
        ])
        let derive = try #require(command as? KeyDerive)
        #expect(derive.root == .vmrk && derive.vmpl == 1 && derive.guestSvn == 2)
        #expect(derive.source.emulator == "/tmp/s")
        #expect(throws: (any Error).self) { try VHSM.parseAsRoot(["key", "derive", "--root", "ark"]) }
    }

    @Test func refusesTwoProviders() {
        #expect(throws: (any Error).self) {
            try VHSM.parseAsRoot(["report", "get", "--tsm", "--emulator", "/tmp/s", "-o", "x"])
        }
        #expect(throws: (any Error).self) {
            try VHSM.parseAsRoot(["report", "get", "--device", "/dev/sev-guest", "--tsm", "-o", "x"])
        }
    }

    @Test func parsesTheEmulatorSurface() throws {
        let serve = try #require(
            try VHSM.parseAsRoot([
                "emulator", "serve", "--state", "s", "--socket", "k", "--measurement", "aa", "--policy", "0x30000",
                "--host-data", "bb", "--vmpl", "2",
            ]) as? EmulatorServe)
        #expect(serve.vmpl == 2 && serve.launch.policy == "0x30000")
        let initialise = try #require(
            try VHSM.parseAsRoot(["emulator", "init", "--state", "s", "--product", "turin"]) as? EmulatorInit)
        #expect(initialise.product == .turin)
        #expect(throws: (any Error).self) {
            try VHSM.parseAsRoot(["emulator", "init", "--state", "s", "--product", "naples"])
        }
    }

    @Test func hexInputsSayWhatIsWrong() throws {
        #expect(throws: (any Error).self) { try Inputs.hex("abc", option: "--host-data", count: 32) }
        do {
            _ = try Inputs.hex("abcd", option: "--measurement", count: 48)
        } catch let error as CLIError {
            #expect(error.exitCode == 2)
            #expect(error.description == "--measurement must be 48 bytes (96 hex digits), got 2 bytes")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(
            try Inputs.paddedHex("01ff", option: "--report-data", count: 64) == [1, 0xFF]
                + Array(repeating: 0, count: 62))
        #expect(throws: (any Error).self) {
            try Inputs.paddedHex(String(repeating: "00", count: 65), option: "--report-data", count: 64)
        }
        #expect(try Inputs.policy("0x30000").rawValue == 0x30000)
        #expect(throws: (any Error).self) { try Inputs.policy("0xzz") }
        #expect(try Inputs.instant("2025-01-31T12:00:00Z").timeIntervalSince1970 == 1_738_324_800)
        #expect(throws: (any Error).self) { try Inputs.instant("yesterday") }
    }

    @Test func launchOptionsRefuseWrongSizes() throws {
        var options = try LaunchOptions.parse(["--measurement", "aa"])
        #expect(throws: (any Error).self) { try options.context(callerVMPL: 0) }
        options = try LaunchOptions.parse(["--host-data", String(repeating: "11", count: 32)])
        #expect(try options.context(callerVMPL: 1).hostData == Array(repeating: 0x11, count: 32))
    }

    @Test func reportJSONCarriesTheDecodedFields() throws {
        var report = AttestationReport(version: 5)
        report.cpuidFamilyID = 0x1A
        report.cpuidModelID = 0x02
        report.reportedTCB = TCBVersion(TCBLevels(fmc: 1, bootLoader: 2, tee: 3, snp: 4, microcode: 5), layout: .turin)
        report.policy = GuestPolicy(rawValue: 0x3_0000)
        let json = Output.json(ReportJSON(report))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["product"] as? String == "Turin")
        let tcb = try #require(object["reported_tcb"] as? [String: Any])
        #expect(tcb["fmc"] as? Int == 1 && tcb["microcode"] as? Int == 5)
        #expect((object["policy"] as? [String: Any])?["flags"] as? [String] == ["smt", "reserved-17"])
        #expect(object["launch_mit_vector"] as? Int == 0)
    }
}

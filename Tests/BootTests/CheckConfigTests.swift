import Glibc
import Sealing
import StrictJSON
import Testing

@testable import Boot

@Suite struct CheckConfigTests {
    final class Output {
        var out: [String] = []
        var err: [String] = []
    }

    func run(_ arguments: [String], emulator: Bool = false) -> (Int32, Output) {
        let output = Output()
        let status = CheckConfig.run(
            arguments, emulatorAvailable: emulator, out: { output.out.append($0) }, err: { output.err.append($0) })
        return (status, output)
    }

    @Test func anAcceptedConfigurationPrintsItsEffectiveJSON() throws {
        let directory = try TemporaryDirectory()
        try directory.write(#"{"seal": "platform", "network": "none"}"#, to: "init.json")
        let (status, output) = run([
            "--check-config", directory.path + "/init.json", "--cmdline", "quiet vhsm.on_failure=reboot",
        ])
        #expect(status == 0)
        #expect(output.err.isEmpty)
        let printed = try JSON.parse(Array(output.out.joined(separator: "\n").utf8))
        var expected = BootConfig()
        expected.seal = .platform
        expected.network.mode = .none
        expected.failureAction = .reboot
        #expect(printed == expected.json)
    }

    @Test func aRefusedConfigurationExitsTwoWithTheReason() throws {
        let directory = try TemporaryDirectory()
        try directory.write(#"{"attestation": "emulator"}"#, to: "init.json")
        let (status, output) = run(["--check-config", directory.path + "/init.json"])
        #expect(status == 2)
        #expect(output.out.isEmpty)
        #expect(
            output.err.first?.hasPrefix("vhsm-init: config failed: attestation.provider 'emulator' needs a test build")
                == true)
        #expect(run(["--check-config", directory.path + "/init.json"], emulator: true).0 == 0)

        let unknown = run(["--check-config", directory.path + "/init.json", "--cmdline", "vhsm.sael=image"])
        #expect(unknown.0 == 2)
        #expect(
            unknown.1.err.first?.hasPrefix("vhsm-init: config failed: unknown key 'sael' in kernel command line")
                == true)
    }

    @Test func usageErrorsExitTwo() {
        #expect(run([]).0 == 2)
        #expect(run(["--check-config"]).0 == 2)
        #expect(run(["--frobnicate"]).1.err.first == "vhsm-init: unexpected argument '--frobnicate'")
        let missing = run(["--check-config", "/nonexistent/init.json"])
        #expect(missing.0 == 2)
        #expect(
            missing.1.err == [
                "vhsm-init: config failed: cannot read /nonexistent/init.json: No such file or directory (ENOENT)"
            ])
    }

    /// The built `vhsm-init` in the build directory that holds this test runner (`swift build` puts every
    /// product there), when it exists.
    static let binary: String? = {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard realpath("/proc/self/exe", &resolved) != nil else { return nil }
        let runner = resolved.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let slash = runner.lastIndex(of: "/") else { return nil }
        let candidate = String(runner[..<slash]) + "/vhsm-init"
        return Files.exists(candidate) ? candidate : nil
    }()

    @Test(.enabled(if: binary != nil)) func theBinaryChecksAConfigurationAsAProcess() throws {
        let directory = try TemporaryDirectory()
        try directory.write(#"{"volume": "/dev/vdb"}"#, to: "init.json")
        try directory.write(#"{"volume": "vdb"}"#, to: "bad.json")
        let good = try Spawn.run(
            "/bin/sh",
            arguments: [
                "-c",
                "\(Self.binary!) --check-config \(directory.path)/init.json --cmdline 'vhsm.seal=image' > \(directory.path)/out",
            ],
            environment: [])
        #expect(good.exitCode == 0)
        let printed = try JSON.parse(try Files.read(directory.path + "/out"))
        guard case .object(let members) = printed else {
            Issue.record("not an object")
            return
        }
        #expect(members.first { $0.0 == "volume" }?.1 == .string("/dev/vdb"))
        #expect(members.first { $0.0 == "seal" }?.1 == .string("image"))
        let bad = try Spawn.run(
            Self.binary!, arguments: ["--check-config", directory.path + "/bad.json"], environment: [])
        #expect(bad.exitCode == 2)
    }
}

import Foundation
import Glibc
import Sealing
import Testing

@testable import KeyService

/// A running `vhsmd` (the one built beside this test runner), its console in a file.
final class VHSMDProcess {
    /// `swift build` and `swift test` put every product beside the test runner.
    static let binary: String? = {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard realpath("/proc/self/exe", &resolved) != nil else { return nil }
        let runner = resolved.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let slash = runner.lastIndex(of: "/") else { return nil }
        let candidate = String(runner[..<slash]) + "/vhsmd"
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    let process = Process()
    let console: String

    init(_ arguments: [String], directory: String) throws {
        let binary = try #require(Self.binary, "vhsmd is not built beside the test runner: swift build --product vhsmd")
        console = directory + "/console.log"
        #expect(FileManager.default.createFile(atPath: console, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: console))
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var output: String { (try? String(contentsOfFile: console, encoding: .utf8)) ?? "" }

    /// Waits (up to 20 s) until the console holds `text`.
    func waitFor(_ text: String) async throws -> Bool {
        for _ in 0..<400 {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// The URL of the "ready on" line (the bound port, also when port 0 was asked for).
    func readyURL() async throws -> String {
        try #require(try await waitFor("vhsmd: ready on "), "vhsmd did not get ready: \(output)")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("vhsmd: ready on ") })
        return String(line.dropFirst("vhsmd: ready on ".count))
    }

    /// SIGTERM, then the exit status.
    func stop() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// `curl`'s HTTP status for a GET of `url` (`-g`: brackets are an IPv6 address, not a glob).
func httpStatus(_ url: String, token: String? = nil) throws -> String {
    var arguments = ["-s", "-g", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"]
    if let token { arguments += ["-H", "X-Vault-Token: \(token)"] }
    let curl = "/usr/bin/curl"
    try #require(FileManager.default.isExecutableFile(atPath: curl), "these checks speak HTTP with curl")
    return try runProgram(curl, arguments + [url]).output
}

/// vhsmd as a process: signals, listen addresses.
@Suite struct VHSMDProcessTests {
    let directory = TemporaryDirectory()

    /// logrotate's way: rename the log, send SIGHUP, and the next lines go to a new file at the configured path;
    /// vhsmd goes on serving, and still stops cleanly on SIGTERM.
    @Test func sighupReopensTheAuditLogInsteadOfEndingVHSMD() async throws {
        let audit = directory.path + "/audit.log"
        let vhsmd = try VHSMDProcess(
            [
                "--dev", "--dev-listen-address", "127.0.0.1:0", "--dev-root-token-id", "root-h5", "--audit-file",
                audit,
            ], directory: directory.path)
        let url = try await vhsmd.readyURL()
        #expect(try httpStatus(url + "/v1/secret/data/before-rotation", token: "root-h5") == "404")
        #expect(rename(audit, audit + ".1") == 0)
        #expect(kill(vhsmd.process.processIdentifier, SIGHUP) == 0)
        #expect(try await vhsmd.waitFor("vhsmd: SIGHUP: reopened the audit log \(audit)"), "\(vhsmd.output)")
        #expect(vhsmd.process.isRunning, "vhsmd ended on SIGHUP: \(vhsmd.output)")
        #expect(try httpStatus(url + "/v1/secret/data/after-rotation", token: "root-h5") == "404")
        let fresh = try String(contentsOfFile: audit, encoding: .utf8)
        let rotated = try String(contentsOfFile: audit + ".1", encoding: .utf8)
        #expect(fresh.contains("secret/data/after-rotation"))
        #expect(!fresh.contains("secret/data/before-rotation"))
        #expect(rotated.contains("secret/data/before-rotation"))
        #expect(!rotated.contains("secret/data/after-rotation"))
        #expect(try fileMode(audit) == 0o600)
        #expect(vhsmd.stop() == 0)
        #expect(vhsmd.output.contains("vhsmd: stopped"))
    }

    @Test func sighupWithoutAnAuditLogIsHarmless() async throws {
        let vhsmd = try VHSMDProcess(["--dev", "--dev-listen-address", "127.0.0.1:0"], directory: directory.path)
        let url = try await vhsmd.readyURL()
        #expect(kill(vhsmd.process.processIdentifier, SIGHUP) == 0)
        #expect(try await vhsmd.waitFor("vhsmd: SIGHUP: no audit log to reopen"), "\(vhsmd.output)")
        #expect(try httpStatus(url + "/v1/sys/health") == "200")
        #expect(vhsmd.stop() == 0)
    }

    /// A busy port: the second vhsmd names the address and what to do, prints no banner and no root token (it never
    /// served), and exits 1; the first goes on serving.
    @Test func aBusyPortIsNamedAndNoRootTokenIsPrintedBeforeListening() async throws {
        let first = try VHSMDProcess(["--dev", "--dev-listen-address", "127.0.0.1:0"], directory: directory.path)
        let url = try await first.readyURL()
        // The banner, with its root token, comes once the listener is bound.
        #expect(first.output.contains("root token: "))
        #expect(first.output.contains("address:    \(url)"))
        let address = String(url.dropFirst("http://".count))
        let other = TemporaryDirectory()
        let second = try VHSMDProcess(["--dev", "--dev-listen-address", address], directory: other.path)
        second.process.waitUntilExit()
        #expect(second.process.terminationStatus == 1)
        let said = second.output
        // One line, printed once, as vhsm prints its errors.
        #expect(said.hasPrefix("vhsmd: cannot listen on ") && !said.contains("Error:"), "\(said)")
        #expect(said.split(separator: "\n").count == 1, "\(said)")
        #expect(
            said.contains(
                "cannot listen on \(address): the address is already in use (another vhsmd, Vault or OpenBao?); stop "
                    + "that server or choose another address with --dev-listen-address HOST:PORT"), "\(said)")
        #expect(!said.contains("root token") && !said.contains("DEV mode") && !said.contains("stopping"), "\(said)")
        #expect(try httpStatus(url + "/v1/sys/health") == "200")
        #expect(first.stop() == 0)
    }

    /// A start refused because the seal's device does not answer (no /dev/sev-guest here) creates nothing: no data
    /// directory, no database.
    @Test(.enabled(if: !FileManager.default.fileExists(atPath: "/dev/sev-guest"), "this machine has /dev/sev-guest"))
    func aRefusedStartCreatesNoDatabase() async throws {
        let data = directory.path + "/never-created"
        let config = directory.path + "/vhsmd.json"
        try
            #"{"listener": {"address": "127.0.0.1:0", "tls_disable": true}, "storage": {"path": "\#(data)"}, "seal": "sev-guest"}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let vhsmd = try VHSMDProcess(["--config", config], directory: directory.path)
        vhsmd.process.waitUntilExit()
        #expect(vhsmd.process.terminationStatus == 1)
        #expect(vhsmd.output.contains("cannot get an attestation report"), "\(vhsmd.output)")
        #expect(vhsmd.output.contains("nothing was created in \(data)"), "\(vhsmd.output)")
        #expect(!FileManager.default.fileExists(atPath: data))
    }

    /// vhsmd's exit codes: 2 for a usage error (one line and a hint, ArgumentParser's own errors included), 1 for
    /// a refused start (one line, "vhsmd: ...", printed once, never ArgumentParser's "Error:"), 0 for --help, which
    /// states them.
    @Test func usageErrorsExit2RefusedStartsExit1AndHelpStatesTheCodes() throws {
        let binary = try #require(VHSMDProcess.binary, "vhsmd is not built beside the test runner")
        let unknown = try runProgram(binary, ["--dev", "--frobnicate"])
        #expect(unknown.status == 2)
        #expect(
            unknown.output == "vhsmd: unknown option '--frobnicate'\nvhsmd: see 'vhsmd --help'\n", "\(unknown.output)")
        let neither = try runProgram(binary, [])
        #expect(neither.status == 2)
        #expect(
            neither.output == "vhsmd: give exactly one of --dev and --config FILE\nvhsmd: see 'vhsmd --help'\n",
            "\(neither.output)")
        let missing = directory.path + "/missing.json"
        let refused = try runProgram(binary, ["--config", missing])
        #expect(refused.status == 1)
        #expect(refused.output == "vhsmd: cannot read \(missing): No such file or directory\n", "\(refused.output)")
        let help = try runProgram(binary, ["--help"])
        #expect(help.status == 0)
        let folded = help.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(folded.contains("Exit codes: 0 stopped cleanly on SIGTERM or SIGINT"), "\(help.output)")
        #expect(folded.contains("; 1 the start was refused or failed"), "\(help.output)")
        #expect(folded.contains("; 2 usage error"), "\(help.output)")
    }

    /// A configuration file that cannot be read says why, as the system does.
    @Test func anUnreadableConfigurationSaysWhy() {
        for (path, why) in [
            (directory.path + "/missing.json", "No such file or directory"), (directory.path, "Is a directory"),
        ] {
            let error = #expect(throws: ConfigError.self) { try ServerConfig.load(path) }
            #expect(error?.description == "cannot read \(path): \(why)")
        }
    }

    /// A configuration that is not JSON: the line and column, as an editor counts them, not HTTP wording.
    @Test func aConfigurationSyntaxErrorNamesItsLineAndColumn() {
        let text = "{\n  \"listener\": {\"address\": \"127.0.0.1:8300\",}\n}\n"
        #expect(VHSMD.syntaxProblem(Array(text.utf8)) == "line 2, column 44: expected a key")
        #expect(
            VHSMD.syntaxProblem(Array("{\n  \"seal\": \"é\"\n".utf8)) == "line 3, column 1: unexpected end in an object"
        )
    }

    /// Lines whose first non-blank character is `#` are comments; the line numbers of what follows are kept.
    @Test func configurationCommentLinesAreSkipped() throws {
        let path = directory.path + "/commented.json"
        try """
        # vhsmd's configuration
        {"listener": {"address": "127.0.0.1:8300"},
           # where the sealed store lives
         "storage": {"path": "/tmp/x"},\r
        \t# "seal": "emulator:/tmp/chip.sock",
         "seal": "sev-guest"}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try ServerConfig.load(path)
        #expect(config.address == "127.0.0.1:8300")
        #expect(config.dataDirectory == "/tmp/x")
        #expect(config.seal == "sev-guest")
        // A # inside a value's line is not a comment, and an error after a comment names the file's own line.
        let broken = ServerConfig.uncommented(Array("# a\n# b\n{\"a\": #\n}".utf8))
        #expect(VHSMD.syntaxProblem(broken) == "line 3, column 7: unexpected character")
        let hashInValue = """
            # only
            {"listener": {"address": "a#b:1"}, "storage": {"path": "/tmp/x"}, "seal": "sev-guest"}
            """
        try hashInValue.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try ServerConfig.load(path).address == "a#b:1")
    }

    /// The configuration `make install` and `make deb` ship (`packaging/vhsmd.json`, with comments) loads, and says
    /// what the systemd unit expects: the state and log directories it makes, the Secure Processor as the seal.
    @Test func theShippedConfigurationLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let config = try ServerConfig.load(root.appendingPathComponent("packaging/vhsmd.json").path)
        #expect(config.dataDirectory == "/var/lib/vhsm")
        #expect(config.seal == "sev-guest")
        #expect(config.sealMode == .measurement)
        #expect(config.auditFile == "/var/log/vhsm/audit.log")
        #expect(config.address == "127.0.0.1:8200")
    }

    /// `VHSMD.address`'s answer as "HOST PORT".
    func parsed(_ text: String, loopbackOnly: Bool) throws -> String {
        let (host, port) = try VHSMD.address(text, loopbackOnly: loopbackOnly)
        return "\(host) \(port)"
    }

    @Test func listenAddressesTakeIPv6InBrackets() throws {
        #expect(try parsed("127.0.0.1:8200", loopbackOnly: false) == "127.0.0.1 8200")
        #expect(try parsed("localhost:8200", loopbackOnly: true) == "localhost 8200")
        #expect(try parsed("[::1]:8200", loopbackOnly: true) == "::1 8200")
        #expect(try parsed("[::]:8200", loopbackOnly: false) == ":: 8200")
        #expect(try parsed("[2001:db8::7]:443", loopbackOnly: false) == "2001:db8::7 443")
        for bad in [
            "::1:8200", "[::1]", "[::1]8200", "[127.0.0.1]:8200", "[::1:8200", "host:", ":8200", "h:70000", "h:-1",
            "h:+1", "8200",
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try VHSMD.address(bad, loopbackOnly: false) }
        }
        do {
            _ = try VHSMD.address("::1:8200", loopbackOnly: false)
        } catch {
            #expect("\(error)".contains("[ADDRESS]:PORT for IPv6, e.g. [::1]:8200"))
            #expect("\(error)".contains("an IPv6 address needs brackets"))
        }
        #expect(throws: (any Error).self) { try VHSMD.address("[::]:8200", loopbackOnly: true) }
        #expect(VHSMD.display(("::1", 8200)) == "[::1]:8200")
        #expect(VHSMD.display(("127.0.0.1", 8200)) == "127.0.0.1:8200")
        // The config file's address goes through the same parser.
        let path = directory.path + "/config.json"
        try #"{"listener": {"address": "[::]:8200"}, "storage": {"path": "/tmp/x"}, "seal": "sev-guest"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try parsed(try ServerConfig.load(path).address, loopbackOnly: false) == ":: 8200")
    }

    /// Whether this machine can bind TCP on ::1.
    static let hasIPv6Loopback: Bool = {
        let descriptor = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
            }
        }
    }()

    @Test(.enabled(if: hasIPv6Loopback, "this machine cannot bind TCP on ::1"))
    func aDevListenerServesOnIPv6Loopback() async throws {
        let vhsmd = try VHSMDProcess(["--dev", "--dev-listen-address", "[::1]:0"], directory: directory.path)
        let url = try await vhsmd.readyURL()
        #expect(url.hasPrefix("http://[::1]:"))
        // The banner names the bound address (the port the kernel chose), once it is bound.
        #expect(vhsmd.output.contains("address:    \(url)"))
        #expect(try httpStatus(url + "/v1/sys/health") == "200")
        #expect(vhsmd.stop() == 0)
    }
}

import Crypto
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SNP
import SNPEmulator
import SNPGuest
import Sealing
import Testing

@testable import KeyService

/// Issue 13 item 10, vhsmd's half: vhsm-init derives the barrier root keys (`VHSMDHandoff.prepare`) and hands them
/// over on a descriptor (`BarrierHandoff`, VHSMBKH1); vhsmd's reports come from the broker, which derives no key.
@Suite struct BarrierHandoffTests {
    static let chipA: ChipState = try! ChipState.create(product: .genoa)
    static let chipB: ChipState = try! ChipState.create(product: .genoa)
    static let measurement = Array(repeating: UInt8(0x3E), count: 48)

    let directory = TemporaryDirectory()
    let operatorKey = P384.KeyAgreement.PrivateKey()

    func guest(_ chip: ChipState) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: Self.measurement, policy: GuestPolicy(rawValue: 0x20000)))
    }

    static let pin = BarrierSeal.Pin(
        provider: "sev-guest", tcb: "0300000000000873", fields: SealMode.measurement.guestFieldSelect.names, svn: nil)

    func handoff(pinnedKey: SymmetricKey? = SymmetricKey(size: .bits256), failure: String? = nil) -> BarrierHandoff {
        var fresh = Self.pin
        fresh.tcb = "0400000000000874"
        return BarrierHandoff(
            pinned: Self.pin, fresh: fresh, pinnedKey: pinnedKey, pinnedFailure: pinnedKey == nil ? failure : nil,
            freshKey: SymmetricKey(size: .bits256))
    }

    /// vhsmd's configuration in `directory`, naming the data directory `data`.
    func config(seal: String, operatorKey: Bool = false, extra: String = "") throws -> String {
        let path = directory.path + "/vhsmd.json"
        var text =
            #"{"listener": {"address": "127.0.0.1:0", "tls_disable": true}, "storage": {"path": ""#
            + directory.path + #"/data"}, "seal": ""# + seal + #"""#
        if operatorKey {
            let pem = self.operatorKey.publicKey.pemRepresentation.replacing("\n", with: "\\n")
            text += #", "operator_key": ""# + pem + #"""#
        }
        text += extra + "}"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theDescriptorFormatRoundTrips() throws {
        for original in [handoff(), handoff(pinnedKey: nil, failure: "MSG_KEY_REQ refused: TCB above COMMITTED_TCB")] {
            var bytes = try original.encoded()
            defer { bytes.zeroize() }
            #expect(Array(bytes[0..<8]) == Array("VHSMBKH1".utf8))
            let decoded = try BarrierHandoff.decode(bytes)
            #expect(decoded.pinned == original.pinned && decoded.fresh == original.fresh)
            #expect(decoded.pinnedKey == original.pinnedKey && decoded.freshKey == original.freshKey)
            #expect(decoded.pinnedFailure == original.pinnedFailure)
        }
        // A missing pinned key is a derivation failure, which lets vhsmd wait for the operator.
        let absent = handoff(pinnedKey: nil, failure: "another chip")
        #expect(throws: SealError.self) { try absent.pinnedProvider(name: "sev-guest").rootKey() }
        #expect(try absent.freshProvider(name: "sev-guest").rootKey() == absent.freshKey)
    }

    @Test func theDescriptorFormatRefusesWrongLengthsAndMagic() throws {
        let bytes = try handoff().encoded()
        func refuses(_ changed: [UInt8], _ label: String) {
            #expect(throws: BarrierHandoffError.self, "\(label)") { try BarrierHandoff.decode(changed) }
        }
        refuses(Array(bytes.dropLast()), "one byte short")
        refuses(bytes + [0], "one byte more")
        refuses(Array(bytes.prefix(87)), "shorter than the header")
        refuses([], "empty")
        var magic = bytes
        magic[7] = UInt8(ascii: "2")
        refuses(magic, "another magic")
        var version = bytes
        version[8] = 2
        refuses(version, "version 2")
        var flags = bytes
        flags[10] = 0
        refuses(flags, "no key but no reason")
        var length = bytes
        length[14] = 1  // the pinned pin's length above 4096
        refuses(length, "an oversized pin")
        var json = bytes
        json[88] = UInt8(ascii: "[")
        refuses(json, "a pin that is not JSON")
    }

    @Test func aDescriptorIsReadOnceToItsEndAndClosed() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        let original = handoff()
        let bytes = try original.encoded()
        #expect(bytes.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) } == bytes.count)
        close(ends[1])
        let read = try BarrierHandoff.read(descriptor: ends[0])
        #expect(read.pinnedKey == original.pinnedKey)
        #expect(fcntl(ends[0], F_GETFD) < 0, "the descriptor is closed")
        #expect(throws: BarrierHandoffError.noDescriptor(ends[0])) { try BarrierHandoff.read(descriptor: ends[0]) }
    }

    /// PID 1's derivation is the one vhsmd made itself: the same pin written to seal.json, the same root key.
    @Test func prepareDerivesWhatVHSMDWouldHaveDerived() throws {
        let path = try config(seal: "emulator:test", extra: #", "audit_file": "/var/log/vhsmd-audit.log""#)
        let prepared = try VHSMDHandoff.prepare(
            arguments: ["--config", path], device: guest(Self.chipA), descriptor: 3,
            reportSocket: "/run/vhsm/report.sock")
        #expect(prepared.arguments == ["--barrier-key-fd", "3", "--report-socket", "/run/vhsm/report.sock"])
        #expect(prepared.ownedPaths == [directory.path + "/data", "/var/log/vhsmd-audit.log"])
        let handoff = try BarrierHandoff.decode(prepared.descriptorContents)
        #expect(handoff.pinned == handoff.fresh && handoff.pinnedKey == handoff.freshKey)
        let written = try JSONDecoder().decode(
            BarrierSeal.Pin.self, from: Data(contentsOf: URL(fileURLWithPath: directory.path + "/data/seal.json")))
        #expect(written == handoff.pinned && written.tcb == Self.chipA.tcbVersion.hex)
        let direct = try BarrierSeal.provider(
            device: guest(Self.chipA), setting: "emulator:test", mode: .measurement,
            requirements: SealingRequirements(), directory: directory.path + "/data", warn: { _ in })
        #expect(try direct.rootKey() == handoff.pinnedKey)
        // Without --config there is nothing to derive from.
        #expect(throws: ConfigError.self) {
            try VHSMDHandoff.prepare(arguments: ["--dev"], device: guest(Self.chipA), descriptor: 3, reportSocket: "/x")
        }
    }

    /// A store sealed on chip A, started under vhsm-init on chip B: the pinned key does not open it, vhsmd waits
    /// sealed, its request comes from the broker (which derives no key), and the operator's grant re-pins it to
    /// the fresh key vhsm-init handed over; seal.json then holds the fresh pin.
    @Test func recoveryUnderVHSMInitUsesTheBrokerAndTheHandedFreshKey() async throws {
        let path = try config(seal: "emulator:test", operatorKey: true)
        let data = directory.path + "/data"
        let backend = MemoryBackend()
        let escrowKey = HPKEPublicKey.p384(operatorKey.publicKey)
        func runtime(_ chip: ChipState, broker: String) throws -> (Runtime, BarrierHandoff, Barrier) {
            let prepared = try VHSMDHandoff.prepare(
                arguments: ["--config", path], device: guest(chip), descriptor: 3, reportSocket: broker)
            let handoff = try BarrierHandoff.decode(prepared.descriptorContents)
            let recovery = BarrierSeal.recovery(
                handoff: handoff, device: ReportBrokerClient(path: broker), setting: "emulator:test", directory: data)
            let barrier = Barrier(backend: backend)
            let runtime = try Runtime(
                barrier: barrier, seal: handoff.pinnedProvider(name: "emulator:test"), storageType: "inmem",
                operatorKey: escrowKey, recovery: recovery)
            return (runtime, handoff, barrier)
        }
        let (first, _, firstBarrier) = try runtime(Self.chipA, broker: "/nonexistent")
        _ = try first.initialize()
        try firstBarrier.put("logical/kept", Array("across chips".utf8))

        let socket = directory.path + "/report.sock"
        let listener = try ReportBrokerListener(path: socket, owner: nil)
        defer { listener.stop() }
        try listener.start(device: guest(Self.chipB))
        let (moved, handoff, _) = try runtime(Self.chipB, broker: socket)
        #expect(handoff.fresh.tcb == Self.chipB.tcbVersion.hex)
        #expect(moved.state.sealed && moved.pendingRecovery != nil)
        let request = try #require(moved.pendingRecovery?.request)
        #expect(request.report.measurement == Self.measurement)
        _ = try request.verify(
            verifier: ReportVerifier.amd.trusting(Self.chipB.ark), measurement: Self.measurement,
            extraCertificates: [Self.chipB.ark])
        let escrow = try #require(try Barrier(backend: backend).escrowed())
        let grant = try request.grant(try escrow.open(with: .p384(operatorKey))).armored
        _ = try moved.operatorUnseal(grant: grant)
        #expect(!moved.state.sealed)
        let written = try JSONDecoder().decode(
            BarrierSeal.Pin.self, from: Data(contentsOf: URL(fileURLWithPath: data + "/seal.json")))
        #expect(written == handoff.fresh)
        // The next start on chip B opens the store with the handed key by itself.
        let (again, next, barrier) = try runtime(Self.chipB, broker: socket)
        #expect(next.pinned == next.fresh && !again.state.sealed)
        #expect(try barrier.get("logical/kept") == Array("across chips".utf8))
    }
}

/// vhsmd started as vhsm-init starts it: the keys on descriptor 3, no device.
@Suite struct HandedKeyProcessTests {
    let directory = TemporaryDirectory()

    /// Starts vhsmd with `contents` on descriptor 3 (posix_spawn: Foundation's Process closes every other
    /// descriptor); its console goes to a file.
    func start(_ arguments: [String], contents: [UInt8]) throws -> (pid_t, String) {
        let binary = try #require(VHSMDProcess.binary, "vhsmd is not built beside the test runner")
        let console = directory.path + "/console-\(UUID().uuidString).log"
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        // Close-on-exec at once: a vhsmd another test starts meanwhile must not hold the write end open.
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        #expect(contents.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) } == contents.count)
        close(ends[1])
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[0], 3)
        posix_spawn_file_actions_addopen(&actions, 1, console, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, binary, &actions, nil, argv, environ)
        close(ends[0])
        try #require(status == 0)
        return (pid, console)
    }

    func waitFor(_ text: String, in console: String, pid: pid_t) async throws -> String {
        for _ in 0..<400 {
            let output = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
            if output.contains(text) { return output }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                return (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
    }

    func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func config() throws -> String {
        let path = directory.path + "/vhsmd.json"
        let text =
            #"{"listener": {"address": "127.0.0.1:0", "tls_disable": true}, "storage": {"path": ""#
            + directory.path + #"/data"}, "seal": "sev-guest"}"#
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func vhsmdOpensItsStoreWithTheHandedKeyAndNoDevice() async throws {
        let path = try config()
        let pin = BarrierSeal.Pin(
            provider: "sev-guest", tcb: "0300000000000873", fields: SealMode.measurement.guestFieldSelect.names,
            svn: nil)
        let key = SymmetricKey(size: .bits256)
        let contents = try BarrierHandoff(pinned: pin, fresh: pin, pinnedKey: key, pinnedFailure: nil, freshKey: key)
            .encoded()
        let arguments = ["--config", path, "--barrier-key-fd", "3", "--report-socket", directory.path + "/report.sock"]
        let (pid, console) = try start(arguments, contents: contents)
        var output = try await waitFor("vhsmd: ready on ", in: console, pid: pid)
        #expect(output.contains("not initialised"), "\(output)")
        #expect(output.contains("privileges: uid \(getuid()) gid \(getgid()), NoNewPrivs 0"), "\(output)")
        #expect(
            output.contains("barrier key from vhsm-init (fd 3)") && output.contains("/dev/sev-guest not accessible"))
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("vhsmd: ready on ") })
        let url = String(line.dropFirst("vhsmd: ready on ".count))
        let initialised = try runProgram("/usr/bin/curl", ["-s", "-X", "PUT", "-d", "{}", url + "/v1/sys/init"])
        #expect(initialised.output.contains("root_token"), "\(initialised.output)")
        stop(pid)
        // The next start with the same key unseals by itself; the store was sealed with the handed key.
        let (again, console2) = try start(arguments, contents: contents)
        output = try await waitFor("vhsmd: ready on ", in: console2, pid: again)
        #expect(output.contains(", unsealed"), "\(output)")
        stop(again)
        // Another key does not open it, and without an operator key vhsmd stops with one sentence.
        let other = try BarrierHandoff(
            pinned: pin, fresh: pin, pinnedKey: SymmetricKey(size: .bits256), pinnedFailure: nil,
            freshKey: SymmetricKey(size: .bits256)
        ).encoded()
        let (third, console3) = try start(arguments, contents: other)
        var status: Int32 = 0
        waitpid(third, &status, 0)
        output = (try? String(contentsOfFile: console3, encoding: .utf8)) ?? ""
        #expect(status != 0 && output.contains("does not open"), "\(output)")
    }

    @Test func aMalformedOrMissingDescriptorStopsVHSMD() async throws {
        let path = try config()
        let arguments = ["--config", path, "--barrier-key-fd", "3", "--report-socket", "/x"]
        let (pid, console) = try start(arguments, contents: Array("VHSMBKH0 not a handoff".utf8))
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let output = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
        #expect(status != 0 && output.contains("barrier key descriptor from vhsm-init is malformed"), "\(output)")
        let missing = try runProgram(
            try #require(VHSMDProcess.binary), ["--config", path, "--barrier-key-fd", "9", "--report-socket", "/x"])
        #expect(missing.status != 0 && missing.output.contains("descriptor 9 is not open"), "\(missing.output)")
        let half = try runProgram(try #require(VHSMDProcess.binary), ["--config", path, "--barrier-key-fd", "9"])
        #expect(half.status != 0 && half.output.contains("come together"), "\(half.output)")
    }

    /// Run by hand (no handoff options), config mode asks the device itself, as before: here there is none.
    @Test func configModeByHandStillOpensTheDeviceItself() throws {
        let path = try config()
        let result = try runProgram(try #require(VHSMDProcess.binary), ["--config", path])
        #expect(result.status != 0 && result.output.contains("/dev/sev-guest"), "\(result.output)")
        #expect(!result.output.contains("privileges:"))
    }
}

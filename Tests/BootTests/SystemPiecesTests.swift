import Glibc
import Testing

@testable import Boot

@Suite struct SystemPiecesTests {
    @Test func waitStatusesDecodeLikeTheCMacros() {
        #expect(WaitStatus(rawValue: 0).description == "exit status 0")
        #expect(WaitStatus(rawValue: 0).succeeded)
        #expect(WaitStatus(rawValue: 3 << 8).exitCode == 3)
        #expect(WaitStatus(rawValue: 9).signal == 9)
        #expect(WaitStatus(rawValue: 9).description == "killed by signal 9 (SIGKILL)")
        #expect(WaitStatus(rawValue: 9 | 0x80).signal == 9)
        #expect(WaitStatus(rawValue: 0x137F).exitCode == nil && WaitStatus(rawValue: 0x137F).signal == nil)
    }

    @Test func spawnedProgramsReportHowTheyEnded() throws {
        #expect(try Spawn.run("/bin/sh", arguments: ["-c", "exit 3"], environment: []).exitCode == 3)
        #expect(try Spawn.run("/bin/sh", arguments: ["-c", "kill -TERM $$"], environment: []).signal == SIGTERM)
        let missing = #expect(throws: SystemError.self) {
            try Spawn.run("/nonexistent/mke2fs", arguments: [], environment: [])
        }
        #expect(missing?.errno == ENOENT)
    }

    @Test func childrenStartWithAnEmptySignalMask() throws {
        let directory = try TemporaryDirectory()
        let output = directory.path + "/status"
        // Block a signal in this thread, as PID 1 does; the child must not inherit it.
        var blocked = sigset_t()
        var previous = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGUSR2)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let pid = try Spawn.start(
            "/bin/sh", arguments: ["-c", "exec grep SigBlk /proc/self/status > \(output)"],
            environment: ["PATH=/usr/bin:/bin"], newSession: true)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let text = try Files.readText(output)
        #expect(text.hasPrefix("SigBlk:\t0000000000000000"))
    }

    @Test func ipv4AddressesParseStrictly() {
        #expect(IPv4Address("10.0.2.15")?.description == "10.0.2.15")
        #expect(IPv4Address("10.0.2.15")?.networkOrder == 0x0F02_000A)
        for bad in ["10.0.2", "10.0.2.256", "10.0.02.1", "a.b.c.d", "10..2.1", "1.2.3.4.5", ""] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        #expect(IPv4Interface("10.0.2.15/24")?.netmask.description == "255.255.255.0")
        #expect(IPv4Interface("10.0.2.15/0")?.netmask.description == "0.0.0.0")
        #expect(IPv4Interface("10.0.2.15/32")?.netmask.description == "255.255.255.255")
        #expect(IPv4Interface("10.0.2.15/33") == nil)
        #expect(IPv4Interface("10.0.2.15") == nil)
    }

    @Test func volumeUUIDsAreVersion4AndWellFormed() {
        let uuid = VolumeUUID.make(from: Array(repeating: 0xFF, count: 16))
        #expect(uuid == "ffffffff-ffff-4fff-bfff-ffffffffffff")
        #expect(VolumeUUID.isWellFormed(uuid))
        #expect(VolumeUUID.isWellFormed("0A1B2C3D-0000-4000-8000-00000000000F"))
        #expect(!VolumeUUID.isWellFormed("0a1b2c3d00004000800000000000000f"))
        #expect(!VolumeUUID.isWellFormed("0a1b2c3d-0000-4000-8000-00000000000g"))
    }

    @Test func filesReadProcfsAndListDirectories() throws {
        #expect(try Files.readText("/proc/self/stat").hasPrefix("\(getpid()) "))
        #expect(try Files.list("/proc/self").contains("status"))
        let missing = #expect(throws: SystemError.self) { try Files.read("/nonexistent/init.json") }
        #expect(missing?.description == "open /nonexistent/init.json: No such file or directory (ENOENT)")
        #expect(!Files.waitFor("/nonexistent/dev/vda", milliseconds: 30))
        #expect(Files.waitFor("/proc/self", milliseconds: 0))
    }

    @Test func theMonotonicClockAdvances() {
        let start = Monotonic.now()
        usleep(2000)
        #expect(Monotonic.milliseconds(Monotonic.now() - start) >= 2)
        #expect(Monotonic.milliseconds(.milliseconds(1234)) == 1234)
    }
}

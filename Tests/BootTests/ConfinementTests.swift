import Glibc
import Testing

@testable import Boot

/// The service's child setup, on the host: the seccomp filter and no_new_privs, the unprivileged user, the one
/// inherited descriptor. The children are small programs whose output is read back.
@Suite struct ConfinementTests {
    /// Runs `path` confined (through /bin/sh, which sends its output to a file: the test runner's own descriptors
    /// stay untouched); the output, and how it ended.
    func run(
        _ path: String, _ arguments: [String], confinement: Spawn.Confinement, input: [UInt8]? = nil
    ) throws -> (String, WaitStatus) {
        let directory = try TemporaryDirectory()
        #expect(chmod(directory.path, 0o777) == 0)
        let file = directory.path + "/output"
        var confinement = confinement
        var handoff: [Int32] = [-1, -1]
        if let input {
            try #require(pipe(&handoff) == 0)
            _ = fcntl(handoff[1], F_SETFD, FD_CLOEXEC)
            #expect(input.withUnsafeBytes { write(handoff[1], $0.baseAddress, $0.count) } == input.count)
            close(handoff[1])
            _ = fcntl(handoff[0], F_SETFD, FD_CLOEXEC)
            confinement.inherited = handoff[0]
        }
        defer { if input != nil { close(handoff[0]) } }
        let pid = try Spawn.startConfined(
            "/bin/sh", arguments: ["-c", "exec \"$0\" \"$@\" >\"$OUT\" 2>&1", path] + arguments,
            environment: ["PATH=/usr/bin:/bin", "OUT=\(file)"], confinement: confinement)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let output = (try? Files.readText(file)) ?? ""
        return (output, WaitStatus(rawValue: status))
    }

    static let python = "/usr/bin/python3"

    /// ptrace, mount, unshare, a namespace-making clone, keyctl and bpf are refused with EPERM; clone3 says ENOSYS
    /// (glibc falls back to clone); ordinary calls, threads and processes work; NoNewPrivs is 1 and Seccomp 2.
    @Test(.enabled(if: access(python, X_OK) == 0, "needs python3 to make raw system calls"))
    func theFilterRefusesTheDeniedCallsAndNoNewPrivsIsSet() throws {
        let script = """
            import ctypes, os, threading, subprocess
            libc = ctypes.CDLL(None, use_errno=True)
            def call(name, number, *args):
                result = libc.syscall(number, *args)
                print(name, result, os.strerror(ctypes.get_errno()) if result < 0 else "ok")
            call("ptrace", 101, 0, 0, 0, 0)
            call("mount", 165, b"none", b"/mnt", b"tmpfs", 0, 0)
            call("unshare", 272, 0x10000000)
            call("clone3", 435, 0, 0)
            call("keyctl", 250, 0, 0, 0, 0)
            call("bpf", 321, 0, 0, 0)
            call("getpid", 39)
            t = threading.Thread(target=lambda: print("thread ok")); t.start(); t.join()
            print("child", subprocess.run(["/bin/true"]).returncode)
            status = open("/proc/self/status").read()
            for line in status.splitlines():
                if line.split(":")[0] in ("NoNewPrivs", "Seccomp"): print(line.replace("\\t", " "))
            """
        let (output, status) = try run(Self.python, ["-c", script], confinement: Spawn.Confinement(user: nil))
        #expect(status.succeeded, "\(output)")
        #expect(output.contains("ptrace -1 Operation not permitted"), "\(output)")
        #expect(output.contains("mount -1 Operation not permitted"), "\(output)")
        #expect(output.contains("unshare -1 Operation not permitted"), "\(output)")
        #expect(output.contains("clone3 -1 Function not implemented"), "\(output)")
        #expect(output.contains("keyctl -1 Operation not permitted"), "\(output)")
        #expect(output.contains("bpf -1 Operation not permitted"), "\(output)")
        #expect(output.contains("getpid ") && !output.contains("getpid -1"), "\(output)")
        #expect(output.contains("thread ok") && output.contains("child 0"), "\(output)")
        #expect(output.contains("NoNewPrivs: 1") && output.contains("Seccomp: 2"), "\(output)")
    }

    @Test func withoutConfinementNothingIsFiltered() throws {
        let (output, _) = try run(
            "/bin/grep", ["-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"],
            confinement: Spawn.Confinement(user: nil, seccomp: false))
        #expect(output.contains("NoNewPrivs:\t0") && output.contains("Seccomp:\t0"), "\(output)")
    }

    @Test(.enabled(if: getuid() == 0, "changing the user needs root"))
    func theServiceRunsAsItsUserWithoutGroupsAndInheritsOnlyItsDescriptor() throws {
        let secret = Array("handed over".utf8)
        let (output, status) = try run(
            "/bin/sh",
            [
                "-c",
                "grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp):' /proc/self/status; cat <&3; echo; ls /proc/self/fd",
            ],
            confinement: Spawn.Confinement(user: BootConfig.ServiceUser(uid: 8200, gid: 8201)), input: secret)
        #expect(status.succeeded, "\(output)")
        #expect(output.contains("Uid:\t8200\t8200\t8200\t8200"), "\(output)")
        #expect(output.contains("Gid:\t8201\t8201\t8201\t8201"), "\(output)")
        let groups = output.split(separator: "\n").first { $0.hasPrefix("Groups:") }
        #expect(groups?.dropFirst("Groups:".count).allSatisfy(\.isWhitespace) == true, "\(output)")
        #expect(output.contains("NoNewPrivs:\t1") && output.contains("Seccomp:\t2"), "\(output)")
        #expect(output.contains("handed over"), "\(output)")
        // 0, 1, 2, 3 (the handoff) and ls's own directory descriptor: nothing else of the parent leaked.
        let listed = output.split(separator: "handed over").last.map(String.init) ?? ""
        let numbers = Set(listed.split(whereSeparator: { $0 == "\n" || $0 == " " }).compactMap { Int($0) })
        #expect(numbers.isSubset(of: [0, 1, 2, 3, 4]) && numbers.contains(3), "\(output)")
    }

    @Test func aFailedExecNamesTheStep() throws {
        #expect(throws: SystemError("execve", "/nonexistent/vhsmd", errno: ENOENT)) {
            _ = try Spawn.startConfined(
                "/nonexistent/vhsmd", arguments: [], environment: [], confinement: Spawn.Confinement(user: nil))
        }
    }

    @Test func theDenyListNamesTheCallsTheREADMEDocuments() {
        let denied = SeccompFilter.denied
        for name in [
            "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
            "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf", "perf_event_open",
            "keyctl", "add_key", "request_key", "reboot", "swapon", "swapoff",
        ] {
            #expect(denied.contains(name), "\(name)")
        }
    }

    @Test(.enabled(if: getuid() == 0, "chown needs root"))
    func theServicesTreeIsGivenToItAndTheDeviceTakenAway() throws {
        let directory = try TemporaryDirectory()
        let root = directory.path + "/data"
        #expect(mkdir(root, 0o700) == 0 && mkdir(root + "/tls", 0o700) == 0)
        #expect(creat(root + "/tls/key.pem", 0o600) >= 0)
        #expect(symlink("/etc/passwd", root + "/link") == 0)
        let user = BootConfig.ServiceUser(uid: 8200, gid: 8200)
        #expect(Ownership.give(root, to: user).isEmpty)
        for path in [root, root + "/tls", root + "/tls/key.pem", root + "/link"] {
            var info = stat()
            #expect(lstat(path, &info) == 0 && info.st_uid == 8200 && info.st_gid == 8200, "\(path)")
        }
        var passwd = stat()
        #expect(stat("/etc/passwd", &passwd) == 0 && passwd.st_uid == 0, "a symlink is never followed")
        #expect(Ownership.give(directory.path + "/missing", to: user).isEmpty)
        let device = directory.path + "/device"
        #expect(creat(device, 0o666) >= 0)
        try Ownership.restrictToRoot(device)
        var info = stat()
        #expect(stat(device, &info) == 0 && info.st_mode & 0o777 == 0o600 && info.st_uid == 0)
    }
}

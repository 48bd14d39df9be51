import CLinux
import Glibc

/// posix_spawn(3) and waitpid(2) for the programs PID 1 starts: mke2fs and the service.
enum Spawn {
    /// Starts `path` with `arguments` (argv[1…]) and `environment`. The child gets an empty signal mask and
    /// default dispositions; with `newSession` it leads its own session and process group, so the whole group
    /// can be signalled.
    static func start(
        _ path: String, arguments: [String], environment: [String], newSession: Bool
    ) throws(SystemError) -> pid_t {
        var pid: pid_t = 0
        let status = withCStrings([path] + arguments) { argv in
            withCStrings(environment) { envp in
                clinux_spawn(&pid, path, argv, envp, newSession ? 1 : 0)
            }
        }
        guard status == 0 else { throw SystemError("posix_spawn", path, errno: status) }
        return pid
    }

    /// How a confined child is set up between fork and exec (`clinux_spawn_confined`).
    struct Confinement: Equatable, Sendable {
        /// setgroups(0), setgid, setuid; nil keeps the parent's user (tests of the filter alone).
        var user: BootConfig.ServiceUser?
        /// no_new_privs and the seccomp filter (`SeccompFilter.denied`).
        var seccomp = true
        /// A descriptor of the parent that the child gets as `target`; every other descriptor above 2 is closed.
        var inherited: Int32?
        var target: Int32 = ServiceLayout.descriptor
    }

    /// Starts `path` confined, in its own session, with an empty signal mask and default dispositions. The child's
    /// setup failing (a step of it, or execve) is an error here, with the step named.
    static func startConfined(
        _ path: String, arguments: [String], environment: [String], confinement: Confinement
    ) throws(SystemError) -> pid_t {
        var pid: pid_t = 0
        var step: Int32 = 0
        let status = withCStrings([path] + arguments) { argv in
            withCStrings(environment) { envp in
                clinux_spawn_confined(
                    &pid, path, argv, envp, confinement.inherited ?? -1, confinement.target,
                    confinement.user.map { Int($0.uid) } ?? -1, confinement.user.map { Int($0.gid) } ?? -1,
                    confinement.seccomp ? 1 : 0, &step)
            }
        }
        guard status == 0 else { throw SystemError(Self.stepNames[step] ?? "spawn", path, errno: status) }
        return pid
    }

    /// What the child was doing when it failed (`CLINUX_STEP_*`).
    static let stepNames: [Int32: String] = [
        1: "dup2 (the handoff descriptor) for", 2: "setsid for", 3: "setgroups for", 4: "setgid for",
        5: "setuid for", 6: "prctl(PR_SET_NO_NEW_PRIVS) for", 7: "seccomp (installing the filter) for",
        8: "sigprocmask for", 9: "execve", 10: "fork for",
    ]

    /// Runs `path` to completion and returns how it ended. Only for use before supervision starts (it waits for
    /// this one child).
    static func run(_ path: String, arguments: [String], environment: [String]) throws(SystemError) -> WaitStatus {
        let pid = try start(path, arguments: arguments, environment: environment, newSession: false)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SystemError("waitpid", path) }
        }
        return WaitStatus(rawValue: status)
    }

    /// A NULL-terminated array of C strings for the duration of `body`.
    private static func withCStrings<R>(
        _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R
    ) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// A waitpid(2) status. WIFEXITED and friends are macros Swift cannot import; this decodes the same bits.
struct WaitStatus: Equatable, Sendable, CustomStringConvertible {
    var rawValue: Int32

    /// The exit code, when the process exited.
    var exitCode: Int32? { rawValue & 0x7F == 0 ? (rawValue >> 8) & 0xFF : nil }
    /// The terminating signal, when a signal ended it.
    var signal: Int32? {
        let signal = rawValue & 0x7F
        return signal != 0 && signal != 0x7F ? signal : nil
    }

    var succeeded: Bool { exitCode == 0 }

    /// `exit status 1`, `killed by signal 9 (SIGKILL)`.
    var description: String {
        if let exitCode { return "exit status \(exitCode)" }
        if let signal { return "killed by signal \(signal)" + (Self.signalNames[signal].map { " (\($0))" } ?? "") }
        return "wait status 0x\(String(rawValue, radix: 16))"
    }

    static let signalNames: [Int32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
        10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 30: "SIGPWR",
    ]
}

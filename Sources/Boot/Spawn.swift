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

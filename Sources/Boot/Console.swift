import Glibc

/// The serial console: one line per write(2), unbuffered, so nothing is lost when PID 1 powers off.
enum Console {
    /// Writes `line` and a newline to standard output.
    static func say(_ line: String) {
        write(line + "\n", to: 1)
    }

    /// Writes to standard error (for `--check-config` on a host).
    static func complain(_ line: String) {
        write(line + "\n", to: 2)
    }

    private static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Makes fds 0, 1 and 2 the console when the kernel could not open it for init (no /dev/console in the
    /// initramfs at exec time). Call after devtmpfs is mounted.
    static func attach() {
        guard fcntl(1, F_GETFD) == -1 else { return }
        let fd = open("/dev/console", O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return }
        for target: Int32 in 0...2 where fd != target { dup2(fd, target) }
        if fd > 2 { close(fd) }
    }

    /// Runs one stage and prints `vhsm-init: <stage> <n> ms`.
    static func timed<T>(_ stage: String, _ body: () throws(BootError) -> T) throws(BootError) -> T {
        let start = Monotonic.now()
        let value = try body()
        say("vhsm-init: \(stage) \(Monotonic.milliseconds(Monotonic.now() - start)) ms")
        return value
    }
}

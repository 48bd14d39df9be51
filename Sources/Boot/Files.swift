import Glibc

/// File system calls the boot agent makes on its own behalf: read a small file, write a sysctl, list a
/// directory, wait for a device node. Thin wrappers: each failure is a `SystemError` naming the call and path.
enum Files {
    /// The whole file (procfs and sysfs files report size 0, so this reads until end of file).
    static func read(_ path: String, limit: Int = 16 << 20) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path)
            }
            if count == 0 { return out }
            out += chunk[0..<count]
            guard out.count <= limit else { throw SystemError("read", path, errno: EFBIG) }
        }
    }

    static func readText(_ path: String) throws(SystemError) -> String {
        String(decoding: try read(path), as: UTF8.self)
    }

    /// Writes `text` to an existing file (a sysctl under /proc/sys, a sysfs attribute).
    static func write(_ text: String, to path: String) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC)
        guard fd >= 0 else { throw SystemError("open", path) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw SystemError("write", path) }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Names in a directory, without `.` and `..`, sorted.
    static func list(_ path: String) throws(SystemError) -> [String] {
        guard let directory = opendir(path) else { throw SystemError("opendir", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Creates a directory and its parents; existing ones are fine.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0, errno != EEXIST { throw SystemError("mkdir", prefix) }
        }
    }

    /// Waits until `path` exists (device nodes appear in devtmpfs a little after their driver loads). True when
    /// it appeared within `milliseconds`.
    static func waitFor(_ path: String, milliseconds: Int) -> Bool {
        let deadline = Monotonic.now() + Duration.milliseconds(milliseconds)
        while true {
            if exists(path) { return true }
            if Monotonic.now() >= deadline { return false }
            usleep(10_000)
        }
    }
}

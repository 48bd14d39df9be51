import Glibc

/// What vhsmd runs with, from /proc/self/status, for its start line under vhsm-init: the user and group, the
/// no_new_privs bit and the seccomp mode, and whether the Secure Processor's device opens.
struct ProcessPrivileges: Equatable {
    var uid: String
    var gid: String
    var noNewPrivs: String
    var seccomp: String

    /// The fields of `status` (the text of /proc/self/status); `?` where a field is missing.
    init(status: String) {
        var fields: [String: String] = [:]
        for line in status.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let values = line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " })
            fields[String(line[..<colon])] = values.first.map(String.init)
        }
        uid = fields["Uid"] ?? "?"
        gid = fields["Gid"] ?? "?"
        noNewPrivs = fields["NoNewPrivs"] ?? "?"
        seccomp = fields["Seccomp"] ?? "?"
    }

    static func current() -> ProcessPrivileges {
        var text = ""
        if let file = fopen("/proc/self/status", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 512)
            while fgets(&line, Int32(line.count), file) != nil {
                text += String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return ProcessPrivileges(status: text)
    }

    /// `uid 8200 gid 8200, NoNewPrivs 1, Seccomp 2 (filter)`.
    var description: String {
        let mode = ["0": " (off)", "1": " (strict)", "2": " (filter)"][seccomp] ?? ""
        return "uid \(uid) gid \(gid), NoNewPrivs \(noNewPrivs), Seccomp \(seccomp)\(mode)"
    }

    /// The device a seal setting names: `/dev/sev-guest`, or the emulator's port or socket.
    static func devicePath(seal: String) -> String {
        seal.hasPrefix("emulator:") ? String(seal.dropFirst("emulator:".count)) : "/dev/sev-guest"
    }

    /// nil when `path` does not open read-write (the reason otherwise printed); "open" when it does.
    static func openProbe(_ path: String) -> String? {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd >= 0 {
            close(fd)
            return nil
        }
        return String(cString: strerror(errno))
    }
}

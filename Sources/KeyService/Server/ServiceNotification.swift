#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness protocol (`sd_notify(3)`): when `NOTIFY_SOCKET` names a unix datagram socket (a path, or
/// `@name` for the abstract namespace), vhsmd sends `READY=1` once it accepts connections and `STOPPING=1` when
/// it begins to shut down. Without the variable nothing is sent.
enum ServiceNotification {
    /// Sends `state` (newline-separated `KEY=value` assignments); returns a sentence on failure, nil on success
    /// or when no socket is set.
    @discardableResult
    static func send(_ state: String, socket: String? = currentSocket()) -> String? {
        guard let socket, !socket.isEmpty else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socket.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity, path.first == 0 || path.first == UInt8(ascii: "/") else {
            return "NOTIFY_SOCKET '\(socket)' is not an absolute path or @abstract name shorter than \(capacity) bytes"
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.enumerated() { buffer[index] = byte }
        }
        let descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            return "cannot create a socket for NOTIFY_SOCKET: \(String(cString: strerror(errno)))"
        }
        defer { close(descriptor) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes {
                    sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        guard sent == message.count else {
            return "cannot notify \(socket): \(String(cString: strerror(errno)))"
        }
        return nil
    }

    static func currentSocket() -> String? {
        getenv("NOTIFY_SOCKET").map { String(cString: $0) }
    }
}

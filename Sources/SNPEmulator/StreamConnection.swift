#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one file in SNPEmulator that makes system calls: unix stream sockets and character devices,
/// exact reads and full writes.
struct StreamConnection: ~Copyable {
    let descriptor: Int32
    let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(descriptor) }

    /// Connects to a unix socket, or opens a character device (a virtio-serial port) read-write.
    static func open(_ path: String) throws(EmulatorError) -> StreamConnection {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .socket(path: path, operation: "connect to", errno: errno) }
        if info.st_mode & S_IFMT == S_IFCHR {
            let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw .socket(path: path, operation: "open", errno: errno) }
            return StreamConnection(descriptor: fd, path: path)
        }
        let fd = try unixSocket(path, operation: "connect to") { connect($0, $1, $2) }
        return StreamConnection(descriptor: fd, path: path)
    }

    /// Reads exactly `count` bytes; nil on a clean end of stream before the first byte.
    func read(exactly count: Int) throws(EmulatorError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + done, count - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .socket(path: path, operation: "read from", errno: errno) }
            if n == 0 {
                if done == 0 { return nil }
                throw .protocolViolation("the stream ended in the middle of a frame")
            }
            done += n
        }
        return buffer
    }

    func write(_ bytes: [UInt8]) throws(EmulatorError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .socket(path: path, operation: "write to", errno: errno) }
            done += n
        }
    }

    /// Reads one frame; nil when the peer closed the stream between frames.
    func readFrame() throws(EmulatorError) -> WireProtocol.Frame? {
        try WireProtocol.readFrame { (count: Int) throws(EmulatorError) in try read(exactly: count) }
    }

    static func address(_ path: String) throws(EmulatorError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .socket(path: path, operation: "use (path too long for a unix socket)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        return address
    }
}

/// A listening unix socket.
struct Listener: ~Copyable {
    let descriptor: Int32
    let path: String

    /// Binds `path`. A socket left there by an emulator that is gone (nothing accepts on it) is replaced; a socket
    /// another emulator still serves is refused, and so is anything that is not a socket (it is never removed).
    init(path: String) throws(EmulatorError) {
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw .socketPathTaken(path: path) }
            // The clients' own connect: it succeeds only when another emulator accepts on the socket.
            if (try? StreamConnection.open(path)) != nil { throw .socketInUse(path: path) }
            unlink(path)
        }
        descriptor = try unixSocket(path, operation: "listen on") { fd, address, length in
            bind(fd, address, length) == 0 ? listen(fd, 16) : -1
        }
        self.path = path
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// The next connection's descriptor (owned by the caller, closed with `StreamConnection`).
    func accept() throws(EmulatorError) -> Int32 {
        while true {
            let fd = Glibc.accept(descriptor, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return fd
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw .socket(path: path, operation: "accept on", errno: errno)
        }
    }
}

extension StreamConnection {
    /// Wraps a descriptor the listener accepted.
    static func accepted(_ descriptor: Int32, path: String) -> StreamConnection {
        StreamConnection(descriptor: descriptor, path: path)
    }
}

/// A new unix stream socket on which `setUp` (connect, or bind and listen) ran with the address of `path`;
/// closed again when that fails.
private func unixSocket(
    _ path: String, operation: String, _ setUp: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
) throws(EmulatorError) -> Int32 {
    var address = try StreamConnection.address(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw .socket(path: path, operation: "create a socket for", errno: errno) }
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            setUp(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard rc == 0 else {
        let error = errno
        close(fd)
        throw .socket(path: path, operation: operation, errno: error)
    }
    return fd
}

/// `strerror` text for an errno value.
func errnoDescription(_ value: Int32) -> String { String(cString: strerror(value)) }

import CLinux
import Glibc
public import SNP

/// The report-only broker: PID 1 (vhsm-init) keeps the Secure Processor to itself and answers vhsmd's attestation
/// reports over a unix socket; vhsmd holds no device and cannot ask for a key.
///
/// The protocol (little-endian, one exchange per connection):
/// - request, exactly 68 bytes: the magic `VRB1`, then the 64 bytes of REPORT_DATA. Nothing else can be said: no
///   message type, no VMPL, no key selector, so a key request (MSG_KEY_REQ) cannot be expressed. A connection that
///   sends fewer bytes within the timeout, or more, is closed without an answer.
/// - answer: the magic `VRB1`, a u32 kind (0 = report, 1 = refusal), a u32 body length (at most
///   `maximumBodyCount`), then the body: for a report, MSG_REPORT_RSP (`ReportResponse.byteCount` bytes, the
///   firmware STATUS unchecked as a device returns it) followed by the extended report's certificate table (absent
///   when the host gave none); for a refusal, a UTF-8 sentence.
///
/// The broker serves one connection at a time, gives each `timeoutMilliseconds` to send its request and read the
/// answer, and answers only a peer whose uid is the one it was started for (SO_PEERCRED).
public enum ReportBroker {
    public static let magic: [UInt8] = Array("VRB1".utf8)
    public static let requestCount = 68
    public static let headerCount = 12
    /// The report response and a certificate table as large as the driver takes (16 KiB).
    public static let maximumBodyCount = ReportResponse.byteCount + 0x4000
    public static let timeoutMilliseconds: Int32 = 10_000

    enum Kind: UInt32 {
        case report = 0
        case refusal = 1
    }

    /// The request for `reportData` (64 bytes).
    public static func request(reportData: [UInt8]) throws(ReportBrokerError) -> [UInt8] {
        guard reportData.count == 64 else { throw .badReportData(count: reportData.count) }
        return magic + reportData
    }

    /// The REPORT_DATA of a request; anything but exactly the magic and 64 bytes is refused.
    public static func reportData(fromRequest bytes: [UInt8]) throws(ReportBrokerError) -> [UInt8] {
        guard bytes.count == requestCount else { throw .badRequest("\(bytes.count) bytes, not \(requestCount)") }
        guard Array(bytes[0..<4]) == magic else { throw .badRequest("it does not start with VRB1") }
        return Array(bytes[4...])
    }

    /// The answer to `request` from `device`: an extended report, or a refusal saying why there is none.
    public static func answer(_ request: [UInt8], device: any GuestDevice) -> [UInt8] {
        do {
            let data = try reportData(fromRequest: request)
            let (response, table) = try device.extendedReport(try ReportRequest(reportData: data))
            return encode(.report, response.bytes + (table.entries.isEmpty ? [] : table.bytes))
        } catch {
            return encode(.refusal, Array(String(describing: error).utf8.prefix(1024)))
        }
    }

    static func encode(_ kind: Kind, _ body: [UInt8]) -> [UInt8] {
        var writer = ByteWriter(capacity: headerCount + body.count)
        writer.bytes(magic)
        writer.integer(kind.rawValue)
        writer.integer(UInt32(body.count))
        writer.bytes(body)
        return writer.bytes
    }

    /// The body length an answer's header announces (checked against `maximumBodyCount`) and its kind.
    static func header(_ bytes: [UInt8]) throws(ReportBrokerError) -> (Kind, Int) {
        guard bytes.count == headerCount, Array(bytes[0..<4]) == magic else {
            throw .badAnswer("it does not start with VRB1")
        }
        func word(_ at: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
        }
        guard let kind = Kind(rawValue: word(4)) else { throw .badAnswer("unknown kind \(word(4))") }
        let count = Int(word(8))
        guard count <= maximumBodyCount else {
            throw .badAnswer("a \(count)-byte body (at most \(maximumBodyCount))")
        }
        return (kind, count)
    }

    /// A whole answer (header and body) as the report and certificate table, or the broker's refusal.
    public static func parseAnswer(_ bytes: [UInt8]) throws(ReportBrokerError) -> (ReportResponse, CertificateTable) {
        guard bytes.count >= headerCount else { throw .badAnswer("\(bytes.count) bytes, shorter than its header") }
        let (kind, count) = try header(Array(bytes[0..<headerCount]))
        guard bytes.count == headerCount + count else {
            throw .badAnswer("\(bytes.count - headerCount) body bytes where the header says \(count)")
        }
        let body = Array(bytes[headerCount...])
        switch kind {
        case .refusal: throw .refused(String(decoding: body, as: UTF8.self))
        case .report:
            guard body.count >= ReportResponse.byteCount else {
                throw .badAnswer("a report body of \(body.count) bytes")
            }
            do throws(LayoutError) {
                let response = try ReportResponse(bytes: body[0..<ReportResponse.byteCount])
                let rest = Array(body[ReportResponse.byteCount...])
                return (response, rest.isEmpty ? CertificateTable(entries: []) : try CertificateTable(bytes: rest))
            } catch {
                throw .badAnswer("\(error)")
            }
        }
    }

    /// One exchange on an accepted connection: reads the request (exactly `requestCount` bytes, then end of
    /// stream or nothing more) within the timeout, writes the answer. Never throws: a bad peer is dropped.
    public static func serve(connection fd: Int32, device: any GuestDevice) {
        _ = clinux_socket_timeouts(fd, timeoutMilliseconds)
        guard let request = readExactly(fd, count: requestCount) else { return }
        // One more byte means the peer sent something larger than a request: no answer.
        var extra: UInt8 = 0
        if recv(fd, &extra, 1, Int32(MSG_DONTWAIT)) > 0 { return }
        _ = writeAll(fd, answer(request, device: device))
    }

    static func readExactly(_ fd: Int32, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return buffer
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// A unix socket address for `path`.
    static func address(_ path: String) throws(ReportBrokerError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { throw .socket(path, "name", ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }

    static func withAddress<R>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R
    ) throws(ReportBrokerError) -> R {
        var address = try address(path)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}

/// Why the broker (or a client of it) failed: one sentence each.
public enum ReportBrokerError: Error, Equatable, Sendable, CustomStringConvertible {
    case badReportData(count: Int)
    case badRequest(String)
    case badAnswer(String)
    case refused(String)
    case socket(String, String, Int32)
    case keyRequest(String)

    public var description: String {
        switch self {
        case .badReportData(let count): "a report request needs 64 bytes of REPORT_DATA, not \(count)"
        case .badRequest(let why): "the report broker refuses a request of \(why)"
        case .badAnswer(let why): "the report broker's answer is malformed: \(why)"
        case .refused(let why): "the report broker (vhsm-init) could not get a report: \(why)"
        case .socket(let path, let operation, let code):
            "cannot \(operation) the report broker's socket \(path): \(String(cString: strerror(code))) (is vhsmd "
                + "running under vhsm-init, which serves it?)"
        case .keyRequest(let path):
            "vhsmd asks the Secure Processor for no key: its reports come from the report broker at \(path), which "
                + "answers reports only (the barrier key was handed over by vhsm-init at start)"
        }
    }
}

/// The broker's listening socket and the thread that serves it (in PID 1).
public final class ReportBrokerListener: Sendable {
    public let path: String
    let descriptor: Int32

    /// Binds `path` (an old socket file there is removed), owned by `owner` (uid, gid) with mode 0600 so only that
    /// user (and root) can connect, and listens.
    public init(path: String, owner: (uid: UInt32, gid: UInt32)?) throws(ReportBrokerError) {
        self.path = path
        _ = unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(path, "create", errno) }
        let old = umask(0o177)
        let bound = try ReportBroker.withAddress(path) { bind(fd, $0, $1) }
        umask(old)
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw .socket(path, "bind", code)
        }
        if let owner, chown(path, owner.uid, owner.gid) != 0 {
            let code = errno
            close(fd)
            throw .socket(path, "chown", code)
        }
        guard chmod(path, 0o600) == 0, listen(fd, 4) == 0 else {
            let code = errno
            close(fd)
            throw .socket(path, "listen on", code)
        }
        descriptor = fd
        allowedUID = owner?.uid
    }

    let allowedUID: UInt32?

    /// Serves connections one at a time, for ever, on a thread with every signal blocked (PID 1 reads its signals
    /// from a signalfd; none may be delivered to this thread).
    public func start(device: any GuestDevice) throws(ReportBrokerError) {
        let context = Unmanaged.passRetained(BrokerThread(listener: self, device: device)).toOpaque()
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { context in
                let box = Unmanaged<BrokerThread>.fromOpaque(context!).takeRetainedValue()
                box.listener.acceptForever(device: box.device)
                return nil
            }, context)
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard status == 0 else {
            Unmanaged<BrokerThread>.fromOpaque(context).release()
            throw .socket(path, "start a thread for", status)
        }
        pthread_detach(thread)
    }

    /// Accepts and serves until the socket is closed.
    public func acceptForever(device: any GuestDevice) {
        while true {
            let fd = accept(descriptor, nil, nil)
            if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE { continue }
                return
            }
            if let allowedUID, clinux_peer_uid(fd) != Int(allowedUID) {
                close(fd)
                continue
            }
            ReportBroker.serve(connection: fd, device: device)
            close(fd)
        }
    }

    /// Stops accepting (tests).
    public func stop() { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
}

private final class BrokerThread: Sendable {
    let listener: ReportBrokerListener
    let device: any GuestDevice
    init(listener: ReportBrokerListener, device: any GuestDevice) {
        self.listener = listener
        self.device = device
    }
}

/// vhsmd's Secure Processor when vhsm-init runs it: reports from the broker, and no key, ever.
public struct ReportBrokerClient: GuestDevice {
    public let path: String
    public var name: String { "the report broker at \(path)" }

    public init(path: String) { self.path = path }

    public func report(_ request: ReportRequest) throws -> ReportResponse {
        try extendedReport(request).0
    }

    public func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable) {
        guard request.vmpl == 0, request.keySelect == 0 else {
            throw ReportBrokerError.badRequest("VMPL \(request.vmpl), KEY_SEL \(request.keySelect) (only 0 and 0)")
        }
        let bytes = try ReportBroker.request(reportData: request.reportData)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ReportBrokerError.socket(path, "create", errno) }
        defer { Glibc.close(fd) }
        _ = clinux_socket_timeouts(fd, ReportBroker.timeoutMilliseconds * 3)
        let connected = try ReportBroker.withAddress(path) { connect(fd, $0, $1) }
        guard connected == 0 else { throw ReportBrokerError.socket(path, "connect to", errno) }
        guard ReportBroker.writeAll(fd, bytes) else { throw ReportBrokerError.socket(path, "write to", errno) }
        guard let head = ReportBroker.readExactly(fd, count: ReportBroker.headerCount) else {
            throw ReportBrokerError.badAnswer("the broker closed the connection without answering")
        }
        let (_, count) = try ReportBroker.header(head)
        guard let body = count == 0 ? [] : ReportBroker.readExactly(fd, count: count) else {
            throw ReportBrokerError.badAnswer("the answer ended before its \(count)-byte body")
        }
        return try ReportBroker.parseAnswer(head + body)
    }

    /// Always refused: vhsmd derives no key.
    public func derivedKey(_ request: DerivedKeyRequest) throws -> DerivedKeyResponse {
        throw ReportBrokerError.keyRequest(path)
    }
}

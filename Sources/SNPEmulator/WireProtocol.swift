import SNP

/// The framed protocol between `vhsm emulator serve` and its guest-side client, over a stream (a unix socket,
/// or the virtio-serial port QEMU connects to it).
///
/// Every frame: magic `VSNP` (4), version 1 (u8), type (u8), reserved u16 0, payload length u32 LE, payload.
/// Requests carry the firmware messages unchanged; responses use the request type with bit 7 set.
public enum WireProtocol {
    public static let magic: [UInt8] = Array("VSNP".utf8)
    public static let version: UInt8 = 1
    public static let headerCount = 12
    /// Larger payloads are a protocol violation (the largest real one is a report plus a 16 KiB table).
    public static let maximumPayload = 64 * 1024
    /// The kernel's limit for the extended-report certificate buffer.
    public static let maximumCertificateBuffer = 0x4000

    public enum FrameType: UInt8, Sendable {
        /// MSG_REPORT_REQ (96 bytes) → MSG_REPORT_RSP (0x4C0 bytes).
        case report = 0x01
        /// MSG_REPORT_REQ ‖ u32 certificate buffer size → u32 status (0 ok, 1 buffer too small) ‖ u32 needed size
        /// ‖ MSG_REPORT_RSP ‖ certificate table (only when status is 0).
        case extendedReport = 0x02
        /// MSG_KEY_REQ (32 bytes) → MSG_KEY_RSP (64 bytes).
        case derivedKey = 0x03
        case reportResponse = 0x81
        case extendedReportResponse = 0x82
        case derivedKeyResponse = 0x83
        /// A UTF-8 sentence: the peer broke protocol.
        case error = 0xFF
    }

    public struct Frame: Equatable, Sendable {
        public var type: FrameType
        public var payload: [UInt8]

        public init(type: FrameType, payload: [UInt8]) {
            self.type = type
            self.payload = payload
        }

        public var bytes: [UInt8] {
            var w = ByteWriter(capacity: WireProtocol.headerCount + payload.count)
            w.bytes(WireProtocol.magic)
            w.integer(WireProtocol.version)
            w.integer(type.rawValue)
            w.reserved(2)
            w.integer(UInt32(payload.count))
            w.bytes(payload)
            return w.bytes
        }

        /// Reads the header; returns the type and the payload length still to read.
        public static func header(_ bytes: [UInt8]) throws(EmulatorError) -> (FrameType, Int) {
            var r = ByteReader(bytes)
            do {
                guard try r.bytes(4) == WireProtocol.magic else { throw EmulatorError.protocolViolation("bad magic") }
                let version: UInt8 = try r.integer()
                guard version == WireProtocol.version else {
                    throw EmulatorError.protocolViolation("frame version \(version), expected \(WireProtocol.version)")
                }
                let raw: UInt8 = try r.integer()
                guard let type = FrameType(rawValue: raw) else {
                    throw EmulatorError.protocolViolation("unknown frame type 0x\(String(raw, radix: 16))")
                }
                try r.reserved(2)
                let length = Int(try r.integer(UInt32.self))
                guard length <= WireProtocol.maximumPayload else {
                    throw EmulatorError.protocolViolation("payload of \(length) bytes is above the 64 KiB limit")
                }
                return (type, length)
            } catch let error as EmulatorError {
                throw error
            } catch {
                throw .protocolViolation("malformed frame header: \(error)")
            }
        }
    }

    /// Reads one frame through `read`, which returns exactly the bytes asked for, nil at a clean end of stream
    /// before the first of them, or throws when the stream ends inside them. Nothing larger than the 12-byte
    /// header and a payload of at most `maximumPayload` bytes is ever asked for. Nil when the peer closed the
    /// stream between frames.
    public static func readFrame(
        _ read: (_ count: Int) throws(EmulatorError) -> [UInt8]?
    ) throws(EmulatorError) -> Frame? {
        guard let header = try read(headerCount) else { return nil }
        let (type, length) = try Frame.header(header)
        guard let payload = length == 0 ? [] : try read(length) else {
            throw .protocolViolation("the stream ended before the payload")
        }
        return Frame(type: type, payload: payload)
    }

    /// One connection as `vhsm emulator serve` runs it: reads request frames through `read` (see `readFrame`)
    /// and writes each answer through `write` until the peer closes. A protocol violation is answered with an
    /// error frame and ends the session; so does a failed write.
    public static func serve(
        read: (_ count: Int) throws(EmulatorError) -> [UInt8]?, write: ([UInt8]) throws(EmulatorError) -> Void,
        guest: EmulatedGuest
    ) {
        while true {
            do throws(EmulatorError) {
                guard let frame = try readFrame(read) else { return }
                try write(respond(to: frame, guest: guest).bytes)
            } catch {
                let reply = Frame(type: .error, payload: Array(error.description.utf8))
                try? write(reply.bytes)
                return
            }
        }
    }

    /// The emulator's answer to one request frame.
    public static func respond(to frame: Frame, guest: EmulatedGuest) -> Frame {
        switch frame.type {
        case .report:
            return Frame(type: .reportResponse, payload: guest.report(requestBytes: frame.payload).bytes)
        case .derivedKey:
            var response = guest.derivedKey(requestBytes: frame.payload)
            defer { response.zeroize() }
            return Frame(type: .derivedKeyResponse, payload: response.bytes)
        case .extendedReport:
            guard frame.payload.count == ReportRequest.byteCount + 4 else {
                return Frame(type: .error, payload: Array("extended report request must be 100 bytes".utf8))
            }
            var reader = ByteReader(frame.payload.suffix(4))
            let bufferSize = Int((try? reader.integer(UInt32.self)) ?? 0)
            let table: CertificateTable
            do { table = try guest.certificateTable() } catch {
                return Frame(type: .error, payload: Array("cannot build the certificate table: \(error)".utf8))
            }
            let tableBytes = table.bytes
            let needed = (tableBytes.count + 4095) / 4096 * 4096
            var w = ByteWriter()
            if bufferSize < tableBytes.count {
                // As the hypervisor does: SNP_GUEST_VMM_ERR_INVALID_LEN and the size that would do.
                w.integer(UInt32(1))
                w.integer(UInt32(needed))
                return Frame(type: .extendedReportResponse, payload: w.bytes)
            }
            w.integer(UInt32(0))
            w.integer(UInt32(needed))
            w.bytes(guest.report(requestBytes: Array(frame.payload.prefix(ReportRequest.byteCount))).bytes)
            w.bytes(tableBytes)
            return Frame(type: .extendedReportResponse, payload: w.bytes)
        default:
            return Frame(type: .error, payload: Array("frame type \(frame.type) is not a request".utf8))
        }
    }
}

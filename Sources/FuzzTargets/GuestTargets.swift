import CLinux
import Foundation
import SNP
import SNPEmulator
import SNPGuest
import SystemPackage

/// What the host writes to the guest's Secure Processor link: the emulator's wire frames as its server reads them,
/// and the answers of the sev-guest driver (the ioctl seam) as `SEVGuestDevice` reads them.
enum GuestTargets {
    // MARK: emulator-frames

    /// One emulated chip and guest per process: minting a chip (two RSA-4096 keys) is slow, and the fuzzer calls
    /// `run` millions of times.
    struct Emulated: Sendable {
        var guest: EmulatedGuest
        var verifier: ReportVerifier
        var vcek: AMDCertificate
        var ask: AMDCertificate
    }

    private static let emulated = MadeOnce<Emulated>()

    static func emulatedGuest() throws(FuzzFinding) -> Emulated {
        try emulated.value { () throws(FuzzFinding) in try makeEmulatedGuest() }
    }

    private static func makeEmulatedGuest() throws(FuzzFinding) -> Emulated {
        do {
            let chip = try ChipState.create(product: .milan)
            let guest = try EmulatedGuest(
                chip: chip,
                launch: LaunchContext(
                    measurement: Array(repeating: 0x4D, count: 48), policy: GuestPolicy(rawValue: 0x30000)))
            let table = try guest.certificateTable()
            guard let vcekBytes = table[.vcek], let askBytes = table[.ask] else {
                throw FuzzFinding("emulator-frames", "the emulated chip's certificate table lacks its VCEK or ASK")
            }
            let made = Emulated(
                guest: guest, verifier: ReportVerifier(roots: [chip.ark]),
                vcek: try AMDCertificate(derEncoded: vcekBytes), ask: try AMDCertificate(derEncoded: askBytes))
            return made
        } catch let error as FuzzFinding {
            throw error
        } catch {
            throw FuzzFinding("emulator-frames", "cannot make the emulated chip: \(error)")
        }
    }

    /// The bytes a client sent, as the server's exact reads see them (`StreamConnection.read(exactly:)`): nil at the
    /// end between reads, a protocol violation when the stream ends inside one.
    final class Stream {
        let bytes: [UInt8]
        var offset = 0
        var largestRead = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        func read(_ count: Int) throws(EmulatorError) -> [UInt8]? {
            largestRead = max(largestRead, count)
            if offset == bytes.count { return nil }
            guard bytes.count - offset >= count else {
                offset = bytes.count
                throw .protocolViolation("the stream ended in the middle of a frame")
            }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }
    }

    /// `WireProtocol.serve` (what `vhsm emulator serve` runs on each connection) fed the input as the client's
    /// byte stream. Checks: every request frame it decodes re-encodes to exactly the bytes it was read from; no
    /// read asks for more than a header plus the 64 KiB payload bound; every answer is one well-formed frame of
    /// the request's response type (or an error frame, after which the session ends); a report answer parses and
    /// its report verifies against the emulated chip with the request's REPORT_DATA and VMPL; an extended answer
    /// is either "buffer too small" with a page-rounded size or a report plus a certificate table that parses.
    static let emulatorFrames = FuzzTarget(
        name: "emulator-frames",
        summary: "WireProtocol.serve (the emulator server's frame loop) on arbitrary client streams",
        prepare: { () throws(FuzzFinding) in _ = try emulatedGuest() },
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let name = "emulator-frames"
            let emulated = try emulatedGuest()
            let stream = Stream(input)
            var frames: [(start: Int, end: Int)] = []
            var written: [[UInt8]] = []
            // Each answer is written right after the bytes it answers were read: what was read since the previous
            // answer is the request it answers (or the broken rest of the stream, for a protocol violation).
            var frameStart = 0
            WireProtocol.serve(
                read: { (count: Int) throws(EmulatorError) in try stream.read(count) },
                write: { (bytes: [UInt8]) throws(EmulatorError) in
                    frames.append((frameStart, stream.offset))
                    written.append(bytes)
                    frameStart = stream.offset
                }, guest: emulated.guest)
            guard stream.largestRead <= WireProtocol.maximumPayload else {
                throw FuzzFinding(name, "a read of \(stream.largestRead) bytes, above the 64 KiB payload bound")
            }
            for (index, answer) in written.enumerated() {
                guard answer.count >= WireProtocol.headerCount,
                    let (type, length) = try? WireProtocol.Frame.header(Array(answer.prefix(WireProtocol.headerCount))),
                    length == answer.count - WireProtocol.headerCount
                else { throw FuzzFinding(name, "answer \(index) is not one well-formed frame") }
                let payload = Array(answer.dropFirst(WireProtocol.headerCount))
                let consumed = Array(input[frames[index].start..<frames[index].end])
                let isLast = index == written.count - 1
                // Only a protocol violation (an error frame that ends the session) may answer bytes that are not
                // one whole frame; any other answer answers a frame, which re-encodes to exactly its bytes.
                guard let (requestType, requestLength) = try? WireProtocol.Frame.header(Array(consumed.prefix(12))),
                    consumed.count == WireProtocol.headerCount + requestLength
                else {
                    guard type == .error, isLast else {
                        throw FuzzFinding(name, "answer \(index) (\(type)) answers bytes that are no whole frame")
                    }
                    continue
                }
                let decoded = WireProtocol.Frame(type: requestType, payload: Array(consumed.dropFirst(12)))
                guard decoded.bytes == consumed else {
                    throw FuzzFinding(name, "request frame \(index) does not re-encode to the bytes it was read from")
                }
                if type == .error {
                    // The emulator refuses a frame that is no request, and an extended request of the wrong size.
                    let refusable =
                        ![.report, .derivedKey, .extendedReport].contains(requestType)
                        || (requestType == .extendedReport && requestLength != ReportRequest.byteCount + 4)
                    guard refusable else {
                        throw FuzzFinding(name, "a well-formed \(requestType) request was answered with an error")
                    }
                    continue
                }
                try checkAnswer(type: type, payload: payload, to: decoded, emulated: emulated)
            }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            let reportData = Array(try data.read("snp/milan_v2_gsg_report.bin", for: "emulator-frames")[0x50..<0x90])
            func frame(_ type: WireProtocol.FrameType, _ payload: [UInt8]) -> [UInt8] {
                WireProtocol.Frame(type: type, payload: payload).bytes
            }
            guard let request = try? ReportRequest(reportData: reportData, vmpl: 1, keySelect: 1).bytes else {
                throw FuzzFinding("emulator-frames", "cannot build a report request")
            }
            let key = DerivedKeyRequest(root: .vcek, guestFieldSelect: .measurement).bytes
            let extended = { (size: UInt32) in request + withUnsafeBytes(of: size.littleEndian) { Array($0) } }
            return [
                frame(.report, request),
                frame(.derivedKey, key),
                frame(.extendedReport, extended(4096)),
                frame(.extendedReport, extended(0x4000)),
                frame(.report, request) + frame(.derivedKey, key) + frame(.extendedReport, extended(0x4000)),
                frame(.reportResponse, []),
                frame(.report, Array(request.prefix(40))),
                Array(frame(.derivedKey, key).prefix(20)),
            ]
        })

    private static func checkAnswer(
        type: WireProtocol.FrameType, payload: [UInt8], to request: WireProtocol.Frame, emulated: Emulated
    ) throws(FuzzFinding) {
        let name = "emulator-frames"
        guard type.rawValue == request.type.rawValue | 0x80 else {
            throw FuzzFinding(name, "a \(request.type) request was answered with a \(type) frame")
        }
        switch type {
        case .reportResponse:
            guard let response = try? ReportResponse(bytes: payload), payload.count == ReportResponse.byteCount else {
                throw FuzzFinding(name, "a report answer does not parse as MSG_REPORT_RSP")
            }
            try checkReport(response, request: request.payload, emulated: emulated)
        case .derivedKeyResponse:
            guard let response = try? DerivedKeyResponse(bytes: payload) else {
                throw FuzzFinding(name, "a key answer does not parse as MSG_KEY_RSP")
            }
            if (try? DerivedKeyRequest(bytes: request.payload)) == nil, response.status != .invalidParam {
                throw FuzzFinding(name, "a malformed MSG_KEY_REQ was answered with \(response.status)")
            }
            if response.status != .success, response.key.contains(where: { $0 != 0 }) {
                throw FuzzFinding(name, "a refused key request carries key bytes")
            }
        case .extendedReportResponse:
            var reader = ByteReader(payload)
            guard let status: UInt32 = try? reader.integer(), let needed: UInt32 = try? reader.integer(),
                needed % 4096 == 0
            else { throw FuzzFinding(name, "an extended answer has no status and page-rounded size") }
            if status == 1 {
                guard reader.remaining == 0 else { throw FuzzFinding(name, "a 'too small' answer carries data") }
                return
            }
            guard status == 0, let reportBytes = try? reader.bytes(ReportResponse.byteCount),
                let response = try? ReportResponse(bytes: reportBytes),
                let table = try? CertificateTable(bytes: reader.bytes(reader.remaining)),
                table.bytes.count <= Int(needed), table[.vcek] != nil
            else { throw FuzzFinding(name, "an extended answer does not parse as status, report and table") }
            try checkReport(
                response, request: Array(request.payload.prefix(ReportRequest.byteCount)), emulated: emulated)
        default:
            throw FuzzFinding(name, "answered with a \(type) frame")
        }
    }

    /// A report answer: INVALID_PARAM (or INVALID_KEY for a VLEK) for what the firmware refuses, else a report
    /// that verifies against the chip and carries the request's REPORT_DATA and VMPL.
    private static func checkReport(
        _ response: ReportResponse, request bytes: [UInt8], emulated: Emulated
    ) throws(FuzzFinding) {
        let name = "emulator-frames"
        guard let request = try? ReportRequest(bytes: bytes) else {
            guard response.status == .invalidParam, response.report == nil else {
                throw FuzzFinding(name, "a malformed MSG_REPORT_REQ was answered with \(response.status)")
            }
            return
        }
        guard response.status == .success else {
            guard response.report == nil, [.invalidParam, .invalidKey].contains(response.status) else {
                throw FuzzFinding(name, "a refused report request was answered with \(response.status)")
            }
            return
        }
        guard let report = response.report, report.reportData == request.reportData, report.vmpl == request.vmpl
        else { throw FuzzFinding(name, "a report does not carry the request's REPORT_DATA and VMPL") }
        do {
            _ = try emulated.verifier.verify(report, endorsement: emulated.vcek, candidates: [emulated.ask], at: Date())
        } catch {
            throw FuzzFinding(name, "an emulated report does not verify against its chip: \(error)")
        }
    }

    // MARK: snp-guest-ioctl

    /// The ioctl's answer, as a malicious host (through the kernel) can shape it: per call, the errno, exitinfo2,
    /// the certs_len written back, the response buffer and the certificate blob. Read from the input in that
    /// order; when the input runs out, every further call fails with EIO before reaching the firmware, so a script
    /// always ends.
    struct KernelScript {
        struct Answer {
            var errno: Errno?
            var exitinfo2: UInt64
            var certificatesLength: UInt32?
            var response: [UInt8]
            var certificates: [UInt8]
        }

        var answers: [Answer] = []

        static let errnos: [Errno?] = [
            nil, .ioError, .ioError, .interrupted, .inappropriateIOCTLForDevice, .timedOut, .invalidArgument,
            .noSuchAddressOrDevice,
        ]

        init(_ input: ArraySlice<UInt8>) {
            var reader = Reader(input)
            while !reader.isEmpty, answers.count < 8 {
                let control = reader.byte()
                var answer = Answer(
                    errno: Self.errnos[Int(control & 7)], exitinfo2: 0, certificatesLength: nil, response: [],
                    certificates: [])
                // Bits 3–4: exitinfo2 as the interesting values or 8 bytes of input.
                switch control >> 3 & 3 {
                case 0: answer.exitinfo2 = 0
                case 1: answer.exitinfo2 = UInt64(1) << 32  // INVALID_LEN
                case 2: answer.exitinfo2 = UInt64(reader.byte()) | UInt64(reader.byte()) << 32
                default: answer.exitinfo2 = reader.uint64()
                }
                if control & 0x20 != 0 {
                    answer.certificatesLength = UInt32(reader.uint16()) << ((control >> 6 & 1) * 4)
                }
                answer.response = reader.chunk()
                answer.certificates = control & 0x80 != 0 ? reader.chunk() : []
                answers.append(answer)
            }
        }

        struct Reader {
            var bytes: ArraySlice<UInt8>
            init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
            var isEmpty: Bool { bytes.isEmpty }
            mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }
            mutating func uint16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
            mutating func uint64() -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(byte()) << (8 * $1) } }
            /// A u16 length, then that many bytes (or what is left).
            mutating func chunk() -> [UInt8] {
                let count = min(Int(uint16()), bytes.count)
                defer { bytes = bytes.dropFirst(count) }
                return Array(bytes.prefix(count))
            }
        }
    }

    /// Stands in for the sev-guest driver as a hostile host makes it answer: writes the scripted response over the
    /// whole `snp_*_resp` buffer and the scripted certificate blob over the whole `certs_len` the caller declared
    /// (so AddressSanitizer sees any declared length larger than the buffer behind it).
    final class FakeDriver: @unchecked Sendable {
        let script: KernelScript
        private let lock = NSLock()
        private var index = 0
        private(set) var declaredCertificateBuffers: [Int] = []

        init(_ script: KernelScript) { self.script = script }

        var transport: IoctlTransport {
            IoctlTransport { [self] _, request, argument in
                lock.lock()
                defer { lock.unlock() }
                let answer =
                    index < script.answers.count
                    ? script.answers[index]
                    : .init(errno: .ioError, exitinfo2: 0xff, certificatesLength: nil, response: [], certificates: [])
                index += 1
                guard argument.pointee.msg_version == 1 else { return .invalidArgument }
                let responseSize: Int
                switch request {
                case UInt(CLINUX_SNP_GET_REPORT), UInt(CLINUX_SNP_GET_EXT_REPORT):
                    responseSize = MemoryLayout<snp_report_resp>.size
                case UInt(CLINUX_SNP_GET_DERIVED_KEY): responseSize = MemoryLayout<snp_derived_key_resp>.size
                default: return .inappropriateIOCTLForDevice
                }
                if let response = UnsafeMutableRawPointer(bitPattern: UInt(argument.pointee.resp_data)) {
                    let count = min(answer.response.count, responseSize)
                    response.initializeMemory(as: UInt8.self, repeating: 0, count: responseSize)
                    answer.response.withUnsafeBytes { response.copyMemory(from: $0.baseAddress!, byteCount: count) }
                }
                if request == UInt(CLINUX_SNP_GET_EXT_REPORT),
                    let extended = UnsafeMutablePointer<snp_ext_report_req>(bitPattern: UInt(argument.pointee.req_data))
                {
                    let declared = Int(extended.pointee.certs_len)
                    declaredCertificateBuffers.append(declared)
                    if let buffer = UnsafeMutableRawPointer(bitPattern: UInt(extended.pointee.certs_address)) {
                        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: declared)
                        let count = min(answer.certificates.count, declared)
                        answer.certificates.withUnsafeBytes {
                            buffer.copyMemory(from: $0.baseAddress!, byteCount: count)
                        }
                    }
                    // The driver writes certs_len back only with the host's INVALID_LEN (the size the host wants).
                    if let length = answer.certificatesLength, answer.errno == .ioError,
                        answer.exitinfo2 == UInt64(1) << 32
                    {
                        extended.pointee.certs_len = length
                    }
                }
                argument.pointee.exitinfo2 = answer.exitinfo2
                return answer.errno
            }
        }
    }

    /// `SEVGuestDevice` (report, extended report, derived key) over a driver that answers from the input. It
    /// either throws its typed `GuestDeviceError` or returns a response that parses: a SUCCESS report that
    /// serialises back to itself, a certificate table that reparses equal, a 32-byte key that is zero unless
    /// SUCCESS. Every certificate buffer it declares is whole pages, at most 16 KiB (the driver's limit).
    static let snpGuestIoctl = FuzzTarget(
        name: "snp-guest-ioctl",
        summary: "SEVGuestDevice over a hostile sev-guest driver: typed error or a response that parses",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let name = "snp-guest-ioctl"
            guard let operation = input.first else { return }
            let driver = FakeDriver(KernelScript(input.dropFirst()))
            let device = SEVGuestDevice(path: "/dev/null", transport: driver.transport)
            guard let request = try? ReportRequest(reportData: Array(repeating: 0xA5, count: 64)) else {
                throw FuzzFinding(name, "cannot build a report request")
            }
            switch operation % 3 {
            case 0:
                switch Result(catching: { () throws(GuestDeviceError) in try device.report(request) }) {
                case .success(let response): try checkResponse(response)
                case .failure(let error): try checkSentence(error)
                }
            case 1:
                switch Result(catching: { () throws(GuestDeviceError) in try device.extendedReport(request) }) {
                case .success(let (response, table)):
                    try checkResponse(response)
                    guard (try? CertificateTable(bytes: table.bytes)) == table else {
                        throw FuzzFinding(name, "a returned certificate table does not reparse to itself")
                    }
                    if response.status != .success, !table.entries.isEmpty {
                        throw FuzzFinding(name, "a refused extended report came with certificates")
                    }
                case .failure(let error): try checkSentence(error)
                }
            default:
                let keyRequest = DerivedKeyRequest(root: .vcek, guestFieldSelect: .measurement)
                switch Result(catching: { () throws(GuestDeviceError) in try device.derivedKey(keyRequest) }) {
                case .success(let response):
                    guard response.key.count == 32, (try? DerivedKeyResponse(bytes: response.bytes)) == response else {
                        throw FuzzFinding(name, "a derived key response does not reparse to itself")
                    }
                case .failure(let error): try checkSentence(error)
                }
            }
            for declared in driver.declaredCertificateBuffers
            where declared == 0 || declared % 4096 != 0 || declared > 0x4000 {
                throw FuzzFinding(name, "declared a \(declared)-byte certificate buffer to the driver")
            }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            let reportBytes = try data.read("snp/milan_v2_gsg_report.bin", for: "snp-guest-ioctl")
            guard let report = try? AttestationReport(bytes: reportBytes) else {
                throw FuzzFinding("snp-guest-ioctl", "snp/milan_v2_gsg_report.bin does not parse")
            }
            let response = ReportResponse(status: .success, report: report).bytes
            let refused = ReportResponse(status: .invalidParam, report: nil).bytes
            let vcek = try data.read("snp/milan_v2_gsg_vcek.der", for: "snp-guest-ioctl")
            guard let ask = try? AMDCertificate(bytes: data.read("snp/ask_milan.pem", for: "snp-guest-ioctl")),
                let ark = try? AMDCertificate(bytes: data.read("snp/ark_milan.pem", for: "snp-guest-ioctl"))
            else { throw FuzzFinding("snp-guest-ioctl", "snp/ask_milan.pem or ark_milan.pem does not parse") }
            let table = CertificateTable(entries: [
                .init(kind: .vcek, data: vcek), .init(kind: .ask, data: ask.derRepresentation),
                .init(kind: .ark, data: ark.derRepresentation),
            ]).bytes
            func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
            func chunk(_ bytes: [UInt8]) -> [UInt8] { u16(bytes.count) + bytes }
            let key = DerivedKeyResponse(status: .success, key: Array(repeating: 0x6B, count: 32)).bytes
            return [
                // Report: success, refused, EIO with a firmware status.
                [0, 0x00] + chunk(response),
                [0, 0x00] + chunk(refused),
                [0, 0x11, 0x16, 0x00] + chunk([]),
                // Extended report: one page too small (INVALID_LEN, asks for 16 KiB), then the table.
                [1, 0x29] + u16(0x4000) + chunk([]) + [0x80] + chunk(response) + chunk(table),
                [1, 0x80] + chunk(response) + chunk(table),
                [1, 0x29] + u16(0x1234) + chunk([]),
                [1, 0x03] + chunk([]) + [0x80] + chunk(response) + chunk(Array(table.prefix(100))),
                // Derived key: success, ENOTTY.
                [2, 0x00] + chunk(key),
                [2, 0x04] + chunk([]),
            ]
        })

    private static func checkResponse(_ response: ReportResponse) throws(FuzzFinding) {
        let name = "snp-guest-ioctl"
        if response.status == .success {
            guard let report = response.report, (try? AttestationReport(bytes: report.bytes)) == report else {
                throw FuzzFinding(name, "a SUCCESS response without a report that reparses to itself")
            }
        } else if response.report != nil {
            throw FuzzFinding(name, "a refused response carries a report")
        }
    }

    /// The typed error reads as a sentence that names the device.
    private static func checkSentence(_ error: GuestDeviceError) throws(FuzzFinding) {
        guard error.description.contains("/dev/null") else {
            throw FuzzFinding("snp-guest-ioctl", "the error '\(error)' does not name the device")
        }
    }
}

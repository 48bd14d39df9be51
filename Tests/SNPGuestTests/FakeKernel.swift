import CLinux
import SNP
import Synchronization
import SystemPackage

@testable import SNPGuest

/// A stand-in for the sev-guest driver behind `IoctlTransport`: it records every call and answers from a script,
/// reading and writing the caller's buffers through the pointers in `snp_guest_request_ioctl` as the driver does.
final class FakeKernel: Sendable {
    /// What one ioctl carried.
    struct Call: Sendable {
        var request: UInt
        var messageVersion: UInt8
        /// The bytes of the request struct `req_data` points at.
        var requestBytes: [UInt8]
    }

    /// One step of the script: answer call number `index` (from 0) through `ioctl`; nil means success.
    typealias Answer = @Sendable (_ index: Int, _ ioctl: GuestIoctl) -> Errno?

    private let recorded = Mutex<[Call]>([])
    private let answer: Answer

    init(_ answer: @escaping Answer) { self.answer = answer }

    var calls: [Call] { recorded.withLock { $0 } }

    /// A device whose ioctls reach this fake; `/dev/null` opens read-write everywhere.
    var device: SEVGuestDevice { SEVGuestDevice(path: "/dev/null", transport: transport) }

    var transport: IoctlTransport {
        IoctlTransport { [self] _, request, argument in
            let ioctl = GuestIoctl(request: request, argument: argument)
            let index = recorded.withLock { calls in
                calls.append(
                    Call(
                        request: request, messageVersion: argument.pointee.msg_version,
                        requestBytes: ioctl.requestBytes))
                return calls.count - 1
            }
            return answer(index, ioctl)
        }
    }
}

/// The caller's `snp_guest_request_ioctl`, seen from the fake driver.
struct GuestIoctl {
    var request: UInt
    var argument: UnsafeMutablePointer<snp_guest_request_ioctl>

    var requestSize: Int {
        switch request {
        case UInt(CLINUX_SNP_GET_REPORT): MemoryLayout<snp_report_req>.size
        case UInt(CLINUX_SNP_GET_DERIVED_KEY): MemoryLayout<snp_derived_key_req>.size
        case UInt(CLINUX_SNP_GET_EXT_REPORT): MemoryLayout<snp_ext_report_req>.size
        default: 0
        }
    }

    var requestBytes: [UInt8] {
        guard let pointer = UnsafeRawPointer(bitPattern: UInt(argument.pointee.req_data)) else {
            return []
        }
        return Array(UnsafeRawBufferPointer(start: pointer, count: requestSize))
    }

    /// Copies `bytes` to the start of the response buffer.
    func respond(_ bytes: [UInt8]) {
        let pointer = UnsafeMutableRawPointer(bitPattern: UInt(argument.pointee.resp_data))!
        pointer.copyMemory(from: bytes, byteCount: bytes.count)
    }

    /// Sets exitinfo2 as the driver copies it back.
    func exit(_ value: UInt64) { argument.pointee.exitinfo2 = value }

    /// The extended request the caller passed.
    var extended: UnsafeMutablePointer<snp_ext_report_req> {
        UnsafeMutablePointer(bitPattern: UInt(argument.pointee.req_data))!
    }

    /// Writes the certificate table into the caller's certs buffer (it must fit).
    func writeCertificates(_ bytes: [UInt8]) {
        precondition(bytes.count <= Int(extended.pointee.certs_len))
        let pointer = UnsafeMutableRawPointer(bitPattern: UInt(extended.pointee.certs_address))!
        pointer.copyMemory(from: bytes, byteCount: bytes.count)
    }
}

enum Fixtures {
    static let reportData: [UInt8] = (0..<64).map { UInt8($0) ^ 0xA5 }

    static func report(
        reportData: [UInt8] = Fixtures.reportData, vmpl: UInt32 = 0
    )
        -> AttestationReport
    {
        var report = AttestationReport(version: 3)
        report.reportData = reportData
        report.vmpl = vmpl
        report.measurement = Array(repeating: 0x4D, count: 48)
        return report
    }

    static let certificates = CertificateTable(entries: [
        .init(kind: .vcek, data: Array(repeating: 0x30, count: 1300)),
        .init(kind: .ask, data: Array(repeating: 0x31, count: 1500)),
        .init(kind: .ark, data: Array(repeating: 0x32, count: 1500)),
    ])
}

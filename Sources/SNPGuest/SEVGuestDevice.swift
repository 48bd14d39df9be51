package import CLinux
import Glibc
public import SNP
public import SystemPackage

/// The SEV-SNP guest driver, `/dev/sev-guest`. Holds no descriptor: each request opens the device, issues one
/// ioctl and closes it.
///
/// Responses come back with their firmware STATUS unchecked, as the kernel returns them; use
/// `attestationReport(_:)` or `derivedKeyBytes(_:)` for checked answers.
public struct SEVGuestDevice: GuestDevice {
    public var path: FilePath
    var transport: IoctlTransport

    public init(path: FilePath = "/dev/sev-guest") {
        self.init(path: path, transport: .kernel)
    }

    /// A device whose one system call goes through `transport` (tests and the `snp-guest-ioctl` fuzz target stand
    /// in for the kernel there).
    package init(path: FilePath, transport: IoctlTransport) {
        self.path = path
        self.transport = transport
    }

    public var name: String { path.string }

    public func report(_ request: ReportRequest) throws(GuestDeviceError) -> ReportResponse {
        var kernelRequest = try makeReportRequest(request)
        var response = snp_report_resp()
        try send(.report, &kernelRequest, &response)
        return try parseReport(response, request: .report)
    }

    /// The report and the host's certificate table. Starts with a one-page certificate buffer; when the host
    /// answers INVALID_LEN the driver writes the size it needs into `certs_len`, and the request is sent once more
    /// with a buffer of that size.
    public func extendedReport(
        _ request: ReportRequest
    ) throws(GuestDeviceError) -> (
        ReportResponse, CertificateTable
    ) {
        var kernelRequest = snp_ext_report_req()
        kernelRequest.data = try makeReportRequest(request)
        var certificateCount = SEVGuestABI.pageSize
        var retried = false
        while true {
            var response = snp_report_resp()
            var certificates = [UInt8](repeating: 0, count: certificateCount)
            let descriptor = try open()
            defer { try? descriptor.close() }
            let failure = certificates.withUnsafeMutableBytes { buffer in
                kernelRequest.certs_address = UInt64(UInt(bitPattern: buffer.baseAddress))
                kernelRequest.certs_len = UInt32(buffer.count)
                return issue(.extendedReport, on: descriptor, &kernelRequest, &response)
            }
            if let failure {
                // The one failure after which the VMPCK stays usable: the buffer was too small.
                guard !retried, failure.errno == .ioError,
                    failure.exitinfo2 == SEVGuestABI.exitInfoInvalidLength
                else { throw failure.error(path: path.string, request: .extendedReport) }
                let required = kernelRequest.certs_len
                guard Int(required) > certificateCount,
                    Int(required) <= SEVGuestABI.maximumCertificateBytes,
                    Int(required).isMultiple(of: SEVGuestABI.pageSize)
                else { throw .certificateBufferTooLarge(path: path.string, requiredBytes: required) }
                certificateCount = Int(required)
                retried = true
                continue
            }
            let report = try parseReport(response, request: .extendedReport)
            // A refused request carries no certificates worth parsing; its STATUS is what the caller needs.
            guard report.status == .success, certificates.contains(where: { $0 != 0 }) else {
                return (report, CertificateTable(entries: []))
            }
            do {
                return (report, try CertificateTable(bytes: certificates))
            } catch {
                throw .malformedResponse(path: path.string, request: .extendedReport, error)
            }
        }
    }

    public func derivedKey(
        _ request: DerivedKeyRequest
    ) throws(GuestDeviceError)
        -> DerivedKeyResponse
    {
        var kernelRequest = snp_derived_key_req()
        kernelRequest.root_key_select = request.rootKeySelect
        kernelRequest.rsvd = request.reserved
        kernelRequest.guest_field_select = request.guestFieldSelect.rawValue
        kernelRequest.vmpl = request.vmpl
        kernelRequest.guest_svn = request.guestSVN
        kernelRequest.tcb_version = request.tcbVersion.rawValue
        var response = snp_derived_key_resp()
        // The key is copied into the response value; do not leave it on the stack.
        defer {
            withUnsafeMutableBytes(of: &response) {
                _ = $0.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
        try send(.derivedKey, &kernelRequest, &response)
        do {
            return try DerivedKeyResponse(bytes: withUnsafeBytes(of: response.data) { Array($0) })
        } catch {
            throw .malformedResponse(path: path.string, request: .derivedKey, error)
        }
    }

    // MARK: - Structures

    private func makeReportRequest(
        _ request: ReportRequest
    ) throws(GuestDeviceError)
        -> snp_report_req
    {
        guard request.reportData.count == 64 else {
            throw .badReportData(path: path.string, count: request.reportData.count)
        }
        var kernelRequest = snp_report_req()
        withUnsafeMutableBytes(of: &kernelRequest.user_data) { $0.copyBytes(from: request.reportData) }
        kernelRequest.vmpl = request.vmpl
        // KEY_SEL is bits 1:0 of the u32 at 0x44, the first word of what the UAPI calls `rsvd`.
        withUnsafeMutableBytes(of: &kernelRequest.rsvd) {
            $0.storeBytes(of: request.keySelect.littleEndian, toByteOffset: 0, as: UInt32.self)
        }
        return kernelRequest
    }

    private func parseReport(
        _ response: snp_report_resp, request: SEVGuestRequest
    )
        throws(GuestDeviceError)
        -> ReportResponse
    {
        do {
            return try ReportResponse(bytes: withUnsafeBytes(of: response.data) { Array($0) })
        } catch {
            throw .malformedResponse(path: path.string, request: request, error)
        }
    }

    // MARK: - The ioctl

    /// What a failed ioctl left behind: its errno and the `exitinfo2` the driver copied back.
    struct Failure {
        var errno: Errno
        var exitinfo2: UInt64

        func error(path: String, request: SEVGuestRequest) -> GuestDeviceError {
            GuestDeviceError(path: path, request: request, errno: errno, exitinfo2: exitinfo2)
        }
    }

    private func send<Request, Response>(
        _ request: SEVGuestRequest, _ kernelRequest: inout Request, _ response: inout Response
    ) throws(GuestDeviceError) {
        let descriptor = try open()
        defer { try? descriptor.close() }
        if let failure = issue(request, on: descriptor, &kernelRequest, &response) {
            throw failure.error(path: path.string, request: request)
        }
    }

    private func open() throws(GuestDeviceError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(path, .readWrite, options: [.closeOnExec])
        } catch {
            throw GuestDeviceError(opening: path.string, errno: error as? Errno ?? .ioError)
        }
    }

    /// One guest request; both buffers stay pinned for the duration of the call.
    private func issue<Request, Response>(
        _ request: SEVGuestRequest, on descriptor: FileDescriptor, _ kernelRequest: inout Request,
        _ response: inout Response
    ) -> Failure? {
        var guest = snp_guest_request_ioctl()
        guest.msg_version = SEVGuestABI.messageVersion
        let errno: Errno? = withUnsafeMutablePointer(to: &kernelRequest) { kernelRequest in
            withUnsafeMutablePointer(to: &response) { response in
                guest.req_data = UInt64(UInt(bitPattern: kernelRequest))
                guest.resp_data = UInt64(UInt(bitPattern: response))
                // Only EINTR is retried. The driver already retries host throttling itself, and after any other
                // failed round trip (except INVALID_LEN) it wipes the VMPCK to avoid AES-GCM IV reuse, so a blind
                // retry would only earn ENOTTY until the guest reboots.
                while true {
                    let errno = transport.call(descriptor.rawValue, request.number, &guest)
                    if errno != .interrupted { return errno }
                }
            }
        }
        guard let errno else { return nil }
        return Failure(errno: errno, exitinfo2: guest.exitinfo2)
    }
}

extension SEVGuestRequest {
    /// The ioctl request number, `_IOWR('S', nr, struct snp_guest_request_ioctl)`.
    var number: UInt {
        switch self {
        case .report: UInt(CLINUX_SNP_GET_REPORT)
        case .derivedKey: UInt(CLINUX_SNP_GET_DERIVED_KEY)
        case .extendedReport: UInt(CLINUX_SNP_GET_EXT_REPORT)
        }
    }
}

/// The one system call `SEVGuestDevice` makes, behind a seam so that tests can stand in for the kernel.
package struct IoctlTransport: Sendable {
    /// Issues `request` on `descriptor` with `argument`; nil on success, else the errno.
    package var call:
        @Sendable (
            _ descriptor: CInt, _ request: UInt, _ argument: UnsafeMutablePointer<snp_guest_request_ioctl>
        ) -> Errno?

    package init(
        call:
            @escaping @Sendable (
                _ descriptor: CInt, _ request: UInt, _ argument: UnsafeMutablePointer<snp_guest_request_ioctl>
            ) -> Errno?
    ) {
        self.call = call
    }

    /// The real ioctl(2).
    package static let kernel = IoctlTransport { descriptor, request, argument in
        ioctl(descriptor, request, argument) == -1 ? Errno(rawValue: Glibc.errno) : nil
    }
}

public import SNP
public import SystemPackage

/// The three requests of the sev-guest driver, named as in `linux/sev-guest.h`.
public enum SEVGuestRequest: String, CaseIterable, Sendable {
    case report = "SNP_GET_REPORT"
    case derivedKey = "SNP_GET_DERIVED_KEY"
    case extendedReport = "SNP_GET_EXT_REPORT"
}

/// Why a request to `/dev/sev-guest` failed, decoded from the errno of open(2) or ioctl(2) and the
/// `exitinfo2` the driver wrote back (`fw_error` in bits 31:0, `vmm_error` in bits 63:32).
///
/// A request that round-trips is not an error here even when the firmware refused it: that STATUS is inside the
/// response and `GuestDevice.attestationReport(_:)` / `derivedKeyBytes(_:)` turn it into a `FirmwareError`.
public enum GuestDeviceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// open(2) said ENOENT: there is no device node.
    case deviceMissing(path: String)
    /// open(2) said EACCES or EPERM.
    case permissionDenied(path: String)
    /// open(2) failed for another reason.
    case cannotOpen(path: String, Errno)
    /// EIO after the request reached the host: the SEV firmware status (`fw_error`) and the hypervisor's
    /// code (`vmm_error`: 1 INVALID_LEN, 2 BUSY).
    case requestFailed(
        path: String, request: SEVGuestRequest, firmware: FirmwareStatus, vmmError: UInt32)
    /// EIO with `exitinfo2` 0xff (the driver's pre-filled value: it never got to the host) or all-ones
    /// (SEV_RET_NO_FW_CALL: the GHCB guest request itself failed), so no firmware call happened.
    case noFirmwareCall(path: String, request: SEVGuestRequest, exitinfo2: UInt64)
    /// ENOTTY: the driver wiped the VMPCK after an earlier failed request.
    case vmpckDisabled(path: String, request: SEVGuestRequest)
    /// ETIMEDOUT: the host kept answering BUSY for the driver's whole retry window (60 s).
    case hostThrottled(path: String, request: SEVGuestRequest)
    /// EINVAL: the driver rejected the request (msg_version, a null pointer, certs_len).
    case invalidRequest(path: String, request: SEVGuestRequest)
    /// The host asked for a certificate buffer the driver cannot take: not whole 4 KiB pages, or above 16 KiB.
    case certificateBufferTooLarge(path: String, requiredBytes: UInt32)
    /// REPORT_DATA is not 64 bytes, so the request was not sent.
    case badReportData(path: String, count: Int)
    /// The request round-tripped but the response does not parse.
    case malformedResponse(path: String, request: SEVGuestRequest, LayoutError)
    /// ioctl(2) failed with another errno.
    case failed(path: String, request: SEVGuestRequest, Errno)

    /// Decodes a failed open(2) of the device.
    init(opening path: String, errno: Errno) {
        switch errno {
        case .noSuchFileOrDirectory: self = .deviceMissing(path: path)
        case .permissionDenied, .notPermitted: self = .permissionDenied(path: path)
        default: self = .cannotOpen(path: path, errno)
        }
    }

    /// Decodes a failed ioctl(2): the errno first, then, for EIO, the `exitinfo2` the driver copied back.
    init(path: String, request: SEVGuestRequest, errno: Errno, exitinfo2: UInt64) {
        switch errno {
        case .inappropriateIOCTLForDevice: self = .vmpckDisabled(path: path, request: request)
        case .timedOut: self = .hostThrottled(path: path, request: request)
        case .invalidArgument: self = .invalidRequest(path: path, request: request)
        case .ioError:
            if exitinfo2 == SEVGuestABI.exitInfoNotSent || exitinfo2 == SEVGuestABI.exitInfoNoFirmwareCall {
                self = .noFirmwareCall(path: path, request: request, exitinfo2: exitinfo2)
            } else {
                self = .requestFailed(
                    path: path, request: request,
                    firmware: FirmwareStatus(rawValue: UInt32(truncatingIfNeeded: exitinfo2)),
                    vmmError: UInt32(truncatingIfNeeded: exitinfo2 >> 32))
            }
        default: self = .failed(path: path, request: request, errno)
        }
    }

    public var description: String {
        switch self {
        case .deviceMissing(let path):
            "cannot open '\(path)': No such file or directory. "
                + "Is this VM running with SEV-SNP, and is the sev-guest driver (module sev-guest) loaded?"
        case .permissionDenied(let path):
            "cannot open '\(path)': Permission denied; run as root or check the owner and mode of the device node"
        case .cannotOpen(let path, let errno):
            "cannot open '\(path)': \(errno); check that it is the sev-guest misc device and that the driver is bound"
        case .requestFailed(let path, let request, let firmware, let vmmError):
            Self.describeFailure(path: path, request: request, firmware: firmware, vmmError: vmmError)
        case .noFirmwareCall(let path, let request, let exitinfo2):
            "\(request.rawValue) on '\(path)' failed with EIO before any firmware call happened "
                + "(exitinfo2 0x\(String(exitinfo2, radix: 16))); "
                + "check the kernel log for sev-guest messages about the GHCB request or the VMPCK"
        case .vmpckDisabled(let path, let request):
            "\(request.rawValue) on '\(path)' failed with ENOTTY: "
                + "the VMPCK was disabled after an earlier failed request; reboot the guest"
        case .hostThrottled(let path, let request):
            "\(request.rawValue) on '\(path)' timed out (ETIMEDOUT): the host throttled guest requests "
                + "for the driver's whole 60 s retry window; retry later and check the host's SNP request rate limit"
        case .invalidRequest(let path, let request):
            "\(request.rawValue) on '\(path)' was rejected as invalid (EINVAL); check msg_version (1), "
                + "the request and response buffers and certs_len (whole 4 KiB pages, at most 16 KiB)"
        case .certificateBufferTooLarge(let path, let requiredBytes):
            "SNP_GET_EXT_REPORT on '\(path)': the host wants a \(requiredBytes)-byte certificate buffer, "
                + "but the driver takes only whole 4 KiB pages up to 16 KiB; check the certificate blob the host serves"
        case .badReportData(let path, let count):
            "REPORT_DATA for '\(path)' must be 64 bytes, got \(count); pad or hash the nonce to 64 bytes"
        case .malformedResponse(let path, let request, let error):
            "\(request.rawValue) on '\(path)' returned a response that does not parse (\(error)); "
                + "check that the kernel's sev-guest driver matches this build's ABI"
        case .failed(let path, let request, let errno):
            "\(request.rawValue) on '\(path)' failed: \(errno); check the kernel log for sev-guest messages"
        }
    }

    private static func describeFailure(
        path: String, request: SEVGuestRequest, firmware: FirmwareStatus, vmmError: UInt32
    ) -> String {
        let what = "\(request.rawValue) on '\(path)' failed with EIO"
        switch (firmware, vmmError) {
        case (.success, SEVGuestABI.vmmInvalidLength):
            return
                "\(what): the host's certificate table (hypervisor INVALID_LEN) still did not fit after one "
                + "retry with the size it asked for; the VMPCK is still usable, so retry the request"
        case (.success, SEVGuestABI.vmmBusy):
            return
                "\(what): the host stayed busy (hypervisor BUSY) and the driver has disabled the VMPCK; "
                + "reboot the guest and check the host's SNP request rate limit"
        case (.success, 0):
            return
                "\(what) without a firmware or hypervisor status (e.g. a response that did not decrypt) "
                + "and the driver has disabled the VMPCK; reboot the guest and check the kernel log"
        default:
            let vmm: String
            switch vmmError {
            case 0: vmm = "no hypervisor error"
            case SEVGuestABI.vmmInvalidLength: vmm = "hypervisor error INVALID_LEN (1)"
            case SEVGuestABI.vmmBusy: vmm = "hypervisor error BUSY (2)"
            default: vmm = "unknown hypervisor error \(vmmError)"
            }
            return "\(what): firmware status \(firmware), \(vmm), and the driver has disabled the VMPCK; "
                + "reboot the guest and check the host's SNP firmware and kernel log"
        }
    }
}

/// Constants of the sev-guest ABI that the UAPI header does not carry (`reference/snp-facts.md` §2).
enum SEVGuestABI {
    /// `snp_guest_request_ioctl.msg_version`; zero is EINVAL.
    static let messageVersion: UInt8 = 1
    /// `vmm_error` values (SNP_GUEST_VMM_ERR_*).
    static let vmmInvalidLength: UInt32 = 1
    static let vmmBusy: UInt32 = 2
    /// The driver pre-fills exitinfo2 with 0xff; seeing it back means the host was never asked.
    static let exitInfoNotSent: UInt64 = 0xff
    /// SEV_RET_NO_FW_CALL (-1): the GHCB call itself failed.
    static let exitInfoNoFirmwareCall: UInt64 = .max
    /// exitinfo2 of the one recoverable failure: vmm_error INVALID_LEN, fw_error 0.
    static let exitInfoInvalidLength: UInt64 = UInt64(vmmInvalidLength) << 32
    /// certs_len must be whole pages, at most SEV_FW_BLOB_MAX_SIZE.
    static let pageSize = 4096
    static let maximumCertificateBytes = 0x4000
}

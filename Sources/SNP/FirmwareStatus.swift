/// SEV firmware status codes (psp-sev.h), as they come back in MSG_*_RSP STATUS and in `fw_error`.
public struct FirmwareStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let success = FirmwareStatus(rawValue: 0x00)
    public static let invalidPlatformState = FirmwareStatus(rawValue: 0x01)
    public static let invalidGuestState = FirmwareStatus(rawValue: 0x02)
    public static let invalidLength = FirmwareStatus(rawValue: 0x04)
    public static let policyFailure = FirmwareStatus(rawValue: 0x07)
    public static let badSignature = FirmwareStatus(rawValue: 0x0A)
    public static let badMeasurement = FirmwareStatus(rawValue: 0x0B)
    public static let invalidGuest = FirmwareStatus(rawValue: 0x10)
    public static let invalidCommand = FirmwareStatus(rawValue: 0x11)
    public static let unsupported = FirmwareStatus(rawValue: 0x15)
    public static let invalidParam = FirmwareStatus(rawValue: 0x16)
    public static let resourceLimit = FirmwareStatus(rawValue: 0x17)
    public static let badSVN = FirmwareStatus(rawValue: 0x21)
    public static let badVersion = FirmwareStatus(rawValue: 0x22)
    public static let invalidKey = FirmwareStatus(rawValue: 0x27)

    private static let names: [UInt32: String] = [
        0x00: "SUCCESS", 0x01: "INVALID_PLATFORM_STATE", 0x02: "INVALID_GUEST_STATE", 0x03: "INVALID_CONFIG",
        0x04: "INVALID_LEN", 0x05: "ALREADY_OWNED", 0x06: "INVALID_CERTIFICATE", 0x07: "POLICY_FAILURE",
        0x08: "INACTIVE", 0x09: "INVALID_ADDRESS", 0x0A: "BAD_SIGNATURE", 0x0B: "BAD_MEASUREMENT",
        0x0C: "ASID_OWNED", 0x0D: "INVALID_ASID", 0x0E: "WBINVD_REQUIRED", 0x0F: "DFFLUSH_REQUIRED",
        0x10: "INVALID_GUEST", 0x11: "INVALID_COMMAND", 0x12: "ACTIVE", 0x13: "HWERROR_PLATFORM",
        0x14: "HWERROR_UNSAFE", 0x15: "UNSUPPORTED", 0x16: "INVALID_PARAM", 0x17: "RESOURCE_LIMIT",
        0x18: "SECURE_DATA_INVALID", 0x19: "INVALID_PAGE_SIZE", 0x1A: "INVALID_PAGE_STATE",
        0x1B: "INVALID_MDATA_ENTRY", 0x1C: "INVALID_PAGE_OWNER", 0x1D: "AEAD_OFLOW", 0x1F: "EXIT_RING_BUFFER",
        0x20: "RMP_INIT_REQUIRED", 0x21: "BAD_SVN", 0x22: "BAD_VERSION", 0x23: "SHUTDOWN_REQUIRED",
        0x24: "UPDATE_FAILED", 0x25: "RESTORE_REQUIRED", 0x26: "RMP_INITIALIZATION_FAILED", 0x27: "INVALID_KEY",
    ]

    /// `INVALID_PARAM (0x16)`.
    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16, uppercase: true)
        return Self.names[rawValue].map { "\($0) (\(hex))" } ?? "unknown status \(hex)"
    }
}

/// A firmware answer whose STATUS is not SUCCESS, although the request itself round-tripped.
public struct FirmwareError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: FirmwareStatus
    public var request: String

    public init(status: FirmwareStatus, request: String) {
        self.status = status
        self.request = request
    }

    public var description: String {
        var text = "the Secure Processor refused \(request) with \(status)"
        switch status {
        case .invalidParam:
            text +=
                "; check reserved fields, that the VMPL is not below the guest's own, "
                + "that a pinned TCB is not above COMMITTED_TCB and the guest SVN not above the ID block's"
        case .invalidKey:
            text += "; the requested root key is not available (no VLEK loaded, VCEK disabled, or MaskChipKey set)"
        default: break
        }
        return text
    }
}

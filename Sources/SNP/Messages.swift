/// MSG_REPORT_REQ (96 bytes), the payload of SNP_GET_REPORT (`struct snp_report_req`).
public struct ReportRequest: Hashable, Sendable {
    public static let byteCount = 96

    public var reportData: [UInt8]  // 0x00, 64
    public var vmpl: UInt32  // 0x40
    /// KEY_SEL, bits 1:0 of the u32 at 0x44: 0 = VLEK if loaded else VCEK, 1 = VCEK, 2 = VLEK, 3 reserved.
    public var keySelect: UInt32  // 0x44; the rest of 0x44..0x5F is reserved

    public init(
        reportData: [UInt8] = Array(repeating: 0, count: 64), vmpl: UInt32 = 0, keySelect: UInt32 = 0
    )
        throws(LayoutError)
    {
        self.reportData = try .checked(reportData, field: "REPORT_DATA", count: 64)
        self.vmpl = vmpl
        self.keySelect = keySelect
    }

    /// Parses the request; reserved bits are kept in `reservedBits` so the firmware model can refuse them.
    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "MSG_REPORT_REQ", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        reportData = try r.bytes(64)
        vmpl = try r.integer()
        let word: UInt32 = try r.integer()
        keySelect = word
        try r.reserved(24)
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.bytes(reportData)
        w.integer(vmpl)
        w.integer(keySelect)
        w.reserved(24)
        return w.bytes
    }
}

/// MSG_REPORT_RSP: STATUS, REPORT_SIZE, 24 reserved bytes, then the report. The kernel's
/// `struct snp_report_resp` is this followed by zero padding to 4000 bytes.
public struct ReportResponse: Hashable, Sendable {
    public static let headerCount = 0x20
    public static let byteCount = headerCount + AttestationReport.byteCount
    /// `sizeof(struct snp_report_resp)` in the Linux UAPI.
    public static let kernelBufferCount = 4000

    public var status: FirmwareStatus
    /// The report; nil when STATUS is not SUCCESS (the firmware then returns no report).
    public var report: AttestationReport?

    public init(status: FirmwareStatus, report: AttestationReport?) {
        self.status = status
        self.report = report
    }

    /// Parses the response from a buffer that may carry trailing padding (the kernel's 4000 bytes).
    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        var r = ByteReader(bytes)
        status = FirmwareStatus(rawValue: try r.integer())
        let size: UInt32 = try r.integer()
        _ = try r.bytes(24)
        guard status == .success else {
            report = nil
            return
        }
        guard size == AttestationReport.byteCount else {
            throw .invalidValue(
                field: "MSG_REPORT_RSP REPORT_SIZE",
                detail: "is \(size), expected \(AttestationReport.byteCount) (0x4A0)")
        }
        report = try AttestationReport(bytes: try r.bytes(AttestationReport.byteCount))
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.integer(status.rawValue)
        w.integer(UInt32(report == nil ? 0 : AttestationReport.byteCount))
        w.reserved(24)
        w.bytes(report?.bytes ?? Array(repeating: 0, count: AttestationReport.byteCount))
        return w.bytes
    }

    /// The report, or the firmware's refusal as an error.
    public func checked() throws(FirmwareError) -> AttestationReport {
        guard status == .success, let report else { throw FirmwareError(status: status, request: "MSG_REPORT_REQ") }
        return report
    }
}

/// GUEST_FIELD_SELECT of MSG_KEY_REQ: which guest fields are mixed into a derived key.
public struct GuestFieldSelect: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let guestPolicy = GuestFieldSelect(rawValue: 1 << 0)
    public static let imageID = GuestFieldSelect(rawValue: 1 << 1)
    public static let familyID = GuestFieldSelect(rawValue: 1 << 2)
    public static let measurement = GuestFieldSelect(rawValue: 1 << 3)
    public static let guestSVN = GuestFieldSelect(rawValue: 1 << 4)
    public static let tcbVersion = GuestFieldSelect(rawValue: 1 << 5)
    /// Message version 2 only (ABI 1.58).
    public static let launchMitigationVector = GuestFieldSelect(rawValue: 1 << 6)

    /// Bits 63:7 are reserved.
    public static let reservedMask: UInt64 = ~((1 << 7) - 1)

    /// The names `vhsm key derive --fields` takes.
    public static let names: [(GuestFieldSelect, String)] = [
        (.guestPolicy, "policy"), (.imageID, "image-id"), (.familyID, "family-id"), (.measurement, "measurement"),
        (.guestSVN, "guest-svn"), (.tcbVersion, "tcb"), (.launchMitigationVector, "launch-mit-vector"),
    ]

    /// Parses `policy,measurement,tcb`.
    public init(names list: String) throws(LayoutError) {
        var value: GuestFieldSelect = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters() }) where !name.isEmpty {
            guard let field = Self.names.first(where: { $0.1 == name }) else {
                let known = Self.names.map(\.1).joined(separator: ", ")
                throw .invalidValue(field: "guest field '\(name)'", detail: "unknown; known fields: \(known)")
            }
            value.insert(field.0)
        }
        self = value
    }

    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// MSG_KEY_REQ (message version 1, 32 bytes), the payload of SNP_GET_DERIVED_KEY.
public struct DerivedKeyRequest: Hashable, Sendable {
    public static let byteCount = 32

    /// Which root key the derivation starts from.
    public enum RootKey: String, CaseIterable, Sendable {
        /// The chip's VCEK seed (KEY_SEL = 1: never the VLEK).
        case vcek
        /// The loaded VLEK seed (KEY_SEL = 2).
        case vlek
        /// The VM root key, random per launch.
        case vmrk
    }

    /// Bit 0 ROOT_KEY_SELECT (1 = VMRK), bits 2:1 KEY_SEL; bits 31:3 reserved.
    public var rootKeySelect: UInt32  // 0x00; reserved 0x04 (4)
    public var guestFieldSelect: GuestFieldSelect  // 0x08
    public var vmpl: UInt32  // 0x10
    public var guestSVN: UInt32  // 0x14
    public var tcbVersion: TCBVersion  // 0x18
    /// The u32 at 0x04, which must be zero; kept so the firmware model can refuse a request that sets it.
    public var reserved: UInt32

    public init(
        rootKeySelect: UInt32, guestFieldSelect: GuestFieldSelect = [], vmpl: UInt32 = 0, guestSVN: UInt32 = 0,
        tcbVersion: TCBVersion = TCBVersion(rawValue: 0)
    ) {
        self.rootKeySelect = rootKeySelect
        self.guestFieldSelect = guestFieldSelect
        self.vmpl = vmpl
        self.guestSVN = guestSVN
        self.tcbVersion = tcbVersion
        self.reserved = 0
    }

    public init(
        root: RootKey, guestFieldSelect: GuestFieldSelect = [], vmpl: UInt32 = 0, guestSVN: UInt32 = 0,
        tcbVersion: TCBVersion = TCBVersion(rawValue: 0)
    ) {
        let select: UInt32
        switch root {
        case .vcek: select = 1 << 1
        case .vlek: select = 2 << 1
        case .vmrk: select = 1
        }
        self.init(
            rootKeySelect: select, guestFieldSelect: guestFieldSelect, vmpl: vmpl, guestSVN: guestSVN,
            tcbVersion: tcbVersion)
    }

    /// ROOT_KEY_SELECT bit: true for the VMRK.
    public var usesVMRK: Bool { rootKeySelect & 1 != 0 }
    /// KEY_SEL, bits 2:1: 0 = VLEK if loaded else VCEK, 1 = VCEK, 2 = VLEK, 3 reserved.
    public var keySelect: UInt32 { (rootKeySelect >> 1) & 0x3 }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "MSG_KEY_REQ", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        rootKeySelect = try r.integer()
        reserved = try r.integer()
        guestFieldSelect = GuestFieldSelect(rawValue: try r.integer())
        vmpl = try r.integer()
        guestSVN = try r.integer()
        tcbVersion = TCBVersion(rawValue: try r.integer())
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.integer(rootKeySelect)
        w.integer(reserved)
        w.integer(guestFieldSelect.rawValue)
        w.integer(vmpl)
        w.integer(guestSVN)
        w.integer(tcbVersion.rawValue)
        return w.bytes
    }
}

/// MSG_KEY_RSP (64 bytes): STATUS, 28 reserved bytes, the 32-byte key (zero unless STATUS is SUCCESS).
public struct DerivedKeyResponse: Hashable, Sendable {
    public static let byteCount = 64

    public var status: FirmwareStatus
    public var key: [UInt8]

    public init(status: FirmwareStatus, key: [UInt8] = Array(repeating: 0, count: 32)) {
        self.status = status
        self.key = key
    }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "MSG_KEY_RSP", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        status = FirmwareStatus(rawValue: try r.integer())
        _ = try r.bytes(28)
        key = try r.bytes(32)
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.integer(status.rawValue)
        w.reserved(28)
        w.bytes(key.count == 32 ? key : Array(repeating: 0, count: 32))
        return w.bytes
    }

    /// The key, or the firmware's refusal as an error.
    public func checked() throws(FirmwareError) -> [UInt8] {
        guard status == .success else { throw FirmwareError(status: status, request: "MSG_KEY_REQ") }
        return key
    }

    /// Overwrites the key bytes this value holds.
    public mutating func zeroize() {
        for index in key.indices { key[index] = 0 }
    }
}

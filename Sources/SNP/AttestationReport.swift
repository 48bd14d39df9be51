/// ATTESTATION_REPORT (0x4A0 bytes), versions 2 to 5. Version 4 is read as version 3.
///
/// `try AttestationReport(bytes: b).bytes == b` for every valid report. The parser reads the version 5
/// superset layout and then requires zeros where the report's own version has reserved bytes (v2 at
/// 0x188–0x18A, v2–v4 at 0x1F8–0x207), so the CPUID bytes of a v2 report are never read as CPUID.
public struct AttestationReport: Hashable, Sendable {
    public static let byteCount = 0x4A0
    /// Bytes 0x000–0x29F are signed.
    public static let signedByteCount = 0x2A0
    public static let supportedVersions: ClosedRange<UInt32> = 2...5

    public var version: UInt32  // 0x000
    public var guestSVN: UInt32  // 0x004
    public var policy: GuestPolicy  // 0x008
    public var familyID: [UInt8]  // 0x010, 16
    public var imageID: [UInt8]  // 0x020, 16
    public var vmpl: UInt32  // 0x030
    public var signatureAlgorithm: UInt32  // 0x034; 1 = ECDSA P-384 with SHA-384
    public var currentTCB: TCBVersion  // 0x038
    public var platformInfo: PlatformInfo  // 0x040
    public var keyInfo: KeyInfo  // 0x048; reserved 0x04C (4)
    public var reportData: [UInt8]  // 0x050, 64
    public var measurement: [UInt8]  // 0x090, 48
    public var hostData: [UInt8]  // 0x0C0, 32
    public var idKeyDigest: [UInt8]  // 0x0E0, 48
    public var authorKeyDigest: [UInt8]  // 0x110, 48
    public var reportID: [UInt8]  // 0x140, 32
    public var reportIDMA: [UInt8]  // 0x160, 32
    public var reportedTCB: TCBVersion  // 0x180
    public var cpuidFamilyID: UInt8  // 0x188 (v3+)
    public var cpuidModelID: UInt8  // 0x189 (v3+)
    public var cpuidStepping: UInt8  // 0x18A (v3+); reserved 0x18B (21)
    public var chipID: [UInt8]  // 0x1A0, 64
    public var committedTCB: TCBVersion  // 0x1E0
    public var currentVersion: FirmwareVersion  // 0x1E8 build, minor, major; reserved 0x1EB
    public var committedVersion: FirmwareVersion  // 0x1EC build, minor, major; reserved 0x1EF
    public var launchTCB: TCBVersion  // 0x1F0
    public var launchMitigationVector: UInt64  // 0x1F8 (v5)
    public var currentMitigationVector: UInt64  // 0x200 (v5); reserved 0x208 (152)
    public var signature: ReportSignature  // 0x2A0, 512

    /// A report with every field zero except those given; the emulator fills it from a launch context.
    public init(version: UInt32) {
        self.version = version
        guestSVN = 0
        policy = []
        familyID = Array(repeating: 0, count: 16)
        imageID = Array(repeating: 0, count: 16)
        vmpl = 0
        signatureAlgorithm = 1
        currentTCB = TCBVersion(rawValue: 0)
        platformInfo = []
        keyInfo = KeyInfo(rawValue: 0)
        reportData = Array(repeating: 0, count: 64)
        measurement = Array(repeating: 0, count: 48)
        hostData = Array(repeating: 0, count: 32)
        idKeyDigest = Array(repeating: 0, count: 48)
        authorKeyDigest = Array(repeating: 0, count: 48)
        reportID = Array(repeating: 0, count: 32)
        reportIDMA = Array(repeating: 0xFF, count: 32)
        reportedTCB = TCBVersion(rawValue: 0)
        cpuidFamilyID = 0
        cpuidModelID = 0
        cpuidStepping = 0
        chipID = Array(repeating: 0, count: 64)
        committedTCB = TCBVersion(rawValue: 0)
        currentVersion = FirmwareVersion(major: 0, minor: 0, build: 0)
        committedVersion = FirmwareVersion(major: 0, minor: 0, build: 0)
        launchTCB = TCBVersion(rawValue: 0)
        launchMitigationVector = 0
        currentMitigationVector = 0
        signature = ReportSignature()
    }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "ATTESTATION_REPORT", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        version = try r.integer()
        guard Self.supportedVersions.contains(version) else {
            throw .unsupportedVersion(structure: "ATTESTATION_REPORT", version: version)
        }
        guestSVN = try r.integer()
        policy = GuestPolicy(rawValue: try r.integer())
        familyID = try r.bytes(16)
        imageID = try r.bytes(16)
        vmpl = try r.integer()
        signatureAlgorithm = try r.integer()
        currentTCB = TCBVersion(rawValue: try r.integer())
        platformInfo = PlatformInfo(rawValue: try r.integer())
        keyInfo = KeyInfo(rawValue: try r.integer())
        try r.reserved(4)
        reportData = try r.bytes(64)
        measurement = try r.bytes(48)
        hostData = try r.bytes(32)
        idKeyDigest = try r.bytes(48)
        authorKeyDigest = try r.bytes(48)
        reportID = try r.bytes(32)
        reportIDMA = try r.bytes(32)
        reportedTCB = TCBVersion(rawValue: try r.integer())
        if version < 3 {
            try r.reserved(3)
            cpuidFamilyID = 0
            cpuidModelID = 0
            cpuidStepping = 0
        } else {
            cpuidFamilyID = try r.integer()
            cpuidModelID = try r.integer()
            cpuidStepping = try r.integer()
        }
        try r.reserved(21)
        chipID = try r.bytes(64)
        committedTCB = TCBVersion(rawValue: try r.integer())
        currentVersion = try FirmwareVersion(from: &r)
        committedVersion = try FirmwareVersion(from: &r)
        launchTCB = TCBVersion(rawValue: try r.integer())
        if version < 5 {
            try r.reserved(16)
            launchMitigationVector = 0
            currentMitigationVector = 0
        } else {
            launchMitigationVector = try r.integer()
            currentMitigationVector = try r.integer()
        }
        try r.reserved(152)
        signature = try ReportSignature(from: &r)
    }

    /// The report in its firmware layout, signature included.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        writeSignedBytes(to: &w)
        signature.write(to: &w)
        return w.bytes
    }

    /// Bytes 0x000–0x29F, the part the signature covers.
    public var signedBytes: [UInt8] {
        var w = ByteWriter(capacity: Self.signedByteCount)
        writeSignedBytes(to: &w)
        return w.bytes
    }

    private func writeSignedBytes(to w: inout ByteWriter) {
        w.integer(version)
        w.integer(guestSVN)
        w.integer(policy.rawValue)
        w.bytes(familyID)
        w.bytes(imageID)
        w.integer(vmpl)
        w.integer(signatureAlgorithm)
        w.integer(currentTCB.rawValue)
        w.integer(platformInfo.rawValue)
        w.integer(keyInfo.rawValue)
        w.reserved(4)
        w.bytes(reportData)
        w.bytes(measurement)
        w.bytes(hostData)
        w.bytes(idKeyDigest)
        w.bytes(authorKeyDigest)
        w.bytes(reportID)
        w.bytes(reportIDMA)
        w.integer(reportedTCB.rawValue)
        if version < 3 {
            w.reserved(3)
        } else {
            w.integer(cpuidFamilyID)
            w.integer(cpuidModelID)
            w.integer(cpuidStepping)
        }
        w.reserved(21)
        w.bytes(chipID)
        w.integer(committedTCB.rawValue)
        currentVersion.write(to: &w)
        committedVersion.write(to: &w)
        w.integer(launchTCB.rawValue)
        if version < 5 {
            w.reserved(16)
        } else {
            w.integer(launchMitigationVector)
            w.integer(currentMitigationVector)
        }
        w.reserved(152)
    }

    /// Checks that every fixed-size field has its size; call before `bytes` on a hand-built report.
    public func validateFieldSizes() throws(LayoutError) {
        let fields: [(String, [UInt8], Int)] = [
            ("FAMILY_ID", familyID, 16), ("IMAGE_ID", imageID, 16), ("REPORT_DATA", reportData, 64),
            ("MEASUREMENT", measurement, 48), ("HOST_DATA", hostData, 32), ("ID_KEY_DIGEST", idKeyDigest, 48),
            ("AUTHOR_KEY_DIGEST", authorKeyDigest, 48), ("REPORT_ID", reportID, 32),
            ("REPORT_ID_MA", reportIDMA, 32), ("CHIP_ID", chipID, 64), ("SIGNATURE R", signature.r, 72),
            ("SIGNATURE S", signature.s, 72),
        ]
        for (name, value, count) in fields where value.count != count {
            throw .wrongFieldSize(field: name, expected: count, actual: value.count)
        }
        guard Self.supportedVersions.contains(version) else {
            throw .unsupportedVersion(structure: "ATTESTATION_REPORT", version: version)
        }
    }

    /// The product line this report comes from, when the report itself says so.
    ///
    /// Version 3+ reports carry CPUID; for version 2, a CHIP_ID whose bytes 8–63 are zero (and not all zero)
    /// means Turin (virtee/snpguest's rule); other v2 reports do not name their product.
    public var product: Product? {
        if version >= 3 { return Product(family: cpuidFamilyID, model: cpuidModelID) }
        let tail = chipID[8...]
        if tail.allSatisfy({ $0 == 0 }) && chipID[..<8].contains(where: { $0 != 0 }) { return .turin }
        return nil
    }
}

/// A firmware version as the report stores it: build, minor, major, then a reserved byte.
public struct FirmwareVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt8
    public var minor: UInt8
    public var build: UInt8

    public init(major: UInt8, minor: UInt8, build: UInt8) {
        self.major = major
        self.minor = minor
        self.build = build
    }

    init(from r: inout ByteReader) throws(LayoutError) {
        build = try r.integer()
        minor = try r.integer()
        major = try r.integer()
        try r.reserved(1)
    }

    func write(to w: inout ByteWriter) {
        w.integer(build)
        w.integer(minor)
        w.integer(major)
        w.reserved(1)
    }

    /// `1.55.40`, as AMD writes firmware versions.
    public var description: String { "\(major).\(minor).\(build)" }
}

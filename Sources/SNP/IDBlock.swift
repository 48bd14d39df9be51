/// ID_BLOCK (0x60 bytes), the block SNP_LAUNCH_FINISH checks: the firmware refuses to start the guest unless
/// LD equals the launch digest it computed and POLICY equals the launch policy, and then copies FAMILY_ID,
/// IMAGE_ID and GUEST_SVN into every report.
///
/// `try IDBlock(bytes: b).bytes == b` for every 96-byte `b`; VERSION is kept as read (the firmware accepts
/// only 1, which `IDAuthentication.problems(for:)` checks).
public struct IDBlock: Hashable, Sendable {
    public static let byteCount = 0x60
    /// The only ID block VERSION the firmware accepts.
    public static let currentVersion: UInt32 = 1

    public var launchDigest: [UInt8]  // 0x00, 48: LD, the expected MEASUREMENT
    public var familyID: [UInt8]  // 0x30, 16
    public var imageID: [UInt8]  // 0x40, 16
    public var version: UInt32  // 0x50
    public var guestSVN: UInt32  // 0x54
    public var policy: GuestPolicy  // 0x58

    public init(
        launchDigest: [UInt8], familyID: [UInt8] = Array(repeating: 0, count: 16),
        imageID: [UInt8] = Array(repeating: 0, count: 16), version: UInt32 = IDBlock.currentVersion,
        guestSVN: UInt32 = 0, policy: GuestPolicy
    ) throws(LayoutError) {
        self.launchDigest = try .checked(launchDigest, field: "LD", count: 48)
        self.familyID = try .checked(familyID, field: "FAMILY_ID", count: 16)
        self.imageID = try .checked(imageID, field: "IMAGE_ID", count: 16)
        self.version = version
        self.guestSVN = guestSVN
        self.policy = policy
    }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "ID_BLOCK", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        launchDigest = try r.bytes(48)
        familyID = try r.bytes(16)
        imageID = try r.bytes(16)
        version = try r.integer()
        guestSVN = try r.integer()
        policy = GuestPolicy(rawValue: try r.integer())
    }

    /// The 96 bytes the ID key signs.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.bytes(launchDigest)
        w.bytes(familyID)
        w.bytes(imageID)
        w.integer(version)
        w.integer(guestSVN)
        w.integer(policy.rawValue)
        return w.bytes
    }

    /// Checks that every fixed-size field has its size; call before `bytes` on a block whose fields were set.
    public func validateFieldSizes() throws(LayoutError) {
        _ = try [UInt8].checked(launchDigest, field: "LD", count: 48)
        _ = try [UInt8].checked(familyID, field: "FAMILY_ID", count: 16)
        _ = try [UInt8].checked(imageID, field: "IMAGE_ID", count: 16)
    }
}

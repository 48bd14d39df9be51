import Crypto

/// PAGE_INFO (0x70 bytes, SEV-SNP ABI specification, SNP_LAUNCH_UPDATE): the structure the PSP hashes
/// for every launch update, `GCTX.LD = SHA-384(PAGE_INFO)`. It is hashed whole; page data enters only
/// through CONTENTS, its own SHA-384.
public struct PageInfo: Hashable, Sendable {
    public static let byteCount = 0x70

    /// DIGEST_CUR: the launch digest before this update.
    public var digestBefore: [UInt8]  // 0x00, 48
    /// CONTENTS: SHA-384 of the page for NORMAL and VMSA pages, 48 zero bytes for every other type.
    public var contents: [UInt8]  // 0x30, 48; LENGTH 0x60 = le16 0x70
    public var pageType: PageType  // 0x62; IMI_PAGE 0x63, VMPL3/2/1_PERMS 0x64–0x66, reserved 0x67: zero
    /// The guest-physical address of the page; VMSAs use the fixed 0xFFFF_FFFF_F000.
    public var gpa: UInt64  // 0x68

    /// PAGE_TYPE values of SNP_LAUNCH_UPDATE.
    public enum PageType: UInt8, Sendable, CaseIterable {
        /// PAGE_TYPE_NORMAL: firmware pages and the SEV hashes page.
        case normal = 1
        /// PAGE_TYPE_VMSA: one per vCPU.
        case vmsa = 2
        /// PAGE_TYPE_ZERO: SNP_SEC_MEM and SVSM_CAA pages, and the hashes page without a kernel.
        case zero = 3
        /// PAGE_TYPE_UNMEASURED: SNP_SEC_MEM under GCE.
        case unmeasured = 4
        /// PAGE_TYPE_SECRETS: the SNP secrets page.
        case secrets = 5
        /// PAGE_TYPE_CPUID: the CPUID page (the PSP validates it; its contents are not measured).
        case cpuid = 6
    }

    public init(digestBefore: [UInt8], contents: [UInt8], pageType: PageType, gpa: UInt64) {
        self.digestBefore = digestBefore
        self.contents = contents
        self.pageType = pageType
        self.gpa = gpa
    }

    /// The 0x70-byte PAGE_INFO as hashed.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.bytes(digestBefore)
        w.bytes(contents)
        w.integer(UInt16(Self.byteCount))
        w.integer(pageType.rawValue)
        w.reserved(5)  // IMI_PAGE, VMPL3_PERMS, VMPL2_PERMS, VMPL1_PERMS, reserved
        w.integer(gpa)
        return w.bytes
    }

    /// The launch digest after this update: SHA-384 of `bytes`.
    public var digestAfter: [UInt8] { Array(SHA384.hash(data: bytes)) }
}

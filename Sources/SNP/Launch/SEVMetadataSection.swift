/// One OVMF SEV metadata section descriptor (12 bytes, after the "ASEV" header): a guest-physical range that
/// QEMU adds to the launch before the VMSAs, as ZERO, SECRETS, CPUID or NORMAL pages depending on its type.
public struct SEVMetadataSection: Hashable, Sendable, CustomStringConvertible {
    public var gpa: UInt32  // +0x0
    public var size: UInt32  // +0x4
    public var kind: Kind  // +0x8, le32

    /// Section types (OvmfPkg `OVMF_SECTION_TYPE_*`).
    public enum Kind: UInt32, Sendable, CaseIterable {
        /// SNP_SEC_MEM: pre-validated memory, measured as ZERO pages (UNMEASURED under GCE).
        case secMem = 1
        /// SNP_SECRETS: the secrets page, one SECRETS page at `gpa`.
        case secrets = 2
        /// CPUID: the CPUID page, one CPUID page at `gpa`; the PSP checks its contents, they are not measured.
        case cpuid = 3
        /// SVSM_CAA: the SVSM calling-area page(s), measured as ZERO pages.
        case svsmCAA = 4
        /// SNP_KERNEL_HASHES: the page holding the kernel/initrd/cmdline hashes table.
        case kernelHashes = 0x10

        /// The name OVMF and sev-snp-measure use.
        public var name: String {
            switch self {
            case .secMem: "SNP_SEC_MEM"
            case .secrets: "SNP_SECRETS"
            case .cpuid: "CPUID"
            case .svsmCAA: "SVSM_CAA"
            case .kernelHashes: "SNP_KERNEL_HASHES"
            }
        }
    }

    public init(gpa: UInt32, size: UInt32, kind: Kind) {
        self.gpa = gpa
        self.size = size
        self.kind = kind
    }

    /// The byte count of one descriptor.
    static let byteCount = 12

    /// `SNP_SEC_MEM gpa=0x800000 size=0x9000`, the form the B03 trace uses.
    public var description: String {
        "\(kind.name) gpa=0x\(String(gpa, radix: 16)) size=0x\(String(size, radix: 16))"
    }

    /// The GPA of every 4 KiB page of the section, in ascending order.
    func pageGPAs() throws(MeasurementError) -> [UInt64] {
        guard size % 4096 == 0 else { throw .metadataSectionSizeNotPageMultiple(self) }
        return stride(from: UInt64(gpa), to: UInt64(gpa) + UInt64(size), by: 4096).map { $0 }
    }
}

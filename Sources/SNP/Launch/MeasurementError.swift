/// Why a launch measurement was refused. Each case names what failed and what to check; where
/// sev-snp-measure 0.0.13 fails too, the text says so, and where it would print a meaningless value
/// (no SEV metadata, a firmware size that is not a page multiple) this library refuses instead.
public enum MeasurementError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The image is shorter than the 50 bytes that hold the reset vector and the footer entry.
    case firmwareTooSmall(size: Int)
    /// SNP measures the firmware page by page; its size must be a multiple of 4096.
    case firmwareSizeNotPageMultiple(size: Int)
    /// A GUIDed footer-table entry has a size below its own 18-byte header or runs past the table.
    case footerEntryInvalid(guid: String, size: Int)
    /// The footer entry claims a table longer than the bytes in front of it.
    case footerTableOutOfBounds(tableSize: Int, imageSize: Int)
    /// A footer entry the measurement needs carries fewer data bytes than its fields.
    case footerEntryTooShort(name: String, expected: Int, actual: Int)
    /// The SEV metadata offset points outside the image, or its descriptors run past it.
    case metadataOutOfBounds(offsetFromEnd: UInt32, imageSize: Int)
    /// The SEV metadata header does not start with "ASEV".
    case metadataSignatureInvalid([UInt8])
    /// The SEV metadata header version is not 1.
    case metadataVersionUnsupported(UInt32)
    /// The header's size is smaller than 16 bytes plus 12 per section descriptor.
    case metadataSizeInvalid(size: UInt32, sections: UInt32)
    /// A section descriptor has a type outside SNP_SEC_MEM, SNP_SECRETS, CPUID, SVSM_CAA, SNP_KERNEL_HASHES.
    case metadataSectionTypeUnknown(type: UInt32, gpa: UInt32)
    /// A section measured page by page has a size that is not a multiple of 4096.
    case metadataSectionSizeNotPageMultiple(SEVMetadataSection)
    /// SNP without any SEV metadata: the firmware cannot run as an SNP guest.
    case noSEVMetadata
    /// A kernel was given, but no metadata section has type SNP_KERNEL_HASHES.
    case noKernelHashesSection
    /// The SNP_KERNEL_HASHES section must be exactly one page when a kernel is measured.
    case kernelHashesSectionSize(UInt32)
    /// The footer table has no SEV hash table block (7255371f-…), so the hashes page offset is unknown.
    case noHashTableEntry
    /// The hashes table at this GPA would run past the end of its 4 KiB page.
    case hashTableCrossesPage(gpa: UInt32)
    /// SEV/SEV-ES: the hash table block is missing or has GPA 0 (a generic OVMF build).
    case kernelHashesUnsupported
    /// The footer table has no SEV-ES reset block (00f771de-…), so the AP start address is unknown.
    case noSEVESResetBlock
    /// At least one vCPU must be launched.
    case vcpuCountInvalid(Int)
    /// The `--snp-ovmf-hash` seed must be a 48-byte SHA-384 launch digest.
    case ovmfHashLengthInvalid(Int)

    public var description: String {
        switch self {
        case .firmwareTooSmall(let size):
            "the firmware image is \(size) bytes, too small to hold OVMF's reset vector and GUIDed footer table; "
                + "check that --ovmf names the OVMF image"
        case .firmwareSizeNotPageMultiple(let size):
            "the firmware image is \(size) bytes, not a multiple of 4096, so it cannot be measured page by page; "
                + "check that --ovmf names a complete OVMF image (sev-snp-measure fails here with an AssertionError)"
        case .footerEntryInvalid(let guid, let size):
            "the OVMF footer table entry \(guid) has size \(size), which is below its 18-byte header or past the "
                + "table's start; the image is damaged or not OVMF"
        case .footerTableOutOfBounds(let tableSize, let imageSize):
            "the OVMF footer table claims \(tableSize) bytes, more than the \(imageSize)-byte image holds; "
                + "the image is damaged or not OVMF"
        case .footerEntryTooShort(let name, let expected, let actual):
            "the OVMF footer table's \(name) entry has \(actual) data bytes, \(expected) are needed; "
                + "the image is damaged"
        case .metadataOutOfBounds(let offset, let imageSize):
            "the SEV metadata at 0x\(String(offset, radix: 16)) bytes from the end does not fit in the "
                + "\(imageSize)-byte image; when using --snp-ovmf-hash, pass at least the image's last 4 KiB"
        case .metadataSignatureInvalid(let signature):
            "the SEV metadata header starts with \(Hex.encode(signature)), not \"ASEV\"; the image is damaged"
        case .metadataVersionUnsupported(let version):
            "the SEV metadata header has version \(version); only version 1 is defined"
        case .metadataSizeInvalid(let size, let sections):
            "the SEV metadata header says \(size) bytes for \(sections) sections, less than the \(16 + 12 * UInt64(sections)) "
                + "they need; the image is damaged"
        case .metadataSectionTypeUnknown(let type, let gpa):
            "the SEV metadata section at GPA 0x\(String(gpa, radix: 16)) has unknown type 0x\(String(type, radix: 16)) "
                + "(sev-snp-measure: unknown OVMF metadata section type); this firmware is newer than the calculator"
        case .metadataSectionSizeNotPageMultiple(let section):
            "the SEV metadata section \(section) is not a whole number of 4096-byte pages; the image is damaged"
        case .noSEVMetadata:
            "the firmware has no SEV metadata (no dc886566-… entry in its footer table), so it cannot launch an "
                + "SEV-SNP guest and any SNP measurement of it would be meaningless; use an SEV-capable OVMF build "
                + "such as OVMF.amdsev.fd (Debian package ovmf-amdsev)"
        case .noKernelHashesSection:
            "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section: this firmware cannot "
                + "measure a kernel, initrd and cmdline; use an AmdSev OVMF build (OvmfPkg/AmdSev, Debian package "
                + "ovmf-amdsev) or measure without --kernel"
        case .kernelHashesSectionSize(let size):
            "the SNP_KERNEL_HASHES section is 0x\(String(size, radix: 16)) bytes; with a kernel it must be exactly "
                + "one 4096-byte page"
        case .noHashTableEntry:
            "the OVMF footer table has no SEV hash table block (7255371f-…), so the hashes page cannot be built; "
                + "use an AmdSev OVMF build or measure without --kernel"
        case .hashTableCrossesPage(let gpa):
            "the SEV hash table block puts the hashes table at GPA 0x\(String(gpa, radix: 16)), where its "
                + "\(SEVHashTable.paddedByteCount) bytes would cross a page boundary; the image is damaged"
        case .kernelHashesUnsupported:
            "Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement: the SEV hash table block "
                + "(7255371f-…) is missing or has GPA 0; use an AmdSev OVMF build or measure without --kernel"
        case .noSEVESResetBlock:
            "Can't find SEV_ES_RESET_BLOCK_GUID entry in OVMF table: the firmware has no SEV-ES reset block, so the "
                + "APs' start address is unknown; check that --ovmf names an SEV-capable OVMF image"
        case .vcpuCountInvalid(let count):
            "the vCPU count is \(count); at least 1 is needed (the -smp value the guest boots with)"
        case .ovmfHashLengthInvalid(let count):
            "the OVMF hash seed is \(count) bytes; it must be the 48-byte value printed by --mode snp:ovmf-hash"
        }
    }
}

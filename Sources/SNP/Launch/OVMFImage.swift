/// The OVMF image as the launch sees it: the GUIDed footer table (GUID → data) and the SEV metadata
/// sections in table order (`sev-snp-measure` `ovmf.py`; edk2 `OvmfPkg/ResetVector`).
///
/// The footer table is read backwards from the end of the image. The footer entry's 18-byte header
/// (`le16 size ‖ guid`) sits at `size - 32 - 18`, just before the 32-byte reset vector; every header
/// follows its data, and each size counts the data plus the header. The SEV metadata (`"ASEV"`,
/// `le32 size`, `le32 version = 1`, `le32 count`, then 12-byte descriptors) starts at the image size minus
/// the offset in the dc886566-… entry.
///
/// Parsing does not require metadata: an image without SEV support parses to an empty section list,
/// and the caller decides whether that is acceptable (`LaunchDigest.snp` refuses it).
public struct OVMFImage: Sendable {
    /// One entry of the GUIDed footer table.
    public struct FooterEntry: Hashable, Sendable {
        /// The GUID in canonical lower-case text form.
        public var guid: String
        /// The entry's data, without its 18-byte header.
        public var data: [UInt8]
    }

    /// The reset vector occupies the last 32 bytes; the footer entry's header is just in front of it.
    static let resetVectorByteCount = 32
    static let entryHeaderByteCount = 18
    static let metadataHeaderByteCount = 16

    /// The image size in bytes; SNP maps the image to end at 4 GiB, so it starts at GPA 2^32 - size.
    public let size: Int
    /// The footer table entries in the order they are read, from the end of the image backwards.
    public let footerTable: [FooterEntry]
    /// The SEV metadata sections in table order (which is not GPA order).
    public let metadataSections: [SEVMetadataSection]
    let table: [EFIGUID: [UInt8]]

    /// Parses the footer table and the SEV metadata of `bytes`, a whole image or, for use with a seed
    /// from `--snp-ovmf-hash`, its last 4 KiB.
    public init(bytes: [UInt8]) throws(MeasurementError) {
        size = bytes.count
        (footerTable, table) = try Self.footerTable(of: bytes)
        metadataSections = try Self.metadata(of: bytes, table: table)
        // Validate the entries the measurement reads, so the accessors below cannot fail.
        _ = try Self.le32(table[.sevESResetBlock], name: "SEV-ES reset block")
        _ = try Self.le32(table[.sevHashTableBlock], name: "SEV hash table block")
    }

    /// The AP reset address from the SEV-ES reset block (00f771de-…), e.g. 0x0080b004; nil if absent.
    public var sevESResetEIP: UInt32? { try? Self.le32(table[.sevESResetBlock], name: "") }

    /// The GPA of the kernel/initrd/cmdline hashes table from the SEV hash table block (7255371f-…), e.g.
    /// 0x00810c00; nil if absent. Generic OVMF builds carry the entry with GPA 0.
    public var hashTableGPA: UInt32? { try? Self.le32(table[.sevHashTableBlock], name: "") }

    /// True when a metadata section has type SNP_KERNEL_HASHES, so SNP can measure a kernel.
    public var hasKernelHashesSection: Bool { metadataSections.contains { $0.kind == .kernelHashes } }

    /// The data of the footer entry with this canonical GUID, if present.
    public func footerEntry(_ guid: String) -> [UInt8]? {
        footerTable.first { $0.guid == guid.lowercased() }?.data
    }

    private static func footerTable(
        of bytes: [UInt8]
    ) throws(MeasurementError) -> ([FooterEntry], [EFIGUID: [UInt8]]) {
        guard bytes.count >= resetVectorByteCount + entryHeaderByteCount else {
            throw .firmwareTooSmall(size: bytes.count)
        }
        let footerStart = bytes.count - resetVectorByteCount - entryHeaderByteCount
        let footerGUID = EFIGUID(storage: bytes[footerStart + 2..<footerStart + entryHeaderByteCount])
        // Like the reference: no footer GUID, or a size below the header, means an empty table.
        let tableSize = Int(le16(bytes, footerStart)) - entryHeaderByteCount
        guard footerGUID == .footer, tableSize >= 0 else { return ([], [:]) }
        guard tableSize <= footerStart else {
            throw .footerTableOutOfBounds(tableSize: tableSize + entryHeaderByteCount, imageSize: bytes.count)
        }
        let start = footerStart - tableSize
        var end = footerStart
        var entries: [FooterEntry] = []
        var table: [EFIGUID: [UInt8]] = [:]
        while end - start >= entryHeaderByteCount {
            let header = end - entryHeaderByteCount
            let entrySize = Int(le16(bytes, header))
            let guid = EFIGUID(storage: bytes[header + 2..<end])
            guard entrySize >= entryHeaderByteCount, entrySize <= end - start else {
                throw .footerEntryInvalid(guid: guid.description, size: entrySize)
            }
            let data = Array(bytes[end - entrySize..<header])
            entries.append(FooterEntry(guid: guid.description, data: data))
            table[guid] = data  // a later duplicate overwrites an earlier one, as in the reference
            end -= entrySize
        }
        return (entries, table)
    }

    private static func metadata(
        of bytes: [UInt8], table: [EFIGUID: [UInt8]]
    ) throws(MeasurementError) -> [SEVMetadataSection] {
        guard let entry = table[.sevMetadataOffset] else { return [] }
        let offset = try le32(entry, name: "SEV metadata offset")!
        guard Int(offset) <= bytes.count, Int(offset) >= metadataHeaderByteCount else {
            throw .metadataOutOfBounds(offsetFromEnd: offset, imageSize: bytes.count)
        }
        let start = bytes.count - Int(offset)
        let signature = Array(bytes[start..<start + 4])  // 0x00
        guard signature == Array("ASEV".utf8) else { throw .metadataSignatureInvalid(signature) }
        let headerSize = le32(bytes, start + 4)  // 0x04, includes the header
        let version = le32(bytes, start + 8)  // 0x08
        guard version == 1 else { throw .metadataVersionUnsupported(version) }
        let count = le32(bytes, start + 12)  // 0x0C
        let needed = UInt64(metadataHeaderByteCount) + UInt64(SEVMetadataSection.byteCount) * UInt64(count)
        guard UInt64(headerSize) >= needed else { throw .metadataSizeInvalid(size: headerSize, sections: count) }
        guard UInt64(start) + needed <= UInt64(bytes.count) else {
            throw .metadataOutOfBounds(offsetFromEnd: offset, imageSize: bytes.count)
        }
        var sections: [SEVMetadataSection] = []
        for index in 0..<Int(count) {
            let at = start + metadataHeaderByteCount + index * SEVMetadataSection.byteCount
            let gpa = le32(bytes, at)
            let type = le32(bytes, at + 8)
            guard let kind = SEVMetadataSection.Kind(rawValue: type) else {
                throw .metadataSectionTypeUnknown(type: type, gpa: gpa)
            }
            sections.append(SEVMetadataSection(gpa: gpa, size: le32(bytes, at + 4), kind: kind))
        }
        return sections
    }

    /// The leading le32 of a footer entry's data; nil when the entry is absent.
    private static func le32(_ data: [UInt8]?, name: String) throws(MeasurementError) -> UInt32? {
        guard let data else { return nil }
        guard data.count >= 4 else { throw .footerEntryTooShort(name: name, expected: 4, actual: data.count) }
        return le32(data, 0)
    }

    static func le16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}

/// An EFI GUID as OVMF and QEMU store it: the mixed-endian "bytes_le" order, where the first three fields
/// (4, 2 and 2 bytes) are little-endian and the last 8 bytes are as written.
///
/// `96b582de-1fb2-45f7-baea-a366c55a082d` is stored as `de 82 b5 96 b2 1f f7 45 ba ea a3 66 c5 5a 08 2d`.
struct EFIGUID: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes in storage (bytes_le) order.
    let bytes: [UInt8]

    init(storage bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16, "an EFI GUID is 16 bytes")
        self.bytes = Array(bytes)
    }

    /// A GUID from its canonical text form; only used with the constants below.
    init(_ canonical: String) {
        let rfc = try! Hex.decode(canonical.split(separator: "-").joined(), count: 16)
        self.init(storage: Self.swapFields(rfc))
    }

    /// The canonical lower-case text form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    var description: String {
        let rfc = Self.swapFields(bytes)
        return [rfc[0..<4], rfc[4..<6], rfc[6..<8], rfc[8..<10], rfc[10..<16]].map { Hex.encode($0) }
            .joined(separator: "-")
    }

    /// RFC (big-endian) order ↔ bytes_le order; the conversion is its own inverse.
    private static func swapFields(_ b: [UInt8]) -> [UInt8] {
        Array(b[0..<4].reversed()) + b[4..<6].reversed() + b[6..<8].reversed() + b[8..<16]
    }
}

extension EFIGUID {
    /// The footer entry that ends OVMF's GUIDed table (OvmfPkg/ResetVector).
    static let footer = EFIGUID("96b582de-1fb2-45f7-baea-a366c55a082d")
    /// SEV-ES reset block ("SEV info block"): le32 AP reset address.
    static let sevESResetBlock = EFIGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
    /// SEV metadata offset: le32 distance from the end of the image to the "ASEV" header.
    static let sevMetadataOffset = EFIGUID("dc886566-984a-4798-a75e-5585a7bf67cc")
    /// SEV hash table block: le32 GPA, le32 size of the kernel/initrd/cmdline hashes table.
    static let sevHashTableBlock = EFIGUID("7255371f-3a3b-4b04-927b-1da6efa8d454")

    /// SEV_HASH_TABLE header (QEMU `sev_hash_table_header_guid`).
    static let hashTableHeader = EFIGUID("9438d606-4f22-4cc9-b479-a793d411fd21")
    /// SEV_HASH_TABLE cmdline entry.
    static let hashTableCmdline = EFIGUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
    /// SEV_HASH_TABLE initrd entry.
    static let hashTableInitrd = EFIGUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
    /// SEV_HASH_TABLE kernel entry.
    static let hashTableKernel = EFIGUID("4de79437-abd2-427f-b835-d5b172d2045b")
}

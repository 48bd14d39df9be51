import Crypto

/// QEMU's SEV hashes table for measured direct boot (`SevHashTable` in `target/i386/sev.c`), which OVMF
/// checks the kernel, initrd and cmdline it receives over fw_cfg against. All fields packed, GUIDs bytes_le:
///
/// ```
/// 0x00 16  header GUID 9438d606-…        0x10  2  le16 length = 168 (unpadded)
/// 0x12 50  cmdline: GUID ‖ le16 50 ‖ SHA-256(UTF-8 cmdline ‖ 0x00)
/// 0x44 50  initrd : GUID ‖ le16 50 ‖ SHA-256(initrd file, or empty)
/// 0x76 50  kernel : GUID ‖ le16 50 ‖ SHA-256(bzImage file as on disk)
/// 0xa8  8  zero padding to 176 (PaddedSevHashTable)
/// ```
public enum SEVHashTable {
    /// The unpadded table length, stored in the header.
    public static let byteCount = 168
    /// The table padded to a multiple of 16, as QEMU copies it.
    public static let paddedByteCount = 176
    static let entryByteCount = 50

    /// The 176-byte padded table. A nil initrd is hashed as empty input; a nil or empty cmdline as a
    /// single NUL (QEMU hashes the cmdline's bytes plus its terminating NUL).
    public static func padded(kernel: [UInt8], initrd: [UInt8]?, cmdline: String?) -> [UInt8] {
        padded(kernel: MeasuredFile(bytes: kernel), initrd: initrd.map(MeasuredFile.init(bytes:)), cmdline: cmdline)
    }

    /// The same from files already hashed.
    public static func padded(kernel: MeasuredFile, initrd: MeasuredFile?, cmdline: String?) -> [UInt8] {
        var table = ByteWriter(capacity: paddedByteCount)
        table.bytes(EFIGUID.hashTableHeader.bytes)
        table.integer(UInt16(byteCount))
        func entry(_ guid: EFIGUID, _ digest: [UInt8]) {
            table.bytes(guid.bytes)
            table.integer(UInt16(entryByteCount))
            table.bytes(digest)
        }
        entry(.hashTableCmdline, Array(SHA256.hash(data: Array((cmdline ?? "").utf8) + [0])))
        entry(.hashTableInitrd, (initrd ?? MeasuredFile(bytes: [])).sha256)
        entry(.hashTableKernel, kernel.sha256)
        table.reserved(paddedByteCount - byteCount)
        return table.bytes
    }

    /// The SNP hashes page: 4096 zero bytes with the padded table at `tableGPA & 0xfff`
    /// (QEMU `snp_launch_update_kernel_hashes`). The table must fit in the page, as the reference asserts.
    static func page(table: [UInt8], tableGPA: UInt32) throws(MeasurementError) -> [UInt8] {
        let offset = Int(tableGPA & 0xFFF)
        guard offset + table.count <= 4096 else { throw .hashTableCrossesPage(gpa: tableGPA) }
        var page = [UInt8](repeating: 0, count: 4096)
        page.replaceSubrange(offset..<offset + table.count, with: table)
        return page
    }
}

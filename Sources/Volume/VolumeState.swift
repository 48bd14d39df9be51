#if canImport(Glibc)
import Glibc
#endif

/// What `LUKSVolume.probe` found.
public enum VolumeState: Sendable, Equatable {
    /// Blank: every byte of the device is zero. The whole device is read once (only when the head is zero: a
    /// first boot), because data without any signature in the middle of a disk is still someone's data. A fresh
    /// sparse file or a new cloud disk is blank; anything else is never formatted.
    case blank
    /// A LUKS2 binary header with this UUID (an unvalidated hint: `readHeader` validates).
    case luks2(uuid: String)
    /// Anything else, with what was recognised ("ext4 superblock", "non-zero byte at offset 4096", …).
    case foreign(String)
}

extension LUKSVolume {
    /// Classifies the device as blank, LUKS2 or foreign. A LUKS2 or recognisably foreign device is decided by its
    /// first MiB; calling a device blank takes reading all of it.
    public func probe() throws(VolumeError) -> VolumeState {
        let file = DeviceFile(path: path)
        let size = try file.size()
        let headCount = Int(min(size, Int64(Layout.blankCheckSize)))
        let head = try file.read(offset: 0, count: headCount)
        if head.starts(with: BinaryHeader.primaryMagic), head.count >= Layout.binaryHeaderSize {
            let header = BinaryHeader(head[0..<Layout.binaryHeaderSize])
            guard header.version == 2 else { return .foreign("LUKS version \(header.version) header") }
            return .luks2(uuid: BinaryHeader.cString(header.uuid)?.lowercased() ?? "(unreadable UUID)")
        }
        if let index = head.firstIndex(where: { $0 != 0 }) { return .foreign(Self.describe(head, firstNonZero: index)) }
        // The end first (a GPT backup lives there), then everything between.
        let tailOffset = max(Int64(headCount), size - Int64(Layout.blankCheckSize))
        let tail = try file.read(offset: tailOffset, count: Int(size - tailOffset))
        if let index = tail.firstIndex(where: { $0 != 0 }) {
            return .foreign("non-zero byte at offset \(tailOffset + Int64(index)) in the last MiB (a GPT backup?)")
        }
        var offset = Int64(headCount)
        while offset < tailOffset {
            let count = Int(min(Int64(Layout.blankScanChunk), tailOffset - offset))
            let chunk = try file.read(offset: offset, count: count)
            if let index = Self.firstNonZero(chunk) {
                return .foreign("non-zero byte at offset \(offset + Int64(index))")
            }
            offset += Int64(count)
        }
        return .blank
    }

    /// The index of the first non-zero byte: libc's vectorised `memcmp` against zeros first (this scans whole
    /// disks on a first boot, under TCG too), then the exact position in the chunk that differs.
    static func firstNonZero(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { raw -> Int? in
            var start = 0
            while start < raw.count {
                let count = min(zeros.count, raw.count - start)
                let equal = zeros.withUnsafeBytes { memcmp(raw.baseAddress! + start, $0.baseAddress!, count) == 0 }
                if !equal { return (start..<start + count).first { raw[$0] != 0 } }
                start += count
            }
            return nil
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 64 << 10)

    private static func describe(_ head: [UInt8], firstNonZero: Int) -> String {
        func at(_ offset: Int, _ bytes: [UInt8]) -> Bool {
            head.count >= offset + bytes.count && Array(head[offset..<offset + bytes.count]) == bytes
        }
        if at(0, BinaryHeader.secondaryMagic) { return "a LUKS2 secondary header at offset 0" }
        if at(512, Array("EFI PART".utf8)) { return "a GPT partition table" }
        if at(0x438, [0x53, 0xEF]) { return "an ext2/3/4 superblock" }
        if at(0, Array("XFSB".utf8)) { return "an XFS superblock" }
        if at(0x10040, Array("_BHRfS_M".utf8)) { return "a btrfs superblock" }
        if at(510, [0x55, 0xAA]) { return "an MBR boot signature" }
        return "non-zero byte at offset \(firstNonZero)"
    }
}

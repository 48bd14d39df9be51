internal import Crypto
import StrictJSON

/// One LUKS2 binary header (4096 bytes, big-endian), per the LUKS2 on-disk format specification §2.
///
/// ```
/// 0x000  magic[6]            "LUKS\xba\xbe" (primary) or "SKUL\xba\xbe" (secondary)
/// 0x006  version u16         2
/// 0x008  hdr_size u64        binary header + JSON area
/// 0x010  seqid u64
/// 0x018  label[48]
/// 0x048  checksum_alg[32]    "sha256"
/// 0x068  salt[64]
/// 0x0A8  uuid[40]
/// 0x0D0  subsystem[48]
/// 0x100  hdr_offset u64
/// 0x108  _padding[184]
/// 0x1C0  csum[64]            SHA-256 over hdr_size bytes with this field zeroed, then zero padding
/// 0x200  _padding4096[3584]
/// ```
struct BinaryHeader: Equatable {
    static let primaryMagic: [UInt8] = [0x4C, 0x55, 0x4B, 0x53, 0xBA, 0xBE]
    static let secondaryMagic: [UInt8] = [0x53, 0x4B, 0x55, 0x4C, 0xBA, 0xBE]
    static let checksumOffset = 0x1C0
    static let checksumFieldSize = 64

    var magic: [UInt8]
    var version: UInt16
    var headerSize: UInt64
    var sequenceID: UInt64
    var label: [UInt8]
    var checksumAlgorithm: [UInt8]
    var salt: [UInt8]
    var uuid: [UInt8]
    var subsystem: [UInt8]
    var headerOffset: UInt64
    var checksum: [UInt8]
    /// Whether both padding ranges are all zero.
    var paddingIsZero: Bool

    /// Reads the fields of the 4096 bytes at the start of `bytes` (never fails: checks come afterwards).
    init(_ bytes: ArraySlice<UInt8>) {
        let base = bytes.startIndex
        func field(_ offset: Int, _ count: Int) -> [UInt8] { Array(bytes[base + offset..<base + offset + count]) }
        func integer<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            field(offset, MemoryLayout<T>.size).reduce(0) { $0 << 8 | T($1) }
        }
        magic = field(0x000, 6)
        version = integer(0x006, UInt16.self)
        headerSize = integer(0x008, UInt64.self)
        sequenceID = integer(0x010, UInt64.self)
        label = field(0x018, 48)
        checksumAlgorithm = field(0x048, 32)
        salt = field(0x068, 64)
        uuid = field(0x0A8, 40)
        subsystem = field(0x0D0, 48)
        headerOffset = integer(0x100, UInt64.self)
        checksum = field(Self.checksumOffset, Self.checksumFieldSize)
        paddingIsZero =
            field(0x108, 184).allSatisfy { $0 == 0 } && field(0x200, 4096 - 0x200).allSatisfy { $0 == 0 }
    }

    /// A NUL-terminated C string field; `nil` unless printable ASCII followed only by NULs.
    static func cString(_ field: [UInt8]) -> String? {
        let text = field.prefix { $0 != 0 }
        guard field.dropFirst(text.count).allSatisfy({ $0 == 0 }), text.allSatisfy({ (0x20..<0x7F).contains($0) })
        else { return nil }
        return String(decoding: text, as: UTF8.self)
    }

    /// SHA-256 over one metadata copy (binary header + JSON area) with the checksum field zeroed, padded to the
    /// 64-byte field.
    static func checksum(of metadata: ArraySlice<UInt8>) -> [UInt8] {
        var copy = Array(metadata)
        for index in checksumOffset..<checksumOffset + checksumFieldSize { copy[index] = 0 }
        return Array(SHA256.hash(data: copy)) + Array(repeating: 0, count: checksumFieldSize - SHA256.byteCount)
    }
}

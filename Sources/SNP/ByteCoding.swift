/// Reads a firmware structure front to back. SEV-SNP integers are little-endian.
public struct ByteReader: Sendable {
    private let storage: [UInt8]
    /// The offset of the next byte to read, from the start of the structure.
    public private(set) var offset = 0

    public init(_ bytes: some Collection<UInt8>) { self.storage = Array(bytes) }

    /// How many bytes are left.
    public var remaining: Int { storage.count - offset }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) throws(LayoutError) -> T {
        try take(MemoryLayout<T>.size).reversed().reduce(0) { $0 << 8 | T($1) }
    }

    public mutating func bytes(_ count: Int) throws(LayoutError) -> [UInt8] { Array(try take(count)) }

    /// A range the specification marks reserved: it must be zero.
    public mutating func reserved(_ count: Int) throws(LayoutError) {
        let start = offset
        let range = try take(count)
        if let bad = range.firstIndex(where: { $0 != 0 }) {
            throw .reservedNotZero(offset: start + (bad - range.startIndex))
        }
    }

    private mutating func take(_ count: Int) throws(LayoutError) -> ArraySlice<UInt8> {
        guard count >= 0, storage.count - offset >= count else {
            throw .truncated(expected: offset + count, actual: storage.count)
        }
        defer { offset += count }
        return storage[offset..<offset + count]
    }
}

/// Writes a firmware structure front to back; the mirror image of `ByteReader`.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    /// Appends `value`, which must be exactly `count` bytes long (checked by the caller's type).
    public mutating func bytes(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    public mutating func reserved(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }
}

/// What is wrong with the bytes of a firmware structure.
public enum LayoutError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(expected: Int, actual: Int)
    case wrongSize(structure: String, expected: Int, actual: Int)
    case reservedNotZero(offset: Int)
    case wrongFieldSize(field: String, expected: Int, actual: Int)
    case unsupportedVersion(structure: String, version: UInt32)
    case invalidValue(field: String, detail: String)

    public var description: String {
        switch self {
        case .truncated(let expected, let actual):
            "the data ends after \(actual) bytes, but \(expected) are needed"
        case .wrongSize(let structure, let expected, let actual):
            "\(structure) must be \(expected) bytes (0x\(String(expected, radix: 16))), this one is \(actual)"
        case .reservedNotZero(let offset):
            "reserved byte at offset 0x\(String(offset, radix: 16, uppercase: true)) is not zero"
        case .wrongFieldSize(let field, let expected, let actual):
            "\(field) must be \(expected) bytes, got \(actual)"
        case .unsupportedVersion(let structure, let version):
            "\(structure) version \(version) is not supported (this build reads versions 2 to 5)"
        case .invalidValue(let field, let detail):
            "\(field): \(detail)"
        }
    }
}

extension Array where Element == UInt8 {
    /// Checks a fixed-size byte field before it is stored in a structure.
    static func checked(_ value: [UInt8], field: String, count: Int) throws(LayoutError) -> [UInt8] {
        guard value.count == count else { throw .wrongFieldSize(field: field, expected: count, actual: value.count) }
        return value
    }
}

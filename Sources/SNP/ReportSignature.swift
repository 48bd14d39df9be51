public import Crypto

/// SIGNATURE (0x2A0, 512 bytes): ECDSA P-384 with SHA-384. R and S are 72-byte little-endian integers
/// (the low 48 bytes used), then 368 reserved zero bytes. The conversion to and from swift-crypto's
/// big-endian form happens here and nowhere else.
public struct ReportSignature: Hashable, Sendable {
    public static let byteCount = 512

    public var r: [UInt8]  // 0x2A0, 72, little-endian
    public var s: [UInt8]  // 0x2E8, 72, little-endian; reserved 0x330 (368)

    /// An all-zero signature (an unsigned report).
    public init() {
        r = Array(repeating: 0, count: 72)
        s = Array(repeating: 0, count: 72)
    }

    init(from reader: inout ByteReader) throws(LayoutError) {
        r = try reader.bytes(72)
        s = try reader.bytes(72)
        try reader.reserved(368)
    }

    func write(to w: inout ByteWriter) {
        w.bytes(r)
        w.bytes(s)
        w.reserved(368)
    }

    /// The firmware layout of a swift-crypto signature.
    public init(_ signature: P384.Signing.ECDSASignature) {
        let raw = Array(signature.rawRepresentation)
        r = raw[0..<48].reversed() + Array(repeating: 0, count: 24)
        s = raw[48..<96].reversed() + Array(repeating: 0, count: 24)
    }

    /// True when every byte is zero, as in a report signed by no key.
    public var isZero: Bool { r.allSatisfy { $0 == 0 } && s.allSatisfy { $0 == 0 } }

    /// True when the unused high bytes (48–71) of R and S are zero, as the firmware writes them.
    public var hasCanonicalPadding: Bool {
        r.count == 72 && s.count == 72 && r[48...].allSatisfy { $0 == 0 } && s[48...].allSatisfy { $0 == 0 }
    }

    /// The form swift-crypto verifies: 48-byte big-endian R ‖ S.
    public func p384() throws -> P384.Signing.ECDSASignature {
        try P384.Signing.ECDSASignature(rawRepresentation: Array(r.prefix(48).reversed() + s.prefix(48).reversed()))
    }
}

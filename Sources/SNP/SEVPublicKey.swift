public import Crypto

/// The SEV public key structure (0x404 bytes) the ID auth info carries for the ID key and the author key:
/// CURVE (le32; 2 = P-384) at 0x000, QX at 0x004 and QY at 0x04C as 72-byte little-endian integers (the low
/// 48 bytes used), then reserved zeros from 0x094 to 0x403. The report's ID_KEY_DIGEST and AUTHOR_KEY_DIGEST
/// are SHA-384 of these 0x404 bytes.
public struct SEVPublicKey: Hashable, Sendable {
    public static let byteCount = 0x404
    /// CURVE value for NIST P-384 (secp384r1), the only curve SEV-SNP ID keys use.
    public static let curveP384: UInt32 = 2

    public var curve: UInt32  // 0x000
    public var qx: [UInt8]  // 0x004, 72, little-endian
    public var qy: [UInt8]  // 0x04C, 72, little-endian; reserved 0x094 (0x370)

    /// The firmware layout of a swift-crypto P-384 key.
    public init(_ key: P384.Signing.PublicKey) {
        let point = Array(key.x963Representation)  // 04 ‖ X (48, big-endian) ‖ Y (48, big-endian)
        curve = Self.curveP384
        qx = point[1..<49].reversed() + Array(repeating: 0, count: 24)
        qy = point[49..<97].reversed() + Array(repeating: 0, count: 24)
    }

    /// A key structure from its fields; QX and QY are 72-byte little-endian.
    public init(curve: UInt32, qx: [UInt8], qy: [UInt8]) throws(LayoutError) {
        self.curve = curve
        self.qx = try .checked(qx, field: "QX", count: 72)
        self.qy = try .checked(qy, field: "QY", count: 72)
    }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "SEV public key", expected: Self.byteCount, actual: bytes.count)
        }
        var r = ByteReader(bytes)
        try self.init(from: &r)
    }

    init(from r: inout ByteReader) throws(LayoutError) {
        curve = try r.integer()
        qx = try r.bytes(72)
        qy = try r.bytes(72)
        try r.reserved(0x370)
    }

    func write(to w: inout ByteWriter) {
        w.integer(curve)
        w.bytes(qx)
        w.bytes(qy)
        w.reserved(0x370)
    }

    /// The 0x404-byte structure.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        write(to: &w)
        return w.bytes
    }

    /// SHA-384 of the 0x404-byte structure: what the report shows as ID_KEY_DIGEST or AUTHOR_KEY_DIGEST.
    public var digest: [UInt8] { Array(SHA384.hash(data: bytes)) }

    /// True when every byte is zero (no key).
    public var isZero: Bool { curve == 0 && qx.allSatisfy { $0 == 0 } && qy.allSatisfy { $0 == 0 } }

    /// The key swift-crypto verifies with. Refuses another curve, non-zero bytes above the 48 a P-384
    /// coordinate has, and a point that is not on the curve.
    public func p384() throws(LayoutError) -> P384.Signing.PublicKey {
        guard curve == Self.curveP384 else {
            throw .invalidValue(field: "CURVE", detail: "is \(curve); only 2 (P-384) is defined")
        }
        guard qx.count == 72, qy.count == 72 else {
            throw .invalidValue(field: "QX/QY", detail: "must be 72 bytes each, got \(qx.count) and \(qy.count)")
        }
        guard qx[48...].allSatisfy({ $0 == 0 }), qy[48...].allSatisfy({ $0 == 0 }) else {
            throw .invalidValue(field: "QX/QY", detail: "has non-zero bytes above the 48 a P-384 coordinate uses")
        }
        let point: [UInt8] = [0x04] + qx.prefix(48).reversed() + qy.prefix(48).reversed()
        do { return try P384.Signing.PublicKey(x963Representation: point) } catch {
            throw .invalidValue(field: "QX/QY", detail: "is not a point on the P-384 curve")
        }
    }
}

/// The SEV signature structure (0x200 bytes): R at 0x000 and S at 0x048 as 72-byte little-endian integers
/// (the low 48 bytes used), then reserved zeros from 0x090 to 0x1FF. ECDSA P-384 over SHA-384 of the message.
/// It is the layout of the report's SIGNATURE; the byte-order conversion is `ReportSignature`'s.
public struct SEVSignature: Hashable, Sendable {
    public static let byteCount = 0x200

    public var r: [UInt8]  // 0x000, 72, little-endian
    public var s: [UInt8]  // 0x048, 72, little-endian; reserved 0x090 (0x170)

    /// An all-zero signature (no signature).
    public init() {
        r = Array(repeating: 0, count: 72)
        s = Array(repeating: 0, count: 72)
    }

    /// A signature from its fields; R and S are 72-byte little-endian.
    public init(r: [UInt8], s: [UInt8]) throws(LayoutError) {
        self.r = try .checked(r, field: "R", count: 72)
        self.s = try .checked(s, field: "S", count: 72)
    }

    /// The firmware layout of a swift-crypto signature.
    public init(_ signature: P384.Signing.ECDSASignature) {
        let converted = ReportSignature(signature)
        r = converted.r
        s = converted.s
    }

    public init(bytes: some Collection<UInt8>) throws(LayoutError) {
        guard bytes.count == Self.byteCount else {
            throw .wrongSize(structure: "SEV signature", expected: Self.byteCount, actual: bytes.count)
        }
        var reader = ByteReader(bytes)
        try self.init(from: &reader)
    }

    init(from reader: inout ByteReader) throws(LayoutError) {
        r = try reader.bytes(72)
        s = try reader.bytes(72)
        try reader.reserved(0x170)
    }

    func write(to w: inout ByteWriter) {
        w.bytes(r)
        w.bytes(s)
        w.reserved(0x170)
    }

    /// The 0x200-byte structure.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        write(to: &w)
        return w.bytes
    }

    /// True when every byte is zero (no signature).
    public var isZero: Bool { r.allSatisfy { $0 == 0 } && s.allSatisfy { $0 == 0 } }

    /// The form swift-crypto verifies: 48-byte big-endian R ‖ S. Refuses non-zero bytes above the 48 a
    /// P-384 scalar has (the firmware reads 72-byte integers, so such a signature cannot verify).
    public func p384() throws(LayoutError) -> P384.Signing.ECDSASignature {
        guard r.count == 72, s.count == 72 else {
            throw .invalidValue(field: "R/S", detail: "must be 72 bytes each, got \(r.count) and \(s.count)")
        }
        guard r[48...].allSatisfy({ $0 == 0 }), s[48...].allSatisfy({ $0 == 0 }) else {
            throw .invalidValue(field: "R/S", detail: "has non-zero bytes above the 48 a P-384 scalar uses")
        }
        var converted = ReportSignature()
        converted.r = r
        converted.s = s
        do { return try converted.p384() } catch {
            throw .invalidValue(field: "R/S", detail: "is not an ECDSA P-384 signature")
        }
    }
}

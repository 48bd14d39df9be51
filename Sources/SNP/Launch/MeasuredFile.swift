import Crypto

/// A file the launch measures only through its SHA-256 (the kernel and the initrd in the SEV hashes table):
/// its bytes, or a digest computed elsewhere (e.g. while the file is mapped, on another core).
public struct MeasuredFile: Hashable, Sendable, ExpressibleByArrayLiteral {
    /// SHA-256 of the whole file, as on disk.
    public let sha256: [UInt8]

    public init(bytes: [UInt8]) { sha256 = Array(SHA256.hash(data: bytes)) }

    /// A digest computed by the caller; it must be 32 bytes.
    public init(sha256: [UInt8]) throws(LayoutError) {
        self.sha256 = try .checked(sha256, field: "SHA-256 of a measured file", count: 32)
    }

    public init(arrayLiteral elements: UInt8...) { self.init(bytes: elements) }
}

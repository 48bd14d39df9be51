/// The extended-report certificate table (GHCB "auxblob"): 24-byte entries `{ GUID, offset, length }`
/// ended by an all-zero entry, then the DER certificates the entries point at (offsets from the table's start).
///
/// The hypervisor fills it: a guest uses it only to find certificates, never as a trust anchor.
public struct CertificateTable: Hashable, Sendable {
    /// A known table GUID, in RFC 4122 string order.
    public enum Kind: String, CaseIterable, Sendable {
        case vcek = "63da758d-e664-4564-adc5-f4b93be8accd"
        case vlek = "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
        /// ASK; also used for the ASVK.
        case ask = "4ab7b379-bbac-4fe4-a02f-05aef327c782"
        case ark = "c0b406a4-a803-4952-9743-3fb6014cd0ae"
        case crl = "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"

        /// The GUID's 16 bytes in RFC 4122 (big-endian) order.
        public var guid: [UInt8] { CertificateTable.guidBytes(rawValue) }
        /// The same GUID in the mixed-endian order of EFI/Microsoft hosts.
        public var mixedEndianGUID: [UInt8] { CertificateTable.swapMixedEndian(guid) }
    }

    public struct Entry: Hashable, Sendable {
        /// The GUID bytes as found in the table.
        public var guid: [UInt8]
        public var data: [UInt8]

        public init(guid: [UInt8], data: [UInt8]) {
            self.guid = guid
            self.data = data
        }

        public init(kind: Kind, data: [UInt8]) { self.init(guid: kind.guid, data: data) }

        /// The kind, whichever byte order the host used for the GUID.
        public var kind: Kind? {
            Kind.allCases.first { $0.guid == guid || $0.mixedEndianGUID == guid }
        }

        /// The GUID as a string in RFC 4122 order (as found; a mixed-endian GUID prints as its known kind).
        public var guidString: String { kind?.rawValue ?? CertificateTable.guidString(guid) }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// The first entry of a kind.
    public subscript(kind: Kind) -> [UInt8]? { entries.first { $0.kind == kind }?.data }

    public init(bytes: [UInt8]) throws(LayoutError) {
        var reader = ByteReader(bytes)
        var found: [Entry] = []
        while true {
            let guid = try reader.bytes(16)
            let offset: UInt32 = try reader.integer()
            let length: UInt32 = try reader.integer()
            if guid.allSatisfy({ $0 == 0 }) && offset == 0 && length == 0 { break }
            let start = Int(offset)
            let end = start + Int(length)
            guard end <= bytes.count, start >= reader.offset || length == 0 else {
                throw .invalidValue(
                    field: "certificate table entry \(found.count)",
                    detail: "offset \(offset) + length \(length) lies outside the \(bytes.count)-byte table")
            }
            found.append(Entry(guid: guid, data: Array(bytes[start..<end])))
        }
        entries = found
    }

    /// The table with its entries and data, in the order go-sev-guest and virtee write it.
    public var bytes: [UInt8] {
        let headerCount = (entries.count + 1) * 24
        var w = ByteWriter()
        var offset = headerCount
        for entry in entries {
            w.bytes(entry.guid)
            w.integer(UInt32(offset))
            w.integer(UInt32(entry.data.count))
            offset += entry.data.count
        }
        w.reserved(24)
        for entry in entries { w.bytes(entry.data) }
        return w.bytes
    }

    static func guidBytes(_ text: String) -> [UInt8] {
        (try? Hex.decode(text.replacing("-", with: ""), count: 16)) ?? Array(repeating: 0, count: 16)
    }

    static func guidString(_ bytes: [UInt8]) -> String { Hex.uuid(bytes) }

    /// Swaps the first three GUID fields between RFC 4122 and EFI mixed-endian order.
    static func swapMixedEndian(_ guid: [UInt8]) -> [UInt8] {
        Array(guid[0..<4].reversed()) + Array(guid[4..<6].reversed()) + Array(guid[6..<8].reversed())
            + Array(guid[8...])
    }
}

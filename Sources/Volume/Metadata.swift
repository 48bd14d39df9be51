public import Sealing
import StrictJSON

/// LUKS2 metadata that passed `Metadata.validate`: exactly the shape vhsm writes, nothing else.
public struct Metadata: Sendable, Equatable {
    /// One `luks2` keyslot: PBKDF2-SHA256, AF luks1/4000/sha256, area `raw` aes-xts-plain64/512.
    public struct Keyslot: Sendable, Equatable {
        public var id: Int
        /// Volume key bytes: 64, or 96 with `hmac(sha256)` integrity.
        public var keyBytes: Int
        public var kdfIterations: UInt64
        public var kdfSalt: [UInt8]
        public var areaOffset: UInt64
        public var areaSize: UInt64
    }

    /// The one `pbkdf2` digest that checks the volume key.
    public struct Digest: Sendable, Equatable {
        public var id: Int
        public var keyslots: [Int]
        public var iterations: UInt64
        public var salt: [UInt8]
        public var digest: [UInt8]
    }

    public var uuid: String
    public var sequenceID: UInt64
    /// Segment 0: `crypt`, aes-xts-plain64, 4096-byte sectors, from `Layout.headerAreaSize` to the device end.
    public var segmentOffset: UInt64
    public var segmentSize: String
    /// `hmac(sha256)` or `nil`.
    public var integrity: String?
    /// Sorted by id.
    public var keyslots: [Keyslot]
    public var digest: Digest
    public var snpTokenID: Int?
    public var snpToken: SNPToken?
    public var recoveryTokenID: Int?
    public var recoveryToken: RecoveryToken?
    public var reenrollTokenID: Int?
    /// The operator's recovery grant from the `vhsm-reenroll` token (`ReenrollToken`), if any.
    public var reenrollGrant: SealedSecret?
    /// The provisioning mark of the binary headers (`ProvisioningMark`), decoded; nil once the volume is ready.
    public var provisioningMark: [UInt8]?

    public func keyslot(_ id: Int) -> Keyslot? { keyslots.first { $0.id == id } }

    /// The volume key size the keyslots must have.
    var volumeKeyBytes: Int { Layout.volumeKeyBytes + (integrity == nil ? 0 : Layout.integrityKeyBytes) }
}

extension Metadata {
    /// Validates the header area of `path` (exactly `Layout.headerAreaSize` bytes, read once): both binary
    /// headers and their SHA-256 checksums, then the JSON, semantically, against what vhsm writes.
    /// `requireSNPToken` is false only inside `format`, between writing the keyslots and the token.
    static func validate(area: [UInt8], path: String, requireSNPToken: Bool = true) throws(VolumeError) -> Metadata {
        let (uuid, sequenceID, mark, json) = try binaryHeaders(area: area, path: path)
        do throws(Rejection) {
            var metadata = try validate(
                json: json, uuid: uuid, sequenceID: sequenceID, requireSNPToken: requireSNPToken)
            metadata.provisioningMark = mark
            if mark != nil, let token = metadata.snpToken, !token.provisioning {
                throw Rejection(
                    field: "label/subsystem", found: "the provisioning mark beside a ready vhsm-snp token",
                    expected: "no mark once the volume is ready")
            }
            return metadata
        } catch {
            throw error.error(path: path)
        }
    }

    /// What a header without a `vhsm-snp` token (a first boot cut before writing it) still proves: its UUID and
    /// provisioning mark. Both binary headers are checked as `validate` checks them, and the JSON is strict JSON;
    /// its keyslots, digests and segments are not looked at (such a header is only ever formatted again, and only
    /// when its mark verifies). `hasSNPToken` says whether any token in the JSON is of type `vhsm-snp`.
    static func unfinished(
        area: [UInt8], path: String
    ) throws(VolumeError) -> (
        uuid: String, mark: [UInt8]?, hasSNPToken: Bool
    ) {
        let (uuid, _, mark, json) = try binaryHeaders(area: area, path: path)
        guard case .object(let members) = json else {
            throw .headerRejected(path: path, field: "JSON area", found: "not an object", expected: "an object")
        }
        var hasSNPToken = false
        for member in members where member.key == "tokens" {
            guard case .object(let tokens) = member.value else { continue }
            for token in tokens {
                guard case .object(let fields) = token.value else { continue }
                if fields.contains(where: { $0.key == "type" && $0.value == .string(SNPToken.type) }) {
                    hasSNPToken = true
                }
            }
        }
        return (uuid, mark, hasSNPToken)
    }

    /// Both binary headers, their checksums and identical JSON areas; returns the UUID (lower case), the sequence
    /// id, the provisioning mark and the parsed JSON.
    private static func binaryHeaders(
        area: [UInt8], path: String
    ) throws(VolumeError) -> (
        String, UInt64, [UInt8]?, JSON
    ) {
        guard area.count == Layout.headerAreaSize else {
            throw .notLUKS2(path: path, found: "only \(area.count) bytes of header area")
        }
        let primary = BinaryHeader(area[0..<Layout.binaryHeaderSize])
        guard primary.magic == BinaryHeader.primaryMagic else {
            throw .notLUKS2(path: path, found: "no LUKS magic at offset 0")
        }
        guard primary.version == 2 else {
            throw .notLUKS2(path: path, found: "LUKS version \(primary.version), not 2")
        }
        let secondaryStart = Layout.metadataSize
        let secondary = BinaryHeader(area[secondaryStart..<secondaryStart + Layout.binaryHeaderSize])
        let headers = [("primary", primary, 0), ("secondary", secondary, secondaryStart)]
        for (name, header, offset) in headers {
            let fieldName = "\(name) binary header"
            func reject(_ field: String, _ found: String, _ expected: String) -> VolumeError {
                .headerRejected(path: path, field: "\(fieldName) \(field)", found: found, expected: expected)
            }
            let magic = offset == 0 ? BinaryHeader.primaryMagic : BinaryHeader.secondaryMagic
            guard header.magic == magic else { throw reject("magic", Encoding.hex(header.magic), Encoding.hex(magic)) }
            guard header.version == 2 else { throw reject("version", String(header.version), "2") }
            guard header.headerSize == UInt64(Layout.metadataSize) else {
                throw reject("hdr_size", String(header.headerSize), String(Layout.metadataSize))
            }
            guard header.headerOffset == UInt64(offset) else {
                throw reject("hdr_offset", String(header.headerOffset), String(offset))
            }
            guard BinaryHeader.cString(header.checksumAlgorithm) == "sha256" else {
                throw reject("checksum_alg", "'\(BinaryHeader.cString(header.checksumAlgorithm) ?? "?")'", "sha256")
            }
            guard BinaryHeader.checksum(of: area[offset..<offset + Layout.metadataSize]) == header.checksum else {
                throw .checksumMismatch(path: path, header: name)
            }
            guard header.paddingIsZero else { throw reject("padding", "non-zero bytes", "zeros") }
            do { _ = try ProvisioningMark.parse(label: header.label, subsystem: header.subsystem) } catch {
                throw reject(error.field, error.found, error.expected)
            }
        }
        guard primary.sequenceID == secondary.sequenceID, primary.uuid == secondary.uuid,
            primary.label == secondary.label, primary.subsystem == secondary.subsystem
        else {
            throw .headerRejected(
                path: path, field: "secondary binary header seqid/uuid/label", found: "different from the primary",
                expected: "identical copies")
        }
        let primaryJSON = area[Layout.binaryHeaderSize..<Layout.metadataSize]
        let secondaryJSON = area[secondaryStart + Layout.binaryHeaderSize..<2 * Layout.metadataSize]
        guard primaryJSON.elementsEqual(secondaryJSON) else {
            throw .headerRejected(
                path: path, field: "secondary JSON area", found: "different from the primary",
                expected: "identical copies")
        }
        // libcryptsetup writes the UUID with uuid_unparse, in upper case on Debian; vhsm uses the lowercase form
        // everywhere (it is the HKDF salt), whatever the case on disk.
        guard let onDisk = BinaryHeader.cString(primary.uuid), isCanonicalUUID(onDisk.lowercased()) else {
            throw .headerRejected(
                path: path, field: "binary header uuid", found: "bytes \(Encoding.hex(primary.uuid.prefix(36)))",
                expected: "a canonical UUID")
        }
        let uuid = onDisk.lowercased()
        // The JSON text ends at the first NUL; the rest of the area must be zero (json-c stops there too).
        let text = primaryJSON.prefix { $0 != 0 }
        guard primaryJSON.dropFirst(text.count).allSatisfy({ $0 == 0 }) else {
            throw .headerRejected(
                path: path, field: "JSON area", found: "data after the terminating NUL", expected: "zero padding")
        }
        let json: JSON
        do { json = try JSON.parse(text) } catch {
            throw .headerRejected(path: path, field: "JSON area", found: error.description, expected: "strict JSON")
        }
        let mark: [UInt8]?
        do { mark = try ProvisioningMark.parse(label: primary.label, subsystem: primary.subsystem) } catch {
            throw error.error(path: path)
        }
        return (uuid, primary.sequenceID, mark, json)
    }

    /// 8-4-4-4-12 lowercase hex.
    static func isCanonicalUUID(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard Encoding.unhex(String(decoding: [byte, byte], as: UTF8.self)) != nil else { return false }
            }
        }
        return true
    }

    static func validate(
        json: JSON, uuid: String, sequenceID: UInt64, requireSNPToken: Bool
    ) throws(Rejection)
        -> Metadata
    {
        var root = try Fields(json, path: "metadata")

        var config = try root.object("config")
        try config.expect("json_size", String(Layout.jsonAreaSize), name: "config json_size")
        try config.expect("keyslots_size", String(Layout.keyslotsAreaSize), name: "config keyslots_size")
        // No "flags", no "requirements" (online/offline reencryption): finish() refuses them as unknown keys.
        if config.has("requirements") {
            throw Rejection(field: "config", found: "'requirements' (reencryption flags)", expected: "none")
        }
        try config.finish()

        let (offset, size, integrity) = try segment(try root.value("segments"))
        let keyslots = try keyslots(try root.value("keyslots"), volumeKeyBytes: integrity == nil ? 64 : 96)
        let digest = try digest(try root.value("digests"), keyslots: keyslots.map(\.id))

        var metadata = Metadata(
            uuid: uuid, sequenceID: sequenceID, segmentOffset: offset, segmentSize: size, integrity: integrity,
            keyslots: keyslots, digest: digest)
        try tokens(try root.value("tokens"), into: &metadata, uuid: uuid)
        if requireSNPToken, metadata.snpToken == nil {
            throw Rejection(field: "tokens", found: "no vhsm-snp token", expected: "one vhsm-snp token")
        }
        try root.finish()
        return metadata
    }

    private static func segment(_ value: JSON) throws(Rejection) -> (UInt64, String, String?) {
        let segments = try Fields(value, path: "segments")
        guard segments.keys == ["0"] else {
            throw Rejection(
                field: "segments", found: "ids \(segments.keys)", expected: "exactly one segment, id 0")
        }
        var all = segments
        var segment = try all.object("0")
        try all.finish()
        try segment.expect("type", "crypt", name: "segment 0 type")
        let offset = try segment.decimal("offset")
        guard offset == UInt64(Layout.headerAreaSize) else {
            throw Rejection(field: "segment 0 offset", found: String(offset), expected: String(Layout.headerAreaSize))
        }
        try segment.expect("size", "dynamic", name: "segment 0 size")
        try segment.expect("iv_tweak", "0", name: "segment 0 iv_tweak")
        try segment.expect("encryption", Layout.cipher, name: "segment cipher")
        try segment.expect("sector_size", UInt64(Layout.sectorSize), name: "segment 0 sector_size")
        var integrity: String?
        if segment.has("integrity") {
            var object = try segment.object("integrity")
            try object.expect("type", Layout.integrity, name: "segment 0 integrity type")
            try object.expect("journal_encryption", "none", name: "segment 0 integrity journal_encryption")
            try object.expect("journal_integrity", "none", name: "segment 0 integrity journal_integrity")
            try object.finish()
            integrity = Layout.integrity
        }
        try segment.finish()
        return (offset, "dynamic", integrity)
    }

    private static func keyslots(_ value: JSON, volumeKeyBytes: Int) throws(Rejection) -> [Keyslot] {
        var all = try Fields(value, path: "keyslots")
        let ids = all.keys
        guard !ids.isEmpty, ids.count <= Layout.maximumKeyslots else {
            throw Rejection(
                field: "keyslots", found: "\(ids.count) keyslots", expected: "1 to \(Layout.maximumKeyslots)")
        }
        var keyslots: [Keyslot] = []
        for idText in ids {
            let id = try objectID(idText, what: "keyslot")
            var slot = try all.object(idText)
            let name = "keyslot \(id)"
            try slot.expect("type", "luks2", name: "\(name) type")
            try slot.expect("key_size", UInt64(volumeKeyBytes), name: "\(name) key_size")
            var af = try slot.object("af")
            try af.expect("type", "luks1", name: "\(name) af type")
            try af.expect("stripes", Layout.afStripes, name: "\(name) af stripes")
            try af.expect("hash", "sha256", name: "\(name) af hash")
            try af.finish()
            var area = try slot.object("area")
            try area.expect("type", "raw", name: "\(name) area type")
            try area.expect("encryption", Layout.cipher, name: "\(name) area cipher")
            try area.expect("key_size", UInt64(Layout.volumeKeyBytes), name: "\(name) area key_size")
            let areaOffset = try area.decimal("offset")
            let areaSize = try area.decimal("size")
            try area.finish()
            let expectedSize = UInt64(Layout.keyslotAreaSize(keyBytes: volumeKeyBytes))
            guard areaSize == expectedSize else {
                throw Rejection(field: "\(name) area size", found: String(areaSize), expected: String(expectedSize))
            }
            // areaSize is the expected size (below the header area's), so the subtraction cannot underflow and
            // a huge offset is refused without computing offset + size (which would overflow).
            guard areaOffset >= UInt64(2 * Layout.metadataSize), areaOffset % 4096 == 0,
                areaOffset <= UInt64(Layout.headerAreaSize) - areaSize
            else {
                throw Rejection(
                    field: "\(name) area offset", found: String(areaOffset), expected: "inside the keyslots area")
            }
            var kdf = try slot.object("kdf")
            try kdf.expect("type", "pbkdf2", name: "\(name) kdf type")
            try kdf.expect("hash", "sha256", name: "\(name) kdf hash")
            try kdf.expect("iterations", Layout.pbkdf2Iterations, name: "\(name) kdf iterations")
            let salt = try kdf.base64("salt", count: 32)
            try kdf.finish()
            try slot.finish()
            for other in keyslots
            where areaOffset < other.areaOffset + other.areaSize && other.areaOffset < areaOffset + areaSize {
                throw Rejection(
                    field: "\(name) area", found: "overlapping keyslot \(other.id)", expected: "disjoint areas")
            }
            keyslots.append(
                Keyslot(
                    id: id, keyBytes: volumeKeyBytes, kdfIterations: Layout.pbkdf2Iterations, kdfSalt: salt,
                    areaOffset: areaOffset, areaSize: areaSize))
        }
        try all.finish()
        return keyslots.sorted { $0.id < $1.id }
    }

    private static func digest(_ value: JSON, keyslots: [Int]) throws(Rejection) -> Digest {
        var all = try Fields(value, path: "digests")
        guard all.keys.count == 1 else {
            throw Rejection(field: "digests", found: "\(all.keys.count) digests", expected: "exactly one")
        }
        let idText = all.keys[0]
        let id = try objectID(idText, what: "digest")
        var digest = try all.object(idText)
        try all.finish()
        let name = "digest \(id)"
        try digest.expect("type", "pbkdf2", name: "\(name) type")
        try digest.expect("hash", "sha256", name: "\(name) hash")
        let bound = try digest.stringArray("keyslots")
        var boundIDs: [Int] = []
        for text in bound { boundIDs.append(try objectID(text, what: "\(name) keyslot")) }
        guard boundIDs.sorted() == keyslots.sorted() else {
            throw Rejection(field: "\(name) keyslots", found: "\(bound)", expected: "every keyslot, \(keyslots)")
        }
        let segments = try digest.stringArray("segments")
        guard segments == ["0"] else {
            throw Rejection(field: "\(name) segments", found: "\(segments)", expected: "[\"0\"]")
        }
        try digest.expect("iterations", Layout.pbkdf2Iterations, name: "\(name) iterations")
        let salt = try digest.base64("salt", count: 32)
        let value = try digest.base64("digest", count: 32)
        try digest.finish()
        return Digest(
            id: id, keyslots: boundIDs.sorted(), iterations: Layout.pbkdf2Iterations, salt: salt, digest: value)
    }

    /// A token must name a keyslot the header has.
    private static func requireKeyslot(_ keyslot: Int, token id: Int, in metadata: Metadata) throws(Rejection) {
        guard metadata.keyslot(keyslot) != nil else {
            throw Rejection(field: "token \(id) keyslots", found: "keyslot \(keyslot)", expected: "an existing one")
        }
    }

    private static func tokens(_ value: JSON, into metadata: inout Metadata, uuid: String) throws(Rejection) {
        var all = try Fields(value, path: "tokens")
        for idText in all.keys {
            let id = try objectID(idText, what: "token")
            var token = try all.object(idText)
            let type = try token.string("type")
            switch type {
            case SNPToken.type:
                guard metadata.snpToken == nil else {
                    throw Rejection(field: "tokens", found: "a second vhsm-snp token (\(id))", expected: "one")
                }
                var fields = try Fields(try all.value(idText), path: "token \(id) (vhsm-snp)")
                let parsed = try SNPToken(&fields)
                try requireKeyslot(parsed.keyslot, token: id, in: metadata)
                metadata.snpToken = parsed
                metadata.snpTokenID = id
            case RecoveryToken.type:
                guard metadata.recoveryToken == nil else {
                    throw Rejection(field: "tokens", found: "a second vhsm-recovery token (\(id))", expected: "one")
                }
                var fields = try Fields(try all.value(idText), path: "token \(id) (vhsm-recovery)")
                let parsed = try RecoveryToken(&fields)
                try requireKeyslot(parsed.keyslot, token: id, in: metadata)
                metadata.recoveryToken = parsed
                metadata.recoveryTokenID = id
            case ReenrollToken.type:
                guard metadata.reenrollGrant == nil else {
                    throw Rejection(field: "tokens", found: "a second vhsm-reenroll token (\(id))", expected: "one")
                }
                var fields = try Fields(try all.value(idText), path: "token \(id) (vhsm-reenroll)")
                metadata.reenrollGrant = try ReenrollToken.parse(&fields, volumeUUID: uuid)
                metadata.reenrollTokenID = id
            default:
                throw Rejection(
                    field: "token \(id) type", found: "'\(type)'", expected: "vhsm-snp, vhsm-recovery or vhsm-reenroll")
            }
        }
        try all.finish()
        if metadata.reenrollGrant != nil, metadata.recoveryToken == nil {
            throw Rejection(
                field: "tokens", found: "a vhsm-reenroll token without a vhsm-recovery token",
                expected: "a grant only beside the recovery keyslot it unlocks")
        }
        if let snp = metadata.snpToken, let recovery = metadata.recoveryToken, snp.keyslot == recovery.keyslot {
            throw Rejection(
                field: "tokens", found: "vhsm-snp and vhsm-recovery on keyslot \(snp.keyslot)",
                expected: "separate keyslots")
        }
    }
}

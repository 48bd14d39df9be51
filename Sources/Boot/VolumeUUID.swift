import SNP

/// LUKS UUIDs: the 36-character lower-case form `cryptsetup` writes and `UUID=` names.
enum VolumeUUID {
    /// True for 8-4-4-4-12 hex digits (either case).
    static func isWellFormed(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }

    /// A random (version 4, RFC 9562 variant) UUID from 16 random bytes.
    static func make(from random: [UInt8]) -> String {
        precondition(random.count == 16, "a UUID takes 16 random bytes")
        var bytes = random
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = Hex.encode(bytes)
        let cuts = [8, 12, 16, 20]
        var out = ""
        for (index, character) in hex.enumerated() {
            if cuts.contains(index) { out.append("-") }
            out.append(character)
        }
        return out
    }
}

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
        return Hex.randomUUID(from: random)
    }
}

/// Folding full paths into Vault's `LIST` answer: the immediate children of a prefix.
package enum StorageListing {
    /// The immediate children of `prefix` among `paths`, sorted by UTF-8 bytes: a path `prefix + "x"`
    /// gives `x`, a path `prefix + "x/y/z"` gives `x/` (once). Paths without the prefix are ignored.
    /// Prefixes are compared byte for byte, not by Unicode equivalence.
    package static func children(of prefix: String, in paths: some Sequence<String>) -> [String] {
        var children = Set<String>()
        let prefixCount = prefix.utf8.count
        for path in paths where path.utf8.starts(with: prefix.utf8) {
            let rest = path.utf8.dropFirst(prefixCount)
            if let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
                children.insert(String(decoding: rest[...slash], as: UTF8.self))
            } else if !rest.isEmpty {
                children.insert(String(decoding: rest, as: UTF8.self))
            }
        }
        return children.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

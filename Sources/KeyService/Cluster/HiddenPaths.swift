import Crypto
import CryptoExtras
import FoundationEssentials

/// Storage paths a shared database never sees in the clear (issue 17: its operators see only ciphertext, not the
/// names of secrets, keys or policies). Every component of an engine's path is replaced by a deterministic,
/// authenticated encryption of it, bound to the clear path above it, so the hierarchy (and with it LIST) stays:
///
///     component' = base64url( N ‖ AES-256-GCM-SIV(encKey, N, component, aad: parent) ),
///     N = HMAC-SHA256(nonceKey, parent ‖ 0x00 ‖ component)[0..<12]
///
/// where `parent` is the clear path above the component ending in "/" ("" at the top). The two keys are HKDF-SHA256
/// of one random 32-byte key stored barrier-sealed at `core/path-key` (labels `vhsm/paths/nonce/v1`,
/// `vhsm/paths/encrypt/v1`). The barrier below seals each value with the hidden path as associated data, so a row
/// moved to another path still does not open. Equal names under the same parent give equal components: the
/// database learns how many entries a folder holds and when one is rewritten, not their names.
struct HiddenPaths: StorageBackend {
    /// Where the path key is kept (through the barrier, in the clear: engines reach only hidden paths).
    static let keyPath = "core/path-key"
    let inner: any StorageBackend
    private let nonceKey: SymmetricKey
    private let encryptionKey: SymmetricKey

    init(inner: any StorageBackend, key: SymmetricKey) {
        self.inner = inner
        nonceKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Array("vhsm/paths/nonce/v1".utf8), outputByteCount: 32)
        encryptionKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, info: Array("vhsm/paths/encrypt/v1".utf8), outputByteCount: 32)
    }

    /// The path key in `barrier` (unsealed), made and stored when `create` is set and there is none.
    static func key(in barrier: any StorageBackend, create: Bool) throws -> SymmetricKey? {
        if var bytes = try barrier.get(keyPath) {
            defer { bytes.zeroize() }
            guard bytes.count == 32 else { throw BarrierError.corrupt(path: keyPath, reason: "not a 32-byte key") }
            return SymmetricKey(data: bytes)
        }
        guard create else { return nil }
        let key = SymmetricKey(size: .bits256)
        try key.withUnsafeBytes { raw in try barrier.put(keyPath, Array(raw)) }
        return key
    }

    // MARK: - Components

    func hide(_ path: String) throws -> String {
        var parent = ""
        var hidden: [String] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            let clear = String(component)
            hidden.append(try hide(component: clear, parent: parent))
            parent += clear + "/"
        }
        return hidden.joined(separator: "/")
    }

    private func hide(component: String, parent: String) throws -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(parent.utf8) + [0] + Array(component.utf8), using: nonceKey)
        let nonce = try AES.GCM._SIV.Nonce(data: Array(mac.prefix(12)))
        let box = try AES.GCM._SIV.seal(
            Array(component.utf8), using: encryptionKey, nonce: nonce, authenticating: Array(parent.utf8))
        return Self.base64url(Array(box.combined))
    }

    private func reveal(component: String, parent: String) throws -> String {
        guard let bytes = Self.unbase64url(component), bytes.count >= 12 + 16,
            let box = try? AES.GCM._SIV.SealedBox(combined: bytes),
            let clear = try? AES.GCM._SIV.open(box, using: encryptionKey, authenticating: Array(parent.utf8))
        else {
            throw BarrierError.corrupt(
                path: parent + component, reason: "a stored path name does not open under this store's path key")
        }
        return String(decoding: clear, as: UTF8.self)
    }

    /// The hidden form of a LIST prefix ("" or ending in "/").
    private func hidePrefix(_ prefix: String) throws -> String {
        guard prefix.hasSuffix("/") else { return try prefix.isEmpty ? "" : hide(prefix) }
        return try hide(String(prefix.dropLast())) + "/"
    }

    private func revealChildren(_ children: [String], of prefix: String) throws -> [String] {
        let parent = prefix.hasSuffix("/") || prefix.isEmpty ? prefix : prefix + "/"
        return try children.map { child in
            child.hasSuffix("/")
                ? try reveal(component: String(child.dropLast()), parent: parent) + "/"
                : try reveal(component: child, parent: parent)
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = String(
            text.compactMap { character -> Character? in
                switch character {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: character
                }
            })
        return text
    }

    static func unbase64url(_ text: String) -> [UInt8]? {
        var standard = String(
            text.map { character -> Character in
                switch character {
                case "-": "+"
                case "_": "/"
                default: character
                }
            })
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }

    // MARK: - StorageBackend

    func get(_ path: String) throws -> [UInt8]? { try inner.get(try hide(path)) }
    func put(_ path: String, _ value: [UInt8]) throws { try inner.put(try hide(path), value) }
    func delete(_ path: String) throws { try inner.delete(try hide(path)) }
    func list(prefix: String) throws -> [String] {
        try revealChildren(try inner.list(prefix: try hidePrefix(prefix)), of: prefix)
    }

    func transaction<Result>(_ body: (any StorageTransaction) throws -> Result) throws -> Result {
        try inner.transaction { transaction in try body(Hidden(paths: self, inner: transaction)) }
    }

    private struct Hidden: StorageTransaction {
        let paths: HiddenPaths
        let inner: any StorageTransaction
        func get(_ path: String) throws -> [UInt8]? { try inner.get(try paths.hide(path)) }
        func put(_ path: String, _ value: [UInt8]) throws { try inner.put(try paths.hide(path), value) }
        func delete(_ path: String) throws { try inner.delete(try paths.hide(path)) }
        func list(prefix: String) throws -> [String] {
            try paths.revealChildren(try inner.list(prefix: try paths.hidePrefix(prefix)), of: prefix)
        }
    }
}

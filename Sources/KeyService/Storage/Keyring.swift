import Crypto
import FoundationEssentials

/// The barrier's AES-256-GCM keys, one per term. New values are sealed under the active (newest)
/// term; every older term stays to open what it sealed.
///
/// Plaintext layout (`bytes`, big-endian), which the barrier stores AES-GCM-sealed under the root key:
///
///     magic "VKR1" 4 ‖ active term u32 ‖ count u32 ‖ count × (term u32 ‖ installed i64 ‖ key 32)
///
/// `installed` is Unix seconds. Terms are unique and ≥ 1, and the active term is one of them.
struct Keyring: Sendable {
    /// One key of the keyring.
    struct Term: Sendable {
        var number: UInt32
        var key: SymmetricKey
        /// When the term was created, to the second.
        var installed: Date
    }

    static let magic: [UInt8] = Array("VKR1".utf8)
    static let keySize = 32
    private static let entrySize = 4 + 8 + keySize

    /// Every term, by number.
    private(set) var terms: [UInt32: Term]
    /// The term new values are sealed under.
    private(set) var activeTerm: UInt32

    /// A fresh keyring holding term 1 with a random key.
    init(installed: Date = Date()) {
        let first = Term(number: 1, key: SymmetricKey(size: .bits256), installed: Self.seconds(installed))
        terms = [1: first]
        activeTerm = 1
    }

    /// The term new values are sealed under.
    var active: Term { terms[activeTerm]! }

    /// Adds a term with a fresh random key, one above the highest, and makes it active.
    @discardableResult
    mutating func rotate(installed: Date = Date()) -> Term {
        let number = (terms.keys.max() ?? 0) + 1
        let term = Term(number: number, key: SymmetricKey(size: .bits256), installed: Self.seconds(installed))
        terms[number] = term
        activeTerm = number
        return term
    }

    /// The plaintext encoding. It holds every key: the caller zeroes it after sealing it.
    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(12 + terms.count * Self.entrySize)  // one allocation: no key copy left behind
        out.append(contentsOf: Self.magic)
        Self.append(activeTerm, to: &out)
        Self.append(UInt32(terms.count), to: &out)
        for term in terms.values.sorted(by: { $0.number < $1.number }) {
            Self.append(term.number, to: &out)
            Self.append(UInt64(bitPattern: Int64(term.installed.timeIntervalSince1970)), to: &out)
            term.key.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Parses `bytes`; the caller still owns (and zeroes) them.
    init(bytes: [UInt8]) throws(BarrierError) {
        guard bytes.count >= 12, Array(bytes[0..<4]) == Self.magic else {
            throw .corruptKeyring(reason: "it does not start with the 'VKR1' header")
        }
        let active = Self.uint32(bytes, at: 4)
        let count = Int(Self.uint32(bytes, at: 8))
        guard count >= 1, bytes.count == 12 + count * Self.entrySize else {
            throw .corruptKeyring(reason: "it is \(bytes.count) bytes long, which does not fit \(count) keys")
        }
        var terms = [UInt32: Term]()
        for index in 0..<count {
            let offset = 12 + index * Self.entrySize
            let number = Self.uint32(bytes, at: offset)
            let seconds = Int64(
                bitPattern: UInt64(Self.uint32(bytes, at: offset + 4)) << 32
                    | UInt64(Self.uint32(bytes, at: offset + 8)))
            guard number >= 1, terms[number] == nil else {
                throw .corruptKeyring(reason: "term \(number) is zero or listed twice")
            }
            terms[number] = Term(
                number: number,
                key: SymmetricKey(data: bytes[(offset + 12)..<(offset + Self.entrySize)]),
                installed: Date(timeIntervalSince1970: TimeInterval(seconds))
            )
        }
        guard terms[active] != nil else {
            throw .corruptKeyring(reason: "the active term \(active) has no key")
        }
        self.terms = terms
        self.activeTerm = active
    }

    private static func seconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    private static func append(_ value: some FixedWidthInteger, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

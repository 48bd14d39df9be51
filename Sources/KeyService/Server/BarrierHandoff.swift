import Crypto
import FoundationEssentials
import Glibc
import SNP
import Sealing

/// The barrier root keys vhsm-init derives for vhsmd and hands it at start on one inherited descriptor (a pipe),
/// so vhsmd never holds the Secure Processor: the key for the pin in seal.json, and the key for a fresh pin of
/// this launch (what operator recovery re-pins to; the same key when the pin is current).
///
/// Wire format (little-endian), read once to end of stream and at most `maximumCount` bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `VHSMBKH1` |
/// | 8 | 2 | version, 1 |
/// | 10 | 2 | flags: bit 0 set when the pinned key is present (clear: its derivation failed, `reason` says why) |
/// | 12 | 4 | P, the length of the pinned pin's JSON (1…4096) |
/// | 16 | 4 | F, the length of the fresh pin's JSON (1…4096) |
/// | 20 | 4 | R, the length of the reason (0…1024, UTF-8; 0 when the pinned key is present) |
/// | 24 | 32 | the pinned pin's barrier root key (zeros when absent) |
/// | 56 | 32 | the fresh pin's barrier root key |
/// | 88 | P | the pinned pin, seal.json's JSON (`{"fields":[…],"provider":…,"svn":…,"tcb":…}`) |
/// | 88+P | F | the fresh pin, the same shape |
/// | 88+P+F | R | the reason |
///
/// The keys are the barrier root keys themselves (after `GuestSealProvider`'s HKDF), never the Secure Processor's
/// derived keys. Every buffer that held them is zeroed.
struct BarrierHandoff: Sendable {
    static let magic: [UInt8] = Array("VHSMBKH1".utf8)
    static let version: UInt16 = 1
    static let headerCount = 88
    static let maximumPinCount = 4096
    static let maximumReasonCount = 1024
    static let maximumCount = headerCount + 2 * maximumPinCount + maximumReasonCount

    var pinned: BarrierSeal.Pin
    var fresh: BarrierSeal.Pin
    /// nil when the pinned pin's key could not be derived on this launch (another chip, a TCB above COMMITTED_TCB).
    var pinnedKey: SymmetricKey?
    var pinnedFailure: String?
    var freshKey: SymmetricKey

    /// The descriptor's bytes. The caller zeroes them.
    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let pinnedJSON = Array(try encoder.encode(pinned))
        let freshJSON = Array(try encoder.encode(fresh))
        let reason = pinnedKey == nil ? Array((pinnedFailure ?? "no key").utf8.prefix(Self.maximumReasonCount)) : []
        var bytes = Self.magic
        bytes.reserveCapacity(Self.headerCount + pinnedJSON.count + freshJSON.count + reason.count)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(Self.version)
        append(UInt16(pinnedKey == nil ? 0 : 1))
        append(UInt32(pinnedJSON.count))
        append(UInt32(freshJSON.count))
        append(UInt32(reason.count))
        if let pinnedKey {
            pinnedKey.withUnsafeBytes { bytes += $0 }
        } else {
            bytes += [UInt8](repeating: 0, count: 32)
        }
        freshKey.withUnsafeBytes { bytes += $0 }
        bytes += pinnedJSON + freshJSON + reason
        return bytes
    }

    /// Parses the descriptor's bytes; refuses anything but exactly one well-formed record.
    static func decode(_ bytes: [UInt8]) throws(BarrierHandoffError) -> BarrierHandoff {
        guard bytes.count >= headerCount else { throw .malformed("\(bytes.count) bytes, shorter than the header") }
        guard Array(bytes[0..<8]) == magic else { throw .malformed("it does not start with VHSMBKH1") }
        func integer<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            (0..<MemoryLayout<T>.size).reduce(T(0)) { $0 | T(bytes[at + $1]) << (8 * $1) }
        }
        guard integer(8, UInt16.self) == version else {
            throw .malformed("version \(integer(8, UInt16.self)), this vhsmd reads version \(version)")
        }
        let flags = integer(10, UInt16.self)
        guard flags & ~1 == 0 else { throw .malformed("unknown flags 0x\(String(flags, radix: 16))") }
        let pinnedCount = Int(integer(12, UInt32.self))
        let freshCount = Int(integer(16, UInt32.self))
        let reasonCount = Int(integer(20, UInt32.self))
        let hasKey = flags & 1 == 1
        guard (1...maximumPinCount).contains(pinnedCount), (1...maximumPinCount).contains(freshCount),
            reasonCount <= maximumReasonCount, hasKey == (reasonCount == 0)
        else { throw .malformed("field lengths \(pinnedCount), \(freshCount), \(reasonCount) are out of bounds") }
        guard bytes.count == headerCount + pinnedCount + freshCount + reasonCount else {
            throw .malformed(
                "\(bytes.count) bytes where the header announces \(headerCount + pinnedCount + freshCount + reasonCount)"
            )
        }
        let decoder = JSONDecoder()
        let pinned: BarrierSeal.Pin
        let fresh: BarrierSeal.Pin
        do {
            pinned = try decoder.decode(
                BarrierSeal.Pin.self, from: Data(bytes[headerCount..<headerCount + pinnedCount]))
            fresh = try decoder.decode(
                BarrierSeal.Pin.self,
                from: Data(bytes[(headerCount + pinnedCount)..<(headerCount + pinnedCount + freshCount)]))
        } catch {
            throw .malformed("a pin is not seal.json's JSON: \(error)")
        }
        let reason = String(decoding: bytes[(headerCount + pinnedCount + freshCount)...], as: UTF8.self)
        return BarrierHandoff(
            pinned: pinned, fresh: fresh, pinnedKey: hasKey ? SymmetricKey(data: bytes[24..<56]) : nil,
            pinnedFailure: hasKey ? nil : reason, freshKey: SymmetricKey(data: bytes[56..<88]))
    }

    /// Reads descriptor `fd` to its end (at most `maximumCount` bytes), closes it and parses what it held.
    static func read(descriptor fd: Int32) throws(BarrierHandoffError) -> BarrierHandoff {
        guard fd > 2, fcntl(fd, F_GETFD) >= 0 else { throw .noDescriptor(fd) }
        defer { close(fd) }
        // Not inherited by anything vhsmd might start.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var buffer = [UInt8](repeating: 0, count: maximumCount + 1)
        defer { buffer.zeroize() }
        var count = 0
        while count < buffer.count {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .unreadable(fd, errno) }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumCount else { throw .malformed("more than \(maximumCount) bytes") }
        var bytes = Array(buffer[0..<count])
        defer { bytes.zeroize() }
        return try decode(bytes)
    }

    /// The barrier's seal provider for the pin in seal.json: the handed key, or the reason it could not be derived
    /// (a `SealError.derivation`, which lets vhsmd wait for operator recovery as it does with the device).
    func pinnedProvider(name: String) -> any SealProvider {
        HandedSealProvider(name: name, key: pinnedKey, failure: pinnedFailure)
    }

    func freshProvider(name: String) -> any SealProvider {
        HandedSealProvider(name: name, key: freshKey, failure: nil)
    }

    /// The pins must be the ones vhsmd's own configuration would have written.
    func check(setting: String, mode: SealMode, directory: String) throws(BarrierHandoffError) {
        let fields = mode.guestFieldSelect.names
        for pin in [pinned, fresh] where pin.provider != setting || pin.fields != fields {
            throw .mismatch(
                "a pin for '\(pin.provider)' and fields \(pin.fields.joined(separator: ",")), where \(directory)'s "
                    + "configuration says '\(setting)', seal_mode \(mode.rawValue) (\(fields.joined(separator: ",")))")
        }
    }
}

/// A seal provider whose key vhsm-init derived and handed over.
struct HandedSealProvider: SealProvider {
    let name: String
    let key: SymmetricKey?
    let failure: String?

    func rootKey() throws -> SymmetricKey {
        guard let key else {
            throw SealError.derivation(provider: name, cause: BarrierHandoffError.derivationFailed(failure ?? "no key"))
        }
        return key
    }
}

/// Why vhsmd could not take the barrier key vhsm-init handed it.
enum BarrierHandoffError: Error, Equatable, CustomStringConvertible {
    case noDescriptor(Int32)
    case unreadable(Int32, Int32)
    case malformed(String)
    case mismatch(String)
    case derivationFailed(String)

    var description: String {
        switch self {
        case .noDescriptor(let fd):
            "vhsmd was started with --barrier-key-fd \(fd) but descriptor \(fd) is not open (above 2): only vhsm-init "
                + "starts vhsmd that way; run by hand, start it with --config alone"
        case .unreadable(let fd, let code):
            "cannot read the barrier key descriptor \(fd): \(String(cString: strerror(code)))"
        case .malformed(let why):
            "the barrier key descriptor from vhsm-init is malformed (\(why)); vhsm-init and vhsmd must come from the "
                + "same build"
        case .mismatch(let why):
            "vhsm-init handed over \(why); vhsm-init reads the same configuration file, so check handoff.args"
        case .derivationFailed(let why): "vhsm-init could not derive the pinned key on this launch: \(why)"
        }
    }
}

/// The raw RSA public operation `s^e mod n` (RSAVP1), which swift-crypto does not expose.
///
/// Verifying a PSS signature whose salt length is not the digest length (Vault signs with the maximal salt)
/// needs the encoded message itself, so this computes it with Montgomery multiplication on 64-bit limbs.
/// Only public values go through here; it is not constant-time and must never see a private exponent.
struct RSAPublicOperation: Sendable {
    /// Modulus, little-endian 64-bit limbs.
    private let modulus: [UInt64]
    private let exponent: [UInt8]
    private let modulusByteCount: Int
    /// −n⁻¹ mod 2⁶⁴.
    private let inverse: UInt64

    /// `modulus` and `exponent` are big-endian magnitudes; the modulus must be odd.
    init?(modulus: [UInt8], exponent: [UInt8]) {
        let trimmed = Array(modulus.drop(while: { $0 == 0 }))
        guard let last = trimmed.last, last & 1 == 1, !exponent.allSatisfy({ $0 == 0 }) else { return nil }
        self.modulus = Self.limbs(trimmed, count: (trimmed.count + 7) / 8)
        self.exponent = Array(exponent.drop(while: { $0 == 0 }))
        self.modulusByteCount = trimmed.count
        var x: UInt64 = self.modulus[0]
        for _ in 0..<6 { x = x &* (2 &- self.modulus[0] &* x) }
        self.inverse = 0 &- x
    }

    /// `s^e mod n` as a big-endian value `modulusByteCount` bytes wide, or nil when `s ≥ n`.
    func apply(_ signature: [UInt8]) -> [UInt8]? {
        let k = modulus.count
        guard signature.count <= k * 8 else { return nil }
        let s = Self.limbs(signature, count: k)
        guard Self.compare(s, modulus) < 0 else { return nil }

        // Into the Montgomery domain: s·R mod n, by doubling 64·k times.
        var base = s
        for _ in 0..<(64 * k) {
            var carry: UInt64 = 0
            for index in 0..<k {
                let next = base[index] >> 63
                base[index] = base[index] << 1 | carry
                carry = next
            }
            if carry == 1 || Self.compare(base, modulus) >= 0 { Self.subtract(&base, modulus) }
        }

        var accumulator = base
        var started = false
        for byte in exponent {
            for bit in (0..<8).reversed() {
                if started { accumulator = multiply(accumulator, accumulator) }
                if byte >> UInt8(bit) & 1 == 1 {
                    if started { accumulator = multiply(accumulator, base) } else { started = true }
                }
            }
        }
        var one = [UInt64](repeating: 0, count: k)
        one[0] = 1
        let result = multiply(accumulator, one)

        var out = [UInt8](repeating: 0, count: modulusByteCount)
        for index in 0..<modulusByteCount {
            let limb = result[index / 8]
            out[modulusByteCount - 1 - index] = UInt8(truncatingIfNeeded: limb >> (8 * UInt64(index % 8)))
        }
        return out
    }

    /// Montgomery product a·b·R⁻¹ mod n (CIOS).
    private func multiply(_ a: [UInt64], _ b: [UInt64]) -> [UInt64] {
        let k = modulus.count
        var t = [UInt64](repeating: 0, count: k + 2)
        for i in 0..<k {
            var carry: UInt64 = 0
            for j in 0..<k {
                let (high, low) = a[i].multipliedFullWidth(by: b[j])
                let (sum1, overflow1) = low.addingReportingOverflow(t[j])
                let (sum2, overflow2) = sum1.addingReportingOverflow(carry)
                t[j] = sum2
                carry = high &+ (overflow1 ? 1 : 0) &+ (overflow2 ? 1 : 0)
            }
            let (top, overflowTop) = t[k].addingReportingOverflow(carry)
            t[k] = top
            t[k + 1] = overflowTop ? 1 : 0

            let m = t[0] &* inverse
            let (high0, low0) = m.multipliedFullWidth(by: modulus[0])
            let (_, overflow0) = low0.addingReportingOverflow(t[0])
            carry = high0 &+ (overflow0 ? 1 : 0)
            for j in 1..<k {
                let (high, low) = m.multipliedFullWidth(by: modulus[j])
                let (sum1, overflow1) = low.addingReportingOverflow(t[j])
                let (sum2, overflow2) = sum1.addingReportingOverflow(carry)
                t[j - 1] = sum2
                carry = high &+ (overflow1 ? 1 : 0) &+ (overflow2 ? 1 : 0)
            }
            let (sum, overflow) = t[k].addingReportingOverflow(carry)
            t[k - 1] = sum
            t[k] = t[k + 1] &+ (overflow ? 1 : 0)
        }
        var result = Array(t[0..<k])
        if t[k] != 0 || Self.compare(result, modulus) >= 0 { Self.subtract(&result, modulus) }
        return result
    }

    private static func limbs(_ bigEndian: [UInt8], count: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: count)
        for (index, byte) in bigEndian.reversed().enumerated() where byte != 0 {
            guard index / 8 < count else { continue }
            out[index / 8] |= UInt64(byte) << (8 * UInt64(index % 8))
        }
        if bigEndian.count > count * 8, bigEndian.dropLast(count * 8).contains(where: { $0 != 0 }) {
            out[count - 1] = .max  // does not fit: make it compare ≥ n
        }
        return out
    }

    private static func compare(_ a: [UInt64], _ b: [UInt64]) -> Int {
        for index in stride(from: a.count - 1, through: 0, by: -1) where a[index] != b[index] {
            return a[index] < b[index] ? -1 : 1
        }
        return 0
    }

    /// a −= b (mod 2^(64k)); callers guarantee the true result is in [0, n).
    private static func subtract(_ a: inout [UInt64], _ b: [UInt64]) {
        var borrow = false
        for index in 0..<a.count {
            let (difference1, overflow1) = a[index].subtractingReportingOverflow(b[index])
            let (difference2, overflow2) = difference1.subtractingReportingOverflow(borrow ? 1 : 0)
            a[index] = difference2
            borrow = overflow1 || overflow2
        }
    }
}

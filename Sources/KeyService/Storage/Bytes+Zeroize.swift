import FoundationEssentials
import Glibc

// Overwriting key material we own with zeros, in a way the optimiser may not drop (explicit_bzero).

extension Array where Element == UInt8 {
    /// Overwrites every byte with zero; the count is unchanged.
    mutating func zeroize() {
        withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            explicit_bzero(base, buffer.count)
        }
    }
}

extension Data {
    /// Overwrites every byte with zero; the count is unchanged.
    mutating func zeroize() {
        withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            explicit_bzero(base, buffer.count)
        }
    }
}

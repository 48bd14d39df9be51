/// Why a seal provider could not produce the barrier root key.
enum SealError: Error, CustomStringConvertible {
    /// The hardware (or emulator) returned a derived key of the wrong length.
    case derivedKeyLength(provider: String, count: Int)
    /// The hardware (or emulator) refused or failed the key request.
    case derivation(provider: String, cause: any Error)

    var description: String {
        switch self {
        case .derivedKeyLength(let provider, let count):
            "the seal provider '\(provider)' returned a \(count)-byte derived key where 32 bytes were expected: "
                + "is the key request asking for a 256-bit key?"
        case .derivation(let provider, let cause):
            "the seal provider '\(provider)' could not derive the barrier root key: \(cause)"
        }
    }
}

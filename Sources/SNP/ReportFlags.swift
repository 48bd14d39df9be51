/// POLICY (0x008): the guest policy fixed at launch.
public struct GuestPolicy: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let smtAllowed = GuestPolicy(rawValue: 1 << 16)
    /// Bit 17 is reserved and must be 1.
    public static let reservedMustBeOne = GuestPolicy(rawValue: 1 << 17)
    public static let migrationAgentAllowed = GuestPolicy(rawValue: 1 << 18)
    public static let debugAllowed = GuestPolicy(rawValue: 1 << 19)
    public static let singleSocketRequired = GuestPolicy(rawValue: 1 << 20)
    public static let cxlAllowed = GuestPolicy(rawValue: 1 << 21)
    public static let memAES256XTSRequired = GuestPolicy(rawValue: 1 << 22)
    public static let raplDisabledRequired = GuestPolicy(rawValue: 1 << 23)
    public static let ciphertextHidingRequired = GuestPolicy(rawValue: 1 << 24)
    public static let pageSwapDisabled = GuestPolicy(rawValue: 1 << 25)

    /// Bits 63:26 are reserved and must be zero.
    public static let reservedMask: UInt64 = ~((1 << 26) - 1)

    public var abiMinor: UInt8 { UInt8(truncatingIfNeeded: rawValue) }
    public var abiMajor: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }

    /// The flag names, for display: `smt`, `migration-agent`, `debug`, …
    public static let names: [(GuestPolicy, String)] = [
        (.smtAllowed, "smt"), (.reservedMustBeOne, "reserved-17"), (.migrationAgentAllowed, "migration-agent"),
        (.debugAllowed, "debug"), (.singleSocketRequired, "single-socket"), (.cxlAllowed, "cxl"),
        (.memAES256XTSRequired, "mem-aes-256-xts"), (.raplDisabledRequired, "rapl-disabled"),
        (.ciphertextHidingRequired, "ciphertext-hiding"), (.pageSwapDisabled, "page-swap-disabled"),
    ]

    public var flagNames: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

/// PLATFORM_INFO (0x040). Unknown bits are kept and never rejected (the real Turin report sets bit 6).
public struct PlatformInfo: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let smtEnabled = PlatformInfo(rawValue: 1 << 0)
    public static let tsmeEnabled = PlatformInfo(rawValue: 1 << 1)
    public static let eccEnabled = PlatformInfo(rawValue: 1 << 2)
    public static let raplDisabled = PlatformInfo(rawValue: 1 << 3)
    public static let ciphertextHidingEnabled = PlatformInfo(rawValue: 1 << 4)
    public static let aliasCheckComplete = PlatformInfo(rawValue: 1 << 5)
    public static let tioEnabled = PlatformInfo(rawValue: 1 << 7)

    public static let names: [(PlatformInfo, String)] = [
        (.smtEnabled, "smt"), (.tsmeEnabled, "tsme"), (.eccEnabled, "ecc"), (.raplDisabled, "rapl-disabled"),
        (.ciphertextHidingEnabled, "ciphertext-hiding"), (.aliasCheckComplete, "alias-check-complete"),
        (.tioEnabled, "tio"),
    ]

    /// Known flag names, then `bit-N` for every bit this build has no name for.
    public var flagNames: [String] {
        let known = Self.names.filter { contains($0.0) }
        let knownMask = Self.names.reduce(UInt64(0)) { $0 | $1.0.rawValue }
        let unknown = (0..<64).filter { rawValue & ~knownMask & (1 << $0) != 0 }.map { "bit-\($0)" }
        return known.map(\.1) + unknown
    }
}

/// KEY_INFO (0x048): which key signed the report.
public struct KeyInfo: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// SIGNING_KEY, bits 4:2.
    public enum SigningKey: UInt32, Sendable, CustomStringConvertible {
        case vcek = 0
        case vlek = 1
        case unsigned = 7

        public var description: String {
            switch self {
            case .vcek: "VCEK"
            case .vlek: "VLEK"
            case .unsigned: "none (unsigned)"
            }
        }
    }

    public init(signingKey: SigningKey, authorKeyEnabled: Bool = false, maskChipKey: Bool = false) {
        rawValue = signingKey.rawValue << 2 | (authorKeyEnabled ? 1 : 0) | (maskChipKey ? 2 : 0)
    }

    public var authorKeyEnabled: Bool { rawValue & 1 != 0 }
    public var maskChipKey: Bool { rawValue & 2 != 0 }
    /// The raw SIGNING_KEY field (values 2–6 are reserved).
    public var signingKeyField: UInt32 { (rawValue >> 2) & 0x7 }
    public var signingKey: SigningKey? { SigningKey(rawValue: signingKeyField) }
    /// Bits 31:5 are reserved and must be zero.
    public var reservedBits: UInt32 { rawValue & ~0x1F }
}

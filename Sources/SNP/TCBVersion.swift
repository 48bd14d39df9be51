/// How a product packs security patch levels into TCB_VERSION.
public enum TCBLayout: String, Hashable, Sendable {
    /// Milan, Genoa: byte 0 boot loader, 1 TEE, 6 SNP, 7 microcode; bytes 2–5 reserved.
    case milanGenoa
    /// Turin and later: byte 0 FMC, 1 boot loader, 2 TEE, 3 SNP, 7 microcode; bytes 4–6 reserved.
    case turin

    /// Byte positions (within the little-endian u64) of each component, in `TCBLevels.Component` order.
    func position(of component: TCBLevels.Component) -> Int? {
        switch (self, component) {
        case (.milanGenoa, .fmc): nil
        case (.milanGenoa, .bootLoader): 0
        case (.milanGenoa, .tee): 1
        case (.milanGenoa, .snp): 6
        case (.turin, .fmc): 0
        case (.turin, .bootLoader): 1
        case (.turin, .tee): 2
        case (.turin, .snp): 3
        case (_, .microcode): 7
        }
    }

    /// Bytes of the u64 that the layout marks reserved.
    var reservedBytes: [Int] { self == .turin ? [4, 5, 6] : [2, 3, 4, 5] }
}

/// TCB_VERSION: the security patch levels of the firmware components, as the firmware encodes them.
/// The byte positions depend on the product line, so the raw value is kept and decoded on demand.
public struct TCBVersion: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The 8 bytes in report order (little-endian), the form `vhsm` prints and accepts as hex.
    public var bytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: rawValue >> ($0 * 8)) } }

    public init(bytes: [UInt8]) throws(LayoutError) {
        let bytes = try [UInt8].checked(bytes, field: "TCB_VERSION", count: 8)
        rawValue = bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Parses the 16 hex digits of the 8 bytes in report order (as `vhsm report show` prints them).
    public init(hex: String) throws(HexError) {
        let bytes = try Hex.decode(hex, count: 8)
        rawValue = bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var hex: String { Hex.encode(bytes) }

    public func levels(_ layout: TCBLayout) -> TCBLevels {
        func byte(_ component: TCBLevels.Component) -> UInt8? {
            layout.position(of: component).map { UInt8(truncatingIfNeeded: rawValue >> ($0 * 8)) }
        }
        return TCBLevels(
            fmc: byte(.fmc), bootLoader: byte(.bootLoader)!, tee: byte(.tee)!, snp: byte(.snp)!,
            microcode: byte(.microcode)!)
    }

    public init(_ levels: TCBLevels, layout: TCBLayout) {
        var raw: UInt64 = 0
        for component in TCBLevels.Component.allCases {
            guard let position = layout.position(of: component), let value = levels[component] else { continue }
            raw |= UInt64(value) << (position * 8)
        }
        rawValue = raw
    }

    /// True when a byte the layout marks reserved is not zero.
    public func hasReservedBits(_ layout: TCBLayout) -> Bool {
        layout.reservedBytes.contains { (rawValue >> ($0 * 8)) & 0xFF != 0 }
    }
}

/// Decoded security patch levels (SPLs). `fmc` exists on Turin and later only.
public struct TCBLevels: Hashable, Sendable, CustomStringConvertible {
    public enum Component: String, CaseIterable, Sendable {
        case fmc, bootLoader, tee, snp, microcode

        /// The name used in AMD's certificate extensions and KDS query strings.
        public var splName: String {
            switch self {
            case .fmc: "fmcSPL"
            case .bootLoader: "blSPL"
            case .tee: "teeSPL"
            case .snp: "snpSPL"
            case .microcode: "ucodeSPL"
            }
        }
    }

    public var fmc: UInt8?
    public var bootLoader: UInt8
    public var tee: UInt8
    public var snp: UInt8
    public var microcode: UInt8

    public init(fmc: UInt8? = nil, bootLoader: UInt8, tee: UInt8, snp: UInt8, microcode: UInt8) {
        self.fmc = fmc
        self.bootLoader = bootLoader
        self.tee = tee
        self.snp = snp
        self.microcode = microcode
    }

    public subscript(component: Component) -> UInt8? {
        switch component {
        case .fmc: fmc
        case .bootLoader: bootLoader
        case .tee: tee
        case .snp: snp
        case .microcode: microcode
        }
    }

    /// Components present in this set of levels, in the order AMD lists them.
    public var components: [Component] { Component.allCases.filter { self[$0] != nil } }

    /// True when every component is at least the one in `minimum`.
    public func isAtLeast(_ minimum: TCBLevels) -> Bool {
        components.allSatisfy { (self[$0] ?? 0) >= (minimum[$0] ?? 0) }
    }

    /// `bl 3, tee 0, snp 8, ucode 115` (Turin: `fmc 0, bl 1, …`).
    public var description: String {
        var parts: [String] = []
        if let fmc { parts.append("fmc \(fmc)") }
        parts += ["bl \(bootLoader)", "tee \(tee)", "snp \(snp)", "ucode \(microcode)"]
        return parts.joined(separator: ", ")
    }
}

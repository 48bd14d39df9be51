/// An AMD EPYC product line with SEV-SNP. It decides the TCB_VERSION byte layout, the AMD root of trust and
/// the KDS path.
public enum Product: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case milan
    case genoa
    case turin

    /// The name AMD uses in certificates and KDS URLs: `Milan`, `Genoa`, `Turin`.
    public var name: String {
        switch self {
        case .milan: "Milan"
        case .genoa: "Genoa"
        case .turin: "Turin"
        }
    }

    public var description: String { name }

    /// How this product packs TCB_VERSION.
    public var tcbLayout: TCBLayout { self == .turin ? .turin : .milanGenoa }

    /// How many CHIP_ID bytes are significant (Turin: 8, then 56 zero bytes).
    public var chipIDLength: Int { self == .turin ? 8 : 64 }

    /// SHA-256 of the DER encoding of AMD's ARK certificate for this product (the pinned root).
    public var arkFingerprint: [UInt8] {
        let hex: String
        switch self {
        case .milan: hex = "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
        case .genoa: hex = "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"
        case .turin: hex = "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"
        }
        return try! Hex.decode(hex)  // constant, checked by tests
    }

    /// The product for CPUID_FAM_ID / CPUID_MOD_ID of a version 3+ report, or nil for parts we do not know.
    public init?(family: UInt8, model: UInt8) {
        switch (family, model) {
        case (0x19, 0x00...0x0F): self = .milan
        case (0x19, 0x10...0x1F), (0x19, 0xA0...0xAF): self = .genoa
        case (0x1A, 0x00...0x11): self = .turin
        default: return nil
        }
    }

    /// The product named by a VCEK/VLEK productName extension (`Milan-B0`, `Genoa`, `Turin`, `Milan`).
    public init?(productName: String) {
        let stem = productName.split(separator: "-").first.map(String.init) ?? productName
        guard let product = Product.allCases.first(where: { $0.name == stem }) else { return nil }
        self = product
    }
}

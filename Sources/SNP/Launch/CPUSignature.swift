/// The vCPU signature, CPUID Fn0000_0001_EAX (AMD CPUID specification 25481), that KVM places in RDX of
/// every VMSA. With a named QEMU model it follows from the model; with `-cpu host` it is the host's value.
public enum CPUSignature {
    /// The QEMU named models sev-snp-measure 0.0.13 knows, in its table order, with family/model/stepping.
    private static let models: [(name: String, family: Int, model: Int, stepping: Int)] = [
        ("EPYC", 23, 1, 2), ("EPYC-v1", 23, 1, 2), ("EPYC-v2", 23, 1, 2), ("EPYC-v3", 23, 1, 2),
        ("EPYC-v4", 23, 1, 2), ("EPYC-IBPB", 23, 1, 2),
        ("EPYC-Rome", 23, 49, 0), ("EPYC-Rome-v1", 23, 49, 0), ("EPYC-Rome-v2", 23, 49, 0),
        ("EPYC-Rome-v3", 23, 49, 0),
        ("EPYC-Milan", 25, 1, 1), ("EPYC-Milan-v1", 25, 1, 1), ("EPYC-Milan-v2", 25, 1, 1),
        ("EPYC-Genoa", 25, 17, 0), ("EPYC-Genoa-v1", 25, 17, 0),
        ("EPYC-Turin", 26, 0, 0),
    ]

    /// QEMU named models sev-snp-measure knows (EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome(-v1..v3),
    /// EPYC-Milan(-v1,-v2), EPYC-Genoa(-v1), EPYC-Turin) → CPUID(1).EAX. Names are case-sensitive, as in
    /// the reference; newer QEMU models (EPYC-Milan-v3, …) are not listed, pass their signature instead.
    public static func named(_ name: String) -> UInt32? {
        models.first { $0.name == name }.map { of(family: $0.family, model: $0.model, stepping: $0.stepping) }
    }

    /// Every name `named(_:)` accepts, in the reference's order.
    public static var names: [String] { models.map(\.name) }

    /// Fn0000_0001_EAX from family/model/stepping, exactly as the tool computes it: families above 0xF are
    /// split into base 0xF plus an extended family, and the extended model (bits 19:16) is always filled in,
    /// even for families up to 0xF (`of(family: 14, model: 1, stepping: 2)` is 0x0e12).
    public static func of(family: Int, model: Int, stepping: Int) -> UInt32 {
        let (baseFamily, extendedFamily) = family > 0xF ? (0xF, (family - 0xF) & 0xFF) : (family, 0)
        let signature =
            extendedFamily << 20 | ((model >> 4) & 0xF) << 16 | baseFamily << 8 | (model & 0xF) << 4
            | (stepping & 0xF)
        return UInt32(truncatingIfNeeded: signature)
    }
}

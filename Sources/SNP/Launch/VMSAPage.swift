/// The initial VMSA page of a vCPU (4096 bytes): the Linux `struct sev_es_save_area` (AMD APM vol. 2,
/// table B-4) as KVM fills it for QEMU's reset state, all zero except the fields written below.
///
/// A segment is `le16 selector ‖ le16 attrib ‖ le32 limit ‖ le64 base`, with the VMCB's 12-bit attribute
/// format. The BSP starts at 0xfffffff0 (CS.base 0xffff0000, RIP 0xfff0); every AP starts at the SEV-ES
/// reset block address, split into CS.base (high 16 bits) and RIP (low 16 bits).
public enum VMSAPage {
    public static let byteCount = 4096
    /// The reset address of the BSP.
    public static let bspEIP: UInt32 = 0xFFFF_FFF0

    /// The VMSA page for one vCPU. `eip` is the start address (`bspEIP` for the BSP, the SEV-ES reset block
    /// address for APs); `signature` is CPUID(1).EAX (ignored for EC2 and GCE, which use 0x600);
    /// `guestFeatures` is SEV_FEATURES (0 for SEV-ES, `--guest-features` for SNP).
    public static func page(
        eip: UInt32, isBSP: Bool, signature: UInt32, guestFeatures: UInt64, vmmType: VMMType
    ) -> [UInt8] {
        var csAttrib: UInt16 = 0x9B
        var ssAttrib: UInt16 = 0x93
        var trAttrib: UInt16 = 0x8B
        var rdx = UInt64(signature)
        var mxcsr: UInt32 = 0x1F80
        var fcw: UInt16 = 0x037F
        var gPAT: UInt64 = 0x0007_0406_0007_0406
        switch vmmType {
        case .qemu:
            break
        case .ec2:
            if isBSP { csAttrib = 0x9A }
            ssAttrib = 0x92
            trAttrib = 0x83
            rdx = 0x600
            (mxcsr, fcw) = (0, 0)
        case .gce:
            rdx = 0x600
            (mxcsr, fcw) = (0, 0)
            gPAT = 0x0007_0106
        }

        var page = [UInt8](repeating: 0, count: byteCount)
        func segment(_ at: Int, selector: UInt16, attrib: UInt16, limit: UInt32 = 0xFFFF, base: UInt64 = 0) {
            put(selector, at: at, in: &page)
            put(attrib, at: at + 2, in: &page)
            put(limit, at: at + 4, in: &page)
            put(base, at: at + 8, in: &page)
        }
        segment(0x000, selector: 0, attrib: 0x93)  // ES
        segment(0x010, selector: 0xF000, attrib: csAttrib, base: UInt64(eip & 0xFFFF_0000))  // CS
        segment(0x020, selector: 0, attrib: ssAttrib)  // SS
        segment(0x030, selector: 0, attrib: 0x93)  // DS
        segment(0x040, selector: 0, attrib: 0x93)  // FS
        segment(0x050, selector: 0, attrib: 0x93)  // GS
        segment(0x060, selector: 0, attrib: 0)  // GDTR
        segment(0x070, selector: 0, attrib: 0x82)  // LDTR
        segment(0x080, selector: 0, attrib: 0)  // IDTR
        segment(0x090, selector: 0, attrib: trAttrib)  // TR
        put(UInt64(0x1000), at: 0x0D0, in: &page)  // EFER: SVME, set by KVM
        put(UInt64(0x40), at: 0x148, in: &page)  // CR4: MCE
        put(UInt64(0x10), at: 0x158, in: &page)  // CR0: ET
        put(UInt64(0x400), at: 0x160, in: &page)  // DR7
        put(UInt64(0xFFFF_0FF0), at: 0x168, in: &page)  // DR6
        put(UInt64(0x2), at: 0x170, in: &page)  // RFLAGS
        put(UInt64(eip & 0xFFFF), at: 0x178, in: &page)  // RIP
        put(gPAT, at: 0x268, in: &page)  // G_PAT
        put(rdx, at: 0x310, in: &page)  // RDX: CPUID Fn0000_0001_EAX
        put(guestFeatures, at: 0x3B0, in: &page)  // SEV_FEATURES
        put(UInt64(0x1), at: 0x3E8, in: &page)  // XCR0
        put(mxcsr, at: 0x408, in: &page)  // MXCSR
        put(fcw, at: 0x410, in: &page)  // X87_FCW
        return page
    }

    private static func put<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at offset: Int, in page: inout [UInt8])
    {
        for index in 0..<MemoryLayout<T>.size {
            page[offset + index] = UInt8(truncatingIfNeeded: value >> (index * 8))
        }
    }
}

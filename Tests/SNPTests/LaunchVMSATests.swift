import Crypto
import SNP
import Testing

@Suite struct LaunchVMSATests {
    struct Dump: Sendable, CustomTestStringConvertible {
        var file: String
        var signature: UInt32
        var guestFeatures: UInt64
        var isBSP: Bool
        var testDescription: String { file }
    }

    static let dumps: [Dump] = [
        Dump(file: "vmsa-EPYC-v4-gf0x1-bsp.bin", signature: 0x0080_0F12, guestFeatures: 0x1, isBSP: true),
        Dump(file: "vmsa-EPYC-v4-gf0x1-ap.bin", signature: 0x0080_0F12, guestFeatures: 0x1, isBSP: false),
        Dump(file: "vmsa-EPYC-Milan-gf0x21-bsp.bin", signature: 0x00A0_0F11, guestFeatures: 0x21, isBSP: true),
        Dump(file: "vmsa-EPYC-Milan-gf0x21-ap.bin", signature: 0x00A0_0F11, guestFeatures: 0x21, isBSP: false),
    ]

    @Test(arguments: dumps)
    func equalsTheToolsDump(_ dump: Dump) throws {
        let page = VMSAPage.page(
            eip: dump.isBSP ? VMSAPage.bspEIP : 0x0080_B004, isBSP: dump.isBSP, signature: dump.signature,
            guestFeatures: dump.guestFeatures, vmmType: .qemu)
        #expect(page.count == 4096)
        let expected = try LaunchVector.read(dump.file)
        #expect(page == expected)
        if let index = page.indices.first(where: { page[$0] != expected[$0] }) {
            Issue.record("first difference at 0x\(String(index, radix: 16))")
        }
    }

    @Test func genoaPagesMatchTheListedDigests() {
        func digest(_ isBSP: Bool) -> String {
            Hex.encode(
                SHA384.hash(
                    data: VMSAPage.page(
                        eip: isBSP ? VMSAPage.bspEIP : 0x0080_B004, isBSP: isBSP,
                        signature: CPUSignature.named("EPYC-Genoa")!,
                        guestFeatures: 1, vmmType: .qemu)))
        }
        #expect(
            digest(true)
                == "7d39672d1b8a3e38353a8eef23af9a14a850be7b9c80bd29898aff5cd2386719e5ce72ad660a022def56b15e5e0f899e")
        #expect(
            digest(false)
                == "2eb1a41390605ea8527eded2db4f86244f621bd8b4abd7791e6ea37949d43373d47725b1f20213bb83332de70d646a4f")
    }

    @Test func vmmTypesChangeTheirFields() {
        func page(_ vmm: VMMType, bsp: Bool = true) -> [UInt8] {
            VMSAPage.page(
                eip: bsp ? VMSAPage.bspEIP : 0x0080_B004, isBSP: bsp, signature: 0x00A0_0F11, guestFeatures: 1,
                vmmType: vmm)
        }
        #expect(page(.ec2)[0x012] == 0x9A && page(.ec2, bsp: false)[0x012] == 0x9B)
        #expect(page(.ec2)[0x022] == 0x92 && page(.ec2)[0x092] == 0x83)
        #expect(page(.ec2)[0x310..<0x314] == [0x00, 0x06, 0, 0] && page(.gce)[0x310..<0x314] == [0x00, 0x06, 0, 0])
        #expect(page(.gce)[0x268..<0x270] == [0x06, 0x01, 0x07, 0, 0, 0, 0, 0])
        #expect(page(.gce)[0x408..<0x412].allSatisfy { $0 == 0 })
    }

    @Test func knowsTheNamedCPUModels() {
        #expect(CPUSignature.names.count == 16)
        for name in ["EPYC", "EPYC-v1", "EPYC-v2", "EPYC-v3", "EPYC-v4", "EPYC-IBPB"] {
            #expect(CPUSignature.named(name) == 0x0080_0F12)
        }
        for name in ["EPYC-Rome", "EPYC-Rome-v1", "EPYC-Rome-v2", "EPYC-Rome-v3"] {
            #expect(CPUSignature.named(name) == 0x0083_0F10)
        }
        for name in ["EPYC-Milan", "EPYC-Milan-v1", "EPYC-Milan-v2"] {
            #expect(CPUSignature.named(name) == 0x00A0_0F11)
        }
        #expect(CPUSignature.named("EPYC-Genoa") == 0x00A1_0F10 && CPUSignature.named("EPYC-Genoa-v1") == 0x00A1_0F10)
        #expect(CPUSignature.named("EPYC-Turin") == 0x00B0_0F00)
        #expect(CPUSignature.named("EPYC-Milan-v3") == nil && CPUSignature.named("epyc") == nil)
        #expect(CPUSignature.of(family: 14, model: 1, stepping: 2) == 0x0E12)
        #expect(CPUSignature.of(family: 26, model: 17, stepping: 0) == 0x00B1_0F10)
        #expect(Set(CPUSignature.names.compactMap(CPUSignature.named)).count == 5)
    }
}

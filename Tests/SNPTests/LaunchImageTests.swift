import SNP
import Testing

/// The OVMF footer table and SEV metadata parser, against the images in ../shared/testdata/measure and
/// deliberately damaged copies of the 4 KiB tail.
@Suite struct LaunchImageTests {
    static let amdSevSections: [SEVMetadataSection] = [
        .init(gpa: 0x80_0000, size: 0x9000, kind: .secMem), .init(gpa: 0x80_A000, size: 0x3000, kind: .secMem),
        .init(gpa: 0x80_D000, size: 0x1000, kind: .secrets), .init(gpa: 0x80_E000, size: 0x1000, kind: .cpuid),
        .init(gpa: 0x80_F000, size: 0x1000, kind: .svsmCAA), .init(gpa: 0x81_1000, size: 0x1F000, kind: .secMem),
        .init(gpa: 0x81_0000, size: 0x1000, kind: .kernelHashes),
    ]

    @Test(arguments: ["OVMF.amdsev.fd", "OVMF.amdsev.suffix4k.bin"])
    func readsTheDebianSidAmdSevImage(_ file: String) throws {
        let image = try OVMFImage(bytes: LaunchVector.read(file))
        #expect(image.sevESResetEIP == 0x0080_B004)
        #expect(image.hashTableGPA == 0x0081_0C00)
        #expect(image.metadataSections == Self.amdSevSections)  // table order: KERNEL_HASHES last
        #expect(image.hasKernelHashesSection)
        // Entries sev-snp-measure ignores are still read: SEV secret block, TDX metadata, IGVM parameters.
        #expect(image.footerEntry("4c2eb361-7d9b-4cc3-8081-127c90d3d294")?.prefix(8) == [0, 0, 0x81, 0, 0, 0x0C, 0, 0])
        #expect(image.footerEntry("E47A6535-984A-4798-865E-4685A7BF8EC2") != nil)
        #expect(image.footerEntry("784fa70e-3176-4677-8a20-04b68699e374") != nil)
    }

    @Test func readsTheUpstreamFixtures() throws {
        let amdSev = try OVMFImage(bytes: LaunchVector.read("ovmf_AmdSev_suffix.bin"))
        #expect(
            amdSev.metadataSections.map(\.kind) == [
                .secMem, .secMem, .secrets, .cpuid, .svsmCAA, .kernelHashes, .secMem,
            ])
        #expect(amdSev.metadataSections.last == SEVMetadataSection(gpa: 0x81_1000, size: 0xF000, kind: .secMem))
        let x64 = try OVMFImage(bytes: LaunchVector.read("ovmf_OvmfX64_suffix.bin"))
        #expect(x64.hashTableGPA == 0)
        #expect(!x64.hasKernelHashesSection)
        #expect(x64.metadataSections.last == SEVMetadataSection(gpa: 0x81_0000, size: 0x10000, kind: .secMem))
        let debian = try OVMFImage(bytes: LaunchVector.read("ovmf_debian12_CODE_4M.suffix4k.bin"))
        #expect(debian.sevESResetEIP == 0x0080_8004)
        #expect(debian.metadataSections.isEmpty)
    }

    @Test func aFileWithoutFooterParsesEmpty() throws {
        let image = try OVMFImage(bytes: LaunchVector.read("initrd-synthetic.bin"))
        #expect(image.footerTable.isEmpty)
        #expect(image.sevESResetEIP == nil)
        #expect(image.size == 4219)
    }

    /// The 4 KiB tail with one byte range replaced; `at` counts from the metadata header.
    static func damagedTail(metadata at: Int, with bytes: [UInt8]) throws -> [UInt8] {
        var tail = try LaunchVector.read("OVMF.amdsev.suffix4k.bin")
        let offset = try #require(OVMFImage(bytes: tail).footerEntry("dc886566-984a-4798-a75e-5585a7bf67cc"))
        let start = tail.count - offset.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(Array(tail[start..<start + 4]) == Array("ASEV".utf8))
        tail.replaceSubrange(start + at..<start + at + bytes.count, with: bytes)
        return tail
    }

    @Test func refusesDamagedMetadata() throws {
        #expect(throws: MeasurementError.metadataSignatureInvalid(Array("XSEV".utf8))) {
            try OVMFImage(bytes: Self.damagedTail(metadata: 0, with: Array("X".utf8)))
        }
        #expect(throws: MeasurementError.metadataVersionUnsupported(2)) {
            try OVMFImage(bytes: Self.damagedTail(metadata: 8, with: [2]))
        }
        #expect(throws: MeasurementError.metadataSizeInvalid(size: 16, sections: 7)) {
            try OVMFImage(bytes: Self.damagedTail(metadata: 4, with: [16]))
        }
        // The first descriptor's type (header 16 + gpa 4 + size 4).
        #expect(throws: MeasurementError.metadataSectionTypeUnknown(type: 7, gpa: 0x80_0000)) {
            try OVMFImage(bytes: Self.damagedTail(metadata: 24, with: [7]))
        }
    }

    @Test func refusesAnOversizedHashesSectionOnlyWithAKernel() throws {
        // The 7th descriptor (KERNEL_HASHES) size field: 16 + 6 * 12 + 4.
        let tail = try Self.damagedTail(metadata: 92, with: [0, 0x20])
        #expect(try OVMFImage(bytes: tail).metadataSections.last?.size == 0x2000)
        var inputs = LaunchInputs(
            ovmf: tail, vcpus: 1, vcpuSignature: 0x0080_0F12, ovmfHash: Array(repeating: 0, count: 48))
        let traced = try LaunchDigest.snpTrace(inputs)
        #expect(traced.updates.count == 47 + 1 + 1)  // two ZERO pages for the section, one VMSA
        inputs.kernel = []
        #expect(throws: MeasurementError.kernelHashesSectionSize(0x2000)) { try LaunchDigest.snp(inputs) }
        let odd = try Self.damagedTail(metadata: 92, with: [0x10, 0x10])
        inputs.kernel = nil
        #expect(
            throws: MeasurementError.metadataSectionSizeNotPageMultiple(
                .init(gpa: 0x81_0000, size: 0x1010, kind: .kernelHashes))
        ) {
            try LaunchDigest.snp(LaunchInputs(ovmf: odd, vcpus: 1, vcpuSignature: 1, ovmfHash: inputs.ovmfHash))
        }
    }

    @Test func refusesAnImageWithoutTheSEVESResetBlock() throws {
        var tail = try LaunchVector.read("OVMF.amdsev.suffix4k.bin")
        let guid: [UInt8] = [
            0xDE, 0x71, 0xF7, 0x00, 0x7E, 0x1A, 0xCB, 0x4F, 0x89, 0x0E, 0x68, 0xC7, 0x7E, 0x2F, 0xB4, 0x4E,
        ]
        let at = try #require((0...tail.count - 16).first { Array(tail[$0..<$0 + 16]) == guid })
        tail[at] ^= 0xFF
        let inputs = LaunchInputs(ovmf: tail, vcpus: 1, vcpuSignature: 1, ovmfHash: Array(repeating: 0, count: 48))
        #expect(try OVMFImage(bytes: tail).sevESResetEIP == nil)
        #expect(throws: MeasurementError.noSEVESResetBlock) { try LaunchDigest.snp(inputs) }
        #expect(throws: MeasurementError.noSEVESResetBlock) { try LaunchDigest.sevES(inputs) }
        #expect(try LaunchDigest.sev(inputs).count == 32)  // SEV has no VMSAs
    }
}

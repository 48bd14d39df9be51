import Foundation
import SNP
import Testing

@Suite struct LaunchDigestTests {
    /// The shipped rows where sev-snp-measure fails, or prints a value this library deliberately refuses.
    static let refusals: [String: MeasurementError] = [
        "D12": .noKernelHashesSection,
        "F09": .firmwareSizeNotPageMultiple(size: 4219),
        "F10": .noSEVMetadata,  // the reference prints firmware + VMSAs for an image without SEV metadata
        "F11": .noKernelHashesSection,
    ]

    @Test func vectorsAreFoundAndMostAreShipped() {
        #expect(
            !LaunchVector.document.isEmpty,
            "vectors.md not found in \(LaunchVector.directory.path): the tests need ../shared/testdata beside the checkout"
        )
        #expect(LaunchVector.shipped.count >= 40, "only \(LaunchVector.shipped.count) vectors can be checked")
        // Everything not shipped needs the Debian kernel or Debian 12's generic OVMF files.
        let ids = LaunchVector.unshipped.map(\.id)
        #expect(
            ids.allSatisfy { $0.hasPrefix("A") || ["C05", "E05", "E06"].contains($0) || $0 < "F09" && $0 >= "F01" })
        for group in ["B", "C", "D"] {
            #expect(LaunchVector.shipped.contains { $0.id.hasPrefix(group) })
        }
        for id in ["E01", "E02", "E03", "E04", "F09", "F10", "F11"] {
            #expect(LaunchVector.shipped.contains { $0.id == id }, "\(id) should be checked")
        }
    }

    @Test(arguments: LaunchVector.shipped)
    func reproducesTheReferenceOutput(_ vector: LaunchVector) throws {
        if let refusal = Self.refusals[vector.id] {
            #expect(throws: refusal) { try vector.measure() }
        } else {
            #expect(vector.exitStatus == 0, "the reference fails on \(vector.id); add its expected error to `refusals`")
            #expect(vector.printed(try vector.measure()) == vector.expected)
        }
    }

    @Test(arguments: [("B02", "B08"), ("B10", "B11"), ("B03", "C03"), ("D04", "D22")])
    func equalVectorsAgree(_ pair: (String, String)) throws {
        let first = try #require(LaunchVector.named(pair.0))
        let second = try #require(LaunchVector.named(pair.1))
        #expect(first.expected == second.expected)
        #expect(try first.measure() == second.measure())
    }

    @Test func ovmfHashSeedsTheFullCalculation() throws {
        let ovmf = try LaunchVector.read("OVMF.amdsev.fd")
        let seed = try LaunchDigest.ovmfHash(ovmf)
        #expect(
            Hex.encode(seed)
                == "9d0dd8be18c86e3fe3bf0038ed75ebf5340bee69fd2632c8ff9409964575960ae1f7e84be387d2e3467bc3508d1e4806")
        var inputs = LaunchInputs(
            ovmf: ovmf, kernel: try LaunchVector.read("kernel-synthetic.bin"), vcpus: 2,
            vcpuSignature: CPUSignature.named("EPYC-Genoa")!)
        let full = try LaunchDigest.snp(inputs)
        inputs.ovmf = Array(ovmf.suffix(4096))
        inputs.ovmfHash = seed
        #expect(try LaunchDigest.snp(inputs) == full)
        #expect(try LaunchDigest.snpTrace(inputs).digest == full)
    }

    @Test func snpRefusesBadArguments() throws {
        let ovmf = try LaunchVector.read("OVMF.amdsev.suffix4k.bin")
        var inputs = LaunchInputs(ovmf: ovmf, vcpus: 0, vcpuSignature: 0x00A0_0F11)
        #expect(throws: MeasurementError.vcpuCountInvalid(0)) { try LaunchDigest.snp(inputs) }
        #expect(throws: MeasurementError.vcpuCountInvalid(0)) { try LaunchDigest.sevES(inputs) }
        inputs.vcpus = 1
        inputs.ovmfHash = Array(repeating: 0, count: 32)
        #expect(throws: MeasurementError.ovmfHashLengthInvalid(32)) { try LaunchDigest.snp(inputs) }
        #expect(throws: MeasurementError.firmwareTooSmall(size: 49)) {
            try LaunchDigest.snp(LaunchInputs(ovmf: Array(ovmf.suffix(49)), vcpus: 1, vcpuSignature: 1))
        }
        #expect(throws: MeasurementError.firmwareSizeNotPageMultiple(size: 4095)) {
            try LaunchDigest.ovmfHash(Array(ovmf.suffix(4095)))
        }
    }

    @Test func sevModesNeedAHashTableWithAGPA() throws {
        let inputs = LaunchInputs(
            ovmf: try LaunchVector.read("ovmf_OvmfX64_suffix.bin"), kernel: [], vcpus: 1, vcpuSignature: 0x0080_0F12)
        #expect(try OVMFImage(bytes: inputs.ovmf).hashTableGPA == 0)
        #expect(throws: MeasurementError.kernelHashesUnsupported) { try LaunchDigest.sev(inputs) }
        #expect(throws: MeasurementError.kernelHashesUnsupported) { try LaunchDigest.sevES(inputs) }
        #expect(throws: MeasurementError.noKernelHashesSection) { try LaunchDigest.snp(inputs) }
    }

    @Test func errorDescriptionsSayWhatToCheck() {
        let errors: [MeasurementError] = [
            .firmwareSizeNotPageMultiple(size: 4219), .noSEVMetadata, .noKernelHashesSection, .noSEVESResetBlock,
            .kernelHashesSectionSize(0x2000), .metadataSectionTypeUnknown(type: 7, gpa: 0x80_0000),
            .metadataSignatureInvalid(Array("XSEV".utf8)), .metadataVersionUnsupported(2), .vcpuCountInvalid(0),
            .kernelHashesUnsupported, .ovmfHashLengthInvalid(32),
        ]
        for error in errors {
            // One sentence: what failed, then (after "; ") what to check or do.
            #expect(error.description.contains("; "), "\(error)")
            #expect(!error.description.hasSuffix("."), "\(error)")
        }
        #expect(
            MeasurementError.noKernelHashesSection.description.hasPrefix(
                "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section"))
        #expect(MeasurementError.firmwareSizeNotPageMultiple(size: 4219).description.contains("4219 bytes"))
    }
}

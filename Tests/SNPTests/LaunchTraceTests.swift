import Crypto
import Foundation
import SNP
import Testing

/// The B03 step-by-step trace of vectors.md: OVMF.amdsev.fd, the synthetic kernel and initrd,
/// `console=ttyS0 loglevel=7`, 4 vCPUs EPYC-Milan, guest features 0x1, QEMU.
@Suite struct LaunchTraceTests {
    static func b03() throws -> (digest: [UInt8], updates: [PageInfo]) {
        try LaunchDigest.snpTrace(try #require(LaunchVector.named("B03")).inputs())
    }

    /// The lines of the trace block, "after …: hex" and "update #n …: hex".
    static var traceLines: [Substring] {
        guard let start = LaunchVector.document.range(of: "## Step-by-step trace for B03") else { return [] }
        return LaunchVector.document[start.upperBound...].split(separator: "\n").prefix { !$0.hasPrefix("Notes on") }
    }

    static func value(after prefix: String) -> String? {
        traceLines.first { $0.hasPrefix(prefix) }.map { String($0.split(separator: " ").last!) }
    }

    @Test func followsTheTraceStepByStep() throws {
        let (digest, updates) = try Self.b03()
        #expect(
            Hex.encode(digest)
                == "b401308a0b72a6c70fa4be86fcd235377a55110b75dcb911773d934f19b9c93ec887086d2f548d691f1718e96eba2c0f")
        #expect(Self.value(after: "final") == Hex.encode(digest))
        #expect(updates.count == 1075)
        #expect(updates.last?.digestAfter == digest)
        // Each update starts from the previous one's result.
        for (before, after) in zip(updates, updates.dropFirst()) where after.digestBefore != before.digestAfter {
            Issue.record("update chain broken at GPA 0x\(String(after.gpa, radix: 16))")
            break
        }

        #expect(updates[0].gpa == 0xFFC0_0000)
        #expect(Hex.encode(updates[0].bytes) == Self.value(after: "PAGE_INFO[0]"))
        #expect(
            Hex.encode(updates[0].digestAfter)
                == "dc877dcd762e33104e9e73e194182cb0ad613417fdaab5ff3f946afe7ea3f13527d0f16fb5072852cfe173731f4aece3")
        #expect(Hex.encode(updates[0].digestAfter) == Self.value(after: "after page 0"))
        #expect(updates[0..<1024].allSatisfy { $0.pageType == .normal })
        #expect(
            Hex.encode(updates[1023].digestAfter)
                == "9d0dd8be18c86e3fe3bf0038ed75ebf5340bee69fd2632c8ff9409964575960ae1f7e84be387d2e3467bc3508d1e4806")
        #expect(Hex.encode(updates[1023].digestAfter) == Self.value(after: "after firmware"))
    }

    @Test func measuresEachMetadataSectionInTableOrder() throws {
        let (_, updates) = try Self.b03()
        let sections = try OVMFImage(bytes: LaunchVector.read("OVMF.amdsev.fd")).metadataSections
        var index = 1024
        for section in sections {
            let count = section.kind == .secrets || section.kind == .cpuid ? 1 : Int(section.size) / 4096
            let line = try #require(Self.traceLines.first { $0.hasPrefix("after \(section) (\(count) upd") })
            let group = updates[index..<index + count]
            let type = try #require(PageInfo.PageType(rawValue: UInt8(line.split(separator: "type ")[1].prefix(1))!))
            #expect(group.allSatisfy { $0.pageType == type }, "\(section)")
            #expect(group.map(\.gpa) == (0..<count).map { UInt64(section.gpa) + UInt64($0) * 4096 })
            #expect(Hex.encode(group.last!.digestAfter) == String(line.split(separator: " ").last!), "\(section)")
            index += count
        }
        #expect(index == 1071)
        let hashesPage = updates[1070]
        #expect(hashesPage.pageType == .normal && hashesPage.gpa == 0x81_0000)
        #expect(
            Hex.encode(hashesPage.contents)
                == "08e934cd6d067266fe40497ab1bb9946a408ed304f4e6069a85c7a078940181b75d4c12999083b0c1f68bcad7d2213fe")

        // The selected PAGE_INFO blobs, byte for byte.
        let blobs = Self.traceLines.filter { $0.hasPrefix("update #") }
        #expect(blobs.count == 5)
        for blob in blobs {
            let number = Int(blob.dropFirst("update #".count).prefix { $0.isNumber })!
            #expect(Hex.encode(updates[number].bytes) == String(blob.split(separator: " ").last!), "update #\(number)")
        }
    }

    @Test func endsWithTheVMSAs() throws {
        let (_, updates) = try Self.b03()
        let vmsas = updates[1071...]
        #expect(vmsas.allSatisfy { $0.pageType == .vmsa && $0.gpa == 0xFFFF_FFFF_F000 })
        let bsp = "728af287318db5f3fc4d2357a969483c4225956dc555b514a78d64ee372112d13b3dca8afd02cdbd1c55697d8ce087f5"
        let ap = "24d6d6fe1cc2fd76d9504a2e411e2a1e229a6723c94521c373c21dd97514c44895fc07fea07e04b4186d90160c8dad0b"
        #expect(vmsas.map { Hex.encode($0.contents) } == [bsp, ap, ap, ap])
        for (vcpu, update) in vmsas.enumerated() {
            #expect(Hex.encode(update.digestAfter) == Self.value(after: "after VMSA \(vcpu) "), "VMSA \(vcpu)")
        }
    }

    @Test func buildsTheHashTable() throws {
        let table = SEVHashTable.padded(
            kernel: try LaunchVector.read("kernel-synthetic.bin"),
            initrd: try LaunchVector.read("initrd-synthetic.bin"),
            cmdline: "console=ttyS0 loglevel=7")
        #expect(table.count == 176)
        #expect(Hex.encode(table) == Self.value(after: "table hex"))
        #expect(
            Hex.encode(table).hasPrefix(
                "06d63894224fc94cb479a793d411fd21a800d82dd09720bd944caa78e7714d36ab2a3200321c8eec"))
    }

    @Test func hashesTheCmdlineWithItsNUL() {
        let kernel: [UInt8] = []
        let none = SEVHashTable.padded(kernel: kernel, initrd: nil, cmdline: nil)
        #expect(none == SEVHashTable.padded(kernel: kernel, initrd: [], cmdline: ""))
        #expect(Hex.encode(none[0x24..<0x44]) == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        #expect(Hex.encode(none[0x56..<0x76]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let utf8 = SEVHashTable.padded(kernel: kernel, initrd: nil, cmdline: "quiet lang=bär µ")
        #expect(Hex.encode(utf8[0x24..<0x44]) == "be018010671c9ab682c31f2d42dbce1979f59fb8a455b9c6c25b64a330a66588")
    }
}

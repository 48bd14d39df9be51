import Crypto
import SNP
import Testing

@Suite struct AttestationReportTests {
    @Test(arguments: RealVector.reports)
    func roundTripsEveryRealReport(_ vector: RealVector) throws {
        let bytes = vector.report
        #expect(Hex.encode(SHA256.hash(data: bytes)) == vector.entry.expect!.sha256)
        let report = try AttestationReport(bytes: bytes)
        #expect(report.bytes == bytes)
        #expect(report.signedBytes == Array(bytes[0..<0x2A0]))
    }

    @Test(arguments: RealVector.reports)
    func fieldsEqualTheExpectedValues(_ vector: RealVector) throws {
        let report = try AttestationReport(bytes: vector.report)
        let expect = vector.entry.expect!
        #expect(report.version == expect.version)
        #expect(report.vmpl == expect.vmpl)
        #expect(report.guestSVN == expect.guest_svn)
        #expect(report.policy.rawValue == expect.policy)
        #expect(Hex.encode(report.measurement) == expect.measurement)
        #expect(Hex.encode(report.reportData) == expect.report_data)
        #expect(Hex.encode(report.hostData) == expect.host_data)
        #expect(Hex.encode(report.chipID) == expect.chip_id)
        #expect(report.reportedTCB.hex == expect.reported_tcb_raw)
        #expect(report.policy.contains(.reservedMustBeOne))
        #expect(report.reportIDMA == Array(repeating: 0xFF, count: 32))
        if report.version >= 3 {
            #expect(report.product?.name == vector.entry.product)
        }
    }

    @Test func decodesTheTurinTCBLayout() throws {
        let vector = RealVector.reports.first { $0.name == "turin_v5_oak" }!
        let report = try AttestationReport(bytes: vector.report)
        #expect(report.product == .turin)
        let levels = report.reportedTCB.levels(.turin)
        #expect(levels == TCBLevels(fmc: 0, bootLoader: 1, tee: 0, snp: 2, microcode: 71))
        #expect(report.platformInfo.flagNames.contains("bit-6"))
        #expect(TCBVersion(levels, layout: .turin) == report.reportedTCB)
    }

    @Test func decodesTheMilanTCBLayout() throws {
        let vector = RealVector.reports.first { $0.name == "milan_v2_virtee" }!
        let report = try AttestationReport(bytes: vector.report)
        let levels = report.reportedTCB.levels(.milanGenoa)
        #expect(levels == TCBLevels(bootLoader: 3, tee: 0, snp: 8, microcode: 115))
        #expect(TCBVersion(levels, layout: .milanGenoa) == report.reportedTCB)
        #expect(report.product == nil)  // v2 without a Turin-shaped CHIP_ID does not name its product
    }

    @Test func readsTheV5MitigationVectors() throws {
        let vector = RealVector.reports.first { $0.name == "genoa_v5_oak" }!
        let report = try AttestationReport(bytes: vector.report)
        #expect(report.launchMitigationVector == 1)
        #expect(report.currentMitigationVector == 1)
        #expect(report.currentVersion.description == "1.55.43")
    }

    /// Reserved areas common to every version, and the version-dependent ones.
    @Test(arguments: [0x04C, 0x18B, 0x19F, 0x1EB, 0x1EF, 0x208, 0x29F, 0x330, 0x49F])
    func rejectsNonZeroReservedByte(at offset: Int) throws {
        var bytes = RealVector.reports.first { $0.name == "genoa_v5_oak" }!.report
        bytes[offset] = 1
        #expect(throws: LayoutError.reservedNotZero(offset: offset)) { try AttestationReport(bytes: bytes) }
    }

    @Test(arguments: [0x188, 0x18A, 0x1F8, 0x207])
    func rejectsVersionSpecificBytesInAVersion2Report(at offset: Int) throws {
        var bytes = RealVector.reports.first { $0.name == "milan_v2_gsg" }!.report
        bytes[offset] = 1
        #expect(throws: LayoutError.reservedNotZero(offset: offset)) { try AttestationReport(bytes: bytes) }
    }

    @Test func acceptsVersion4AsVersion3() throws {
        var bytes = RealVector.reports.first { $0.name == "milan_v3_oak" }!.report
        bytes[0] = 4
        let report = try AttestationReport(bytes: bytes)
        #expect(report.cpuidFamilyID == 0x19)
        #expect(report.bytes == bytes)
    }

    @Test(arguments: [0, 1, 6, 0xFFFF_FFFF] as [UInt32])
    func rejectsUnknownVersions(_ version: UInt32) throws {
        var bytes = RealVector.reports[0].report
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: version >> (index * 8)) }
        #expect(throws: LayoutError.unsupportedVersion(structure: "ATTESTATION_REPORT", version: version)) {
            try AttestationReport(bytes: bytes)
        }
    }

    @Test(arguments: [0, 100, 1183, 1185, 4000])
    func rejectsWrongSizes(_ count: Int) throws {
        let bytes = Array(RealVector.reports[0].report.prefix(count)) + Array(repeating: 0, count: max(0, count - 1184))
        #expect(throws: LayoutError.wrongSize(structure: "ATTESTATION_REPORT", expected: 1184, actual: count)) {
            try AttestationReport(bytes: bytes)
        }
    }
}

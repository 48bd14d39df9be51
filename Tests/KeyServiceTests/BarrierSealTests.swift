import Crypto
import Foundation
import SNP
import SNPEmulator
import Sealing
import Testing

@testable import KeyService

/// vhsmd's barrier seal over the emulated firmware: the TCB it pins, and the launches it refuses.
/// What seal.json records about the launch that sealed a directory, and how another launch differs from it.
@Suite struct SealPinDifferenceTests {
    @Test func aPinNamesTheChipAndMeasurementThatDifferAndOnlyThose() throws {
        var report = AttestationReport(version: 3)
        report.chipID = Array(repeating: 0xAB, count: 64)
        report.measurement = Array(repeating: 0x5A, count: 48)
        let pin = BarrierSeal.Pin(
            provider: "sev-guest", tcb: "04000000000018db", fields: ["policy", "measurement", "tcb"], svn: nil,
            chipID: Hex.encode(report.chipID), measurement: Hex.encode(report.measurement))
        #expect(pin.differences(from: report).isEmpty)
        var other = report
        other.chipID = Array(repeating: 0xCD, count: 64)
        other.measurement = Array(repeating: 0x6B, count: 48)
        #expect(
            pin.differences(from: other) == [
                "CHIP_ID: sealed on abababababababab…, this launch cdcdcdcdcdcdcdcd…",
                "MEASUREMENT: sealed 5a5a5a5a5a5a5a5a…, this launch 6b6b6b6b6b6b6b6b…",
            ])
        // A platform-mode pin does not bind the measurement: it is not named.
        var platform = pin
        platform.fields = ["policy", "tcb"]
        #expect(
            platform.differences(from: other) == ["CHIP_ID: sealed on abababababababab…, this launch cdcdcdcdcdcdcdcd…"]
        )
        // An older seal.json records neither: nothing to compare, and it still decodes.
        let old = try JSONDecoder().decode(
            BarrierSeal.Pin.self,
            from: Data(#"{"provider":"sev-guest","tcb":"04000000000018db","fields":["tcb"]}"#.utf8))
        #expect(old.chipID == nil && old.differences(from: other).isEmpty)
        // The names written are snake case, as the rest of seal.json.
        let json = String(decoding: try JSONEncoder().encode(pin), as: UTF8.self)
        #expect(json.contains("\"chip_id\"") && json.contains("\"measurement\""))
    }
}

@Suite struct BarrierSealTests {
    /// One chip for the suite (RSA-4096 ARK/ASK generation is slow): COMMITTED = CURRENT = REPORTED.
    static let honest: ChipState = try! ChipState.create(product: .genoa)
    /// The same chip after an uncommitted firmware update, with REPORTED_TCB lowered below COMMITTED_TCB by the host.
    static let hostLowered: ChipState = {
        var current = honest.tcb
        current.snp += 1
        var reported = honest.tcb
        reported.snp -= 5
        reported.microcode -= 10
        return try! honest.updatingFirmware(to: current).settingReportedTCB(reported)
    }()

    static let measurement = Array(repeating: UInt8(0x5A), count: 48)

    func guest(_ chip: ChipState, policy: UInt64 = 0x20000) -> EmulatedGuest {
        try! EmulatedGuest(
            chip: chip, launch: LaunchContext(measurement: Self.measurement, policy: GuestPolicy(rawValue: policy)))
    }

    func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("seal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func open(
        _ guest: EmulatedGuest, _ directory: String, mode: SealMode = .measurement,
        requirements: SealingRequirements = SealingRequirements(), warnings: inout [String]
    ) throws -> SymmetricKey {
        var said: [String] = []
        let provider = try BarrierSeal.provider(
            device: guest, setting: "emulator:test", mode: mode, requirements: requirements, directory: directory,
            warn: { said.append($0) })
        warnings += said
        return try provider.rootKey()
    }

    func pin(_ directory: String) throws -> BarrierSeal.Pin {
        try JSONDecoder().decode(
            BarrierSeal.Pin.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/seal.json")))
    }

    @Test func theHostLoweringReportedTCBDoesNotLowerThePin() throws {
        let report = try guest(Self.hostLowered).attestationReport(ReportRequest())
        #expect(below(report.reportedTCB, report.committedTCB) && below(report.committedTCB, report.currentTCB))
        var warnings: [String] = []
        let lowered = try directory()
        defer { try? FileManager.default.removeItem(atPath: lowered) }
        let key = try open(guest(Self.hostLowered), lowered, warnings: &warnings)
        #expect(try pin(lowered).tcb == Self.honest.tcbVersion.hex)

        // The honest host's launch pins the same TCB and so derives the same barrier key; the data directory
        // sealed under the lowered REPORTED_TCB opens there.
        let honest = try directory()
        defer { try? FileManager.default.removeItem(atPath: honest) }
        #expect(try open(guest(Self.honest), honest, warnings: &warnings) == key)
        #expect(try open(guest(Self.honest), lowered, warnings: &warnings) == key)
        #expect(warnings.isEmpty)
    }

    @Test func aMinimumAboveCommittedTCBRefusesToSealAndWritesNoPin() throws {
        var minimum = Self.honest.tcb
        minimum.snp += 1  // met by CURRENT_TCB, not by COMMITTED_TCB
        let requirements = SealingRequirements(minimumTCB: TCBVersion(minimum, layout: .milanGenoa))
        let path = try directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var warnings: [String] = []
        let error = #expect(throws: ConfigError.self) {
            try open(guest(Self.hostLowered), path, requirements: requirements, warnings: &warnings)
        }
        #expect(error?.description.contains("COMMITTED_TCB: expected at least") == true)
        #expect(!FileManager.default.fileExists(atPath: path + "/seal.json"))
        // Once the update is committed, the same minimum is met and the pin is the new COMMITTED_TCB.
        let committed = Self.hostLowered.committingFirmware()
        _ = try open(guest(committed), path, requirements: requirements, warnings: &warnings)
        #expect(try pin(path).tcb == committed.tcbVersion.hex)
    }

    @Test(arguments: [(UInt64(0xA0000), "debug"), (0x60000, "migration-agent"), (0x30000, "smt")])
    func aForbiddenGuestPolicyIsRefusedAtFirstUseAndAtEveryStart(policy: UInt64, name: String) throws {
        let path = try directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var warnings: [String] = []
        let error = #expect(throws: ConfigError.self) {
            try open(guest(Self.honest, policy: policy), path, warnings: &warnings)
        }
        #expect(error?.description.contains("POLICY: expected \(name) not allowed") == true)
        #expect(!FileManager.default.fileExists(atPath: path + "/seal.json"))

        // A directory sealed by an acceptable launch is not opened by a forbidden one either.
        let sealed = try directory()
        defer { try? FileManager.default.removeItem(atPath: sealed) }
        let allowSMT = SealingRequirements(allowSMT: true)
        _ = try open(guest(Self.honest), sealed, requirements: allowSMT, warnings: &warnings)
        if name == "smt" {
            // allow_smt lets the SMT launch open it; without allow_smt it is refused.
            _ = try open(guest(Self.honest, policy: policy), sealed, requirements: allowSMT, warnings: &warnings)
        } else {
            #expect(throws: ConfigError.self) {
                try open(guest(Self.honest, policy: policy), sealed, requirements: allowSMT, warnings: &warnings)
            }
        }
        #expect(throws: ConfigError.self) { try open(guest(Self.honest, policy: policy), sealed, warnings: &warnings) }
    }

    @Test func sealingInPlatformModeWarnsOnce() throws {
        let path = try directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var warnings: [String] = []
        _ = try open(guest(Self.honest), path, mode: .platform, warnings: &warnings)
        #expect(warnings == [BarrierSeal.platformWarning])
        #expect(BarrierSeal.platformWarning.contains("binds no image"))
        _ = try open(guest(Self.honest), path, mode: .platform, warnings: &warnings)
        #expect(warnings.count == 1)
    }

    @Test func theConfigReadsMinTCBAndAllowSMT() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vhsmd-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        func load(_ extra: String) throws -> ServerConfig {
            try #"{"listener": {}, "storage": {"path": "/tmp/x"}, "seal": "sev-guest"\#(extra)}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
            return try ServerConfig.load(path)
        }
        #expect(try load("").sealing == SealingRequirements())
        #expect(
            try load(#", "min_tcb": "0a00000000195400", "allow_smt": true"#).sealing
                == SealingRequirements(minimumTCB: try TCBVersion(hex: "0a00000000195400"), allowSMT: true))
        #expect(try load(#", "min_tcb": null"#).sealing.minimumTCB == nil)
        #expect(throws: ConfigError.self) { try load(#", "min_tcb": "0a00""#) }
        #expect(throws: ConfigError.self) { try load(#", "min_tcb": 10"#) }
        #expect(throws: ConfigError.self) { try load(#", "allow_smt": "yes""#) }
    }
}

/// Every byte (component) at most the other's, and not equal.
private func below(_ lower: TCBVersion, _ higher: TCBVersion) -> Bool {
    lower != higher && zip(lower.bytes, higher.bytes).allSatisfy { $0 <= $1 }
}

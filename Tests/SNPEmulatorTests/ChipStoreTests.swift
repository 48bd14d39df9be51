import Foundation
import SNP
import Testing

@testable import SNPEmulator

@Suite struct ChipStoreTests {
    func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "vhsm-chip-\(UUID().uuidString)"
        return path
    }

    @Test func aStoredChipLoadsBackAndDerivesTheSameKeys() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ChipStore(directory: directory)
        let chip = TestChips.chip(.genoa, secret: 6)
        try store.create(chip)
        let loaded = try store.load()
        #expect(loaded.product == .genoa)
        #expect(loaded.chipID == chip.chipID)
        #expect(loaded.tcb == chip.tcb)
        #expect(loaded.ark == chip.ark)
        let request = DerivedKeyRequest(root: .vcek, guestFieldSelect: .tcbVersion, tcbVersion: chip.tcbVersion)
        #expect(
            try TestChips.guest(loaded).derivedKeyBytes(request) == TestChips.guest(chip).derivedKeyBytes(request))

        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/chip.json")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let keyAttributes = try FileManager.default.attributesOfItem(atPath: directory + "/ask.key")
        #expect((keyAttributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func aChipIsNeverOverwritten() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ChipStore(directory: directory)
        try store.create(TestChips.chip(.milan, secret: 7))
        #expect(throws: EmulatorError.stateExists(path: directory)) {
            try store.create(TestChips.chip(.milan, secret: 8))
        }
        #expect(try store.load().chipSecret == Array(repeating: 7, count: 32))
    }

    @Test func aMissingStateSaysHowToCreateOne() {
        #expect(throws: EmulatorError.stateMissing(path: "/nonexistent/chip")) {
            try ChipStore(directory: "/nonexistent/chip").load()
        }
        #expect(EmulatorError.stateMissing(path: "/x").description.contains("vhsm emulator init"))
    }

    @Test func theVCEKIsMintedOnceAndCached() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ChipStore(directory: directory)
        let chip = TestChips.chip(.turin, secret: 10)
        try store.create(chip)
        let first = try store.vcek(for: chip, tcb: chip.tcb)
        let second = try store.vcek(for: chip, tcb: chip.tcb)
        #expect(first == second)
        #expect(FileManager.default.fileExists(atPath: directory + "/vcek-\(chip.tcbVersion.hex).der"))
    }

    @Test func theSeedChainOnlyGoesDown() {
        let secret = Array(repeating: UInt8(5), count: 32)
        let high = TCBLevels(bootLoader: 4, tee: 1, snp: 24, microcode: 219)
        let low = TCBLevels(bootLoader: 3, tee: 0, snp: 8, microcode: 115)
        let atHigh = SeedChain(chipSecret: secret, top: high)
        let atLow = SeedChain(chipSecret: secret, top: low)
        #expect(atHigh.vcekSeed(for: low) == atLow.vcekSeed(for: low))
        #expect(atLow.vcekSeed(for: high) == nil)
        #expect(atHigh.vcekSeed(for: high) != atHigh.vcekSeed(for: low))
        var oneUp = low
        oneUp.tee = 1
        #expect(atLow.vcekSeed(for: oneUp) == nil)
    }
}

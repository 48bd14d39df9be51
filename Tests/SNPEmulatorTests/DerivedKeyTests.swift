import SNP
import Testing

@testable import SNPEmulator

/// The derived-key property table: what changes a key, what does not, and every rejection rule.
@Suite struct DerivedKeyTests {
    let all: GuestFieldSelect = [.guestPolicy, .imageID, .familyID, .measurement, .guestSVN, .tcbVersion]

    func key(
        _ chip: ChipState = TestChips.milan, _ launch: LaunchContext = LaunchContext(),
        _ request: DerivedKeyRequest = DerivedKeyRequest(root: .vcek)
    ) throws -> [UInt8] {
        try TestChips.guest(chip, launch).derivedKeyBytes(request)
    }

    func request(
        _ fields: GuestFieldSelect, vmpl: UInt32 = 0, svn: UInt32 = 0, tcb: TCBVersion? = nil
    )
        -> DerivedKeyRequest
    {
        DerivedKeyRequest(
            root: .vcek, guestFieldSelect: fields, vmpl: vmpl, guestSVN: svn,
            tcbVersion: tcb ?? TestChips.milan.tcbVersion)
    }

    @Test func sameInputsGiveTheSameKeyAcrossLaunches() throws {
        let launch = LaunchContext(measurement: TestChips.measurementA, idBlock: TestChips.identity)
        let first = try key(TestChips.milan, launch, request(all, svn: 5))
        let second = try key(TestChips.milan, launch, request(all, svn: 5))
        #expect(first == second)
        #expect(first.count == 32)
        #expect(first != Array(repeating: 0, count: 32))
    }

    @Test func anotherChipGivesAnotherKey() throws {
        #expect(try key(TestChips.milan) != key(TestChips.chip(.milan, secret: 9)))
    }

    @Test func measurementChangesTheKeyOnlyWhenSelected() throws {
        let a = LaunchContext(measurement: TestChips.measurementA)
        let b = LaunchContext(measurement: TestChips.measurementB)
        #expect(try key(TestChips.milan, a, request(.measurement)) != key(TestChips.milan, b, request(.measurement)))
        #expect(try key(TestChips.milan, a, request([])) == key(TestChips.milan, b, request([])))
    }

    @Test func policyChangesTheKeyOnlyWhenSelected() throws {
        let a = LaunchContext(policy: GuestPolicy(rawValue: 0x30000))
        let b = LaunchContext(policy: GuestPolicy(rawValue: 0x20000))
        #expect(try key(TestChips.milan, a, request(.guestPolicy)) != key(TestChips.milan, b, request(.guestPolicy)))
        #expect(try key(TestChips.milan, a, request([])) == key(TestChips.milan, b, request([])))
    }

    @Test func hostDataAndVMPLAlwaysChangeTheKey() throws {
        let a = LaunchContext(hostData: Array(repeating: 1, count: 32))
        let b = LaunchContext(hostData: Array(repeating: 2, count: 32))
        #expect(try key(TestChips.milan, a) != key(TestChips.milan, b))
        #expect(try key(TestChips.milan, a, request([], vmpl: 0)) != key(TestChips.milan, a, request([], vmpl: 1)))
    }

    @Test func imageFamilyAndSVNChangeTheKeyWhenSelected() throws {
        var other = TestChips.identity
        other.imageID = Array(repeating: 0x77, count: 16)
        let a = LaunchContext(idBlock: TestChips.identity)
        let b = LaunchContext(idBlock: other)
        #expect(try key(TestChips.milan, a, request(.imageID)) != key(TestChips.milan, b, request(.imageID)))
        #expect(try key(TestChips.milan, a, request(.familyID)) == key(TestChips.milan, b, request(.familyID)))
        #expect(
            try key(TestChips.milan, a, request(.guestSVN, svn: 4))
                != key(TestChips.milan, a, request(.guestSVN, svn: 5)))
        // The ID key digest is always mixed in: with and without an ID block, keys differ.
        #expect(try key(TestChips.milan, a) != key(TestChips.milan, LaunchContext()))
    }

    @Test func aPinnedTCBSurvivesAnUpgradeAndAnUnpinnedKeyDoesNot() throws {
        let old = TCBLevels(bootLoader: 3, tee: 0, snp: 8, microcode: 115)
        let new = TCBLevels(bootLoader: 4, tee: 0, snp: 24, microcode: 219)
        let before = TestChips.chip(.milan, secret: 3, tcb: old)
        let after = TestChips.chip(.milan, secret: 3, tcb: new)
        let pinned = request(.tcbVersion, tcb: TCBVersion(old, layout: .milanGenoa))
        #expect(try key(before, LaunchContext(), pinned) == key(after, LaunchContext(), pinned))
        #expect(try key(before) != key(after))
        // Rolling back below the pinned TCB: the old firmware cannot derive the newer seed.
        let pinnedNew = request(.tcbVersion, tcb: TCBVersion(new, layout: .milanGenoa))
        #expect(throws: FirmwareError(status: .invalidParam, request: "MSG_KEY_REQ")) {
            try key(before, LaunchContext(), pinnedNew)
        }
    }

    @Test func eachTCBComponentIsPinnedSeparately() throws {
        let chip = TestChips.chip(.turin, secret: 4)
        var lower = chip.tcb
        lower.snp -= 1
        var higher = chip.tcb
        higher.microcode += 1
        let layout = TCBLayout.turin
        let ok = DerivedKeyRequest(
            root: .vcek, guestFieldSelect: .tcbVersion, tcbVersion: TCBVersion(lower, layout: layout))
        let refused = DerivedKeyRequest(
            root: .vcek, guestFieldSelect: .tcbVersion, tcbVersion: TCBVersion(higher, layout: layout))
        #expect(TestChips.guest(chip).derivedKey(ok).status == .success)
        #expect(TestChips.guest(chip).derivedKey(refused).status == .invalidParam)
    }

    @Test func theVMRKDiffersPerLaunchAndIsStableWithinOne() throws {
        let request = DerivedKeyRequest(root: .vmrk)
        let guest = TestChips.guest()
        #expect(try guest.derivedKeyBytes(request) == guest.derivedKeyBytes(request))
        #expect(try guest.derivedKeyBytes(request) != TestChips.guest().derivedKeyBytes(request))
        #expect(try guest.derivedKeyBytes(request) != guest.derivedKeyBytes(DerivedKeyRequest(root: .vcek)))
    }

    @Test func everyRejectionRule() throws {
        let guest = TestChips.guest(TestChips.milan, LaunchContext(callerVMPL: 1, idBlock: TestChips.identity))
        func status(_ change: (inout DerivedKeyRequest) -> Void) -> FirmwareStatus {
            var request = DerivedKeyRequest(root: .vcek, vmpl: 1)
            change(&request)
            return guest.derivedKey(request).status
        }
        #expect(status { _ in } == .success)
        #expect(status { $0.reserved = 1 } == .invalidParam)
        #expect(status { $0.rootKeySelect |= 1 << 3 } == .invalidParam)
        #expect(status { $0.guestFieldSelect = GuestFieldSelect(rawValue: 1 << 7) } == .invalidParam)
        #expect(status { $0.guestFieldSelect = .launchMitigationVector } == .invalidParam)  // needs message version 2
        #expect(status { $0.vmpl = 0 } == .invalidParam)  // below the caller's VMPL
        #expect(status { $0.vmpl = 4 } == .invalidParam)
        #expect(
            status {
                $0.guestFieldSelect = .guestSVN; $0.guestSVN = 6
            } == .invalidParam)  // above the ID block's 5
        #expect(
            status {
                $0.guestFieldSelect = .guestSVN; $0.guestSVN = 5
            } == .success)
        #expect(
            status {
                $0.guestFieldSelect = .tcbVersion; $0.tcbVersion = TCBVersion(rawValue: 1 << 16)
            } == .invalidParam)  // reserved byte
        #expect(status { $0.rootKeySelect = 2 << 1 } == .invalidKey)  // VLEK, none loaded
        #expect(status { $0.rootKeySelect = 3 << 1 } == .invalidKey)  // KEY_SEL 3
        #expect(status { $0.rootKeySelect = 0 } == .success)  // KEY_SEL 0: VLEK if loaded, else VCEK
        let refused = guest.derivedKey(DerivedKeyRequest(root: .vlek, vmpl: 1))
        #expect(refused.key == Array(repeating: 0, count: 32))
    }

    @Test func keySelectZeroAndOneGiveTheChipKey() throws {
        let guest = TestChips.guest()
        let zero = try guest.derivedKeyBytes(DerivedKeyRequest(rootKeySelect: 0))
        #expect(zero == (try guest.derivedKeyBytes(DerivedKeyRequest(root: .vcek))))
    }
}

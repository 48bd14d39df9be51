import Crypto
import SNP
import Testing

@testable import SNPEmulator

/// SNP_LAUNCH_FINISH with an ID block: what the firmware refuses, and what an accepted block changes.
@Suite struct IDBlockLaunchTests {
    static let idKey = P384.Signing.PrivateKey()
    static let authorKey = P384.Signing.PrivateKey()
    let family = Array(repeating: UInt8(0xF1), count: 16)
    let image = Array(repeating: UInt8(0x1A), count: 16)

    func signed(
        _ measurement: [UInt8], svn: UInt32 = 3, policy: UInt64 = 0x30000, author: Bool = false
    ) throws
        -> (IDBlock, IDAuthentication)
    {
        let block = try IDBlock(
            launchDigest: measurement, familyID: family, imageID: image, guestSVN: svn,
            policy: GuestPolicy(rawValue: policy))
        let auth = try IDAuthentication.sign(block, idKey: Self.idKey, authorKey: author ? Self.authorKey : nil)
        return (block, auth)
    }

    func launch(
        _ measurement: [UInt8], _ block: IDBlock, _ auth: IDAuthentication, policy: UInt64 = 0x30000
    )
        throws(EmulatorError) -> LaunchContext
    {
        var context = LaunchContext(measurement: measurement, policy: GuestPolicy(rawValue: policy))
        try context.accept(idBlock: block, authentication: auth)
        return context
    }

    @Test func anAcceptedBlockPutsItsIdentityIntoReports() throws {
        let (block, auth) = try signed(TestChips.measurementA, author: true)
        let guest = TestChips.guest(TestChips.milan, try launch(TestChips.measurementA, block, auth))
        let report = try guest.attestationReport(ReportRequest())
        #expect(report.familyID == family && report.imageID == image && report.guestSVN == 3)
        #expect(report.idKeyDigest == SEVPublicKey(Self.idKey.publicKey).digest)
        #expect(report.authorKeyDigest == SEVPublicKey(Self.authorKey.publicKey).digest)
        #expect(report.keyInfo.authorKeyEnabled)
    }

    @Test func theFirmwareRefusesAMismatchedMeasurementPolicyOrSignature() throws {
        let (block, auth) = try signed(TestChips.measurementA)
        #expect(throws: EmulatorError.self) { try launch(TestChips.measurementB, block, auth) }
        do {
            _ = try launch(TestChips.measurementB, block, auth)
        } catch {
            guard case .launchRefused(let status, _) = error else { throw error }
            #expect(status == .badMeasurement)
        }
        do {
            _ = try launch(TestChips.measurementA, block, auth, policy: 0x70000)
            Issue.record("a launch with another policy was accepted")
        } catch {
            guard case .launchRefused(let status, _) = error else { throw error }
            #expect(status == .policyFailure)
        }
        var tampered = auth
        tampered.idBlockSignature = try signed(TestChips.measurementB).1.idBlockSignature
        do {
            _ = try launch(TestChips.measurementA, block, tampered)
            Issue.record("a wrongly signed ID block was accepted")
        } catch {
            guard case .launchRefused(let status, _) = error else { throw error }
            #expect(status == .badSignature)
        }
    }

    /// The image seal: another image signed with the same ID key, family and image id gets the same key as long
    /// as the key request binds the ID fields and an SVN the block allows; the measurement does not enter.
    @Test func imagesSignedWithTheSameIDKeyShareTheImageSealedKey() throws {
        let (blockA, authA) = try signed(TestChips.measurementA, svn: 3)
        let (blockB, authB) = try signed(TestChips.measurementB, svn: 4)
        let guestA = TestChips.guest(TestChips.milan, try launch(TestChips.measurementA, blockA, authA))
        let guestB = TestChips.guest(TestChips.milan, try launch(TestChips.measurementB, blockB, authB))
        let sealed = DerivedKeyRequest(
            root: .vcek, guestFieldSelect: [.guestPolicy, .imageID, .familyID, .guestSVN, .tcbVersion], guestSVN: 3,
            tcbVersion: TestChips.milan.tcbVersion)
        #expect(try guestA.derivedKeyBytes(sealed) == guestB.derivedKeyBytes(sealed))
        var measured = sealed
        measured.guestFieldSelect.insert(.measurement)
        #expect(try guestA.derivedKeyBytes(measured) != guestB.derivedKeyBytes(measured))
        // An older image (SVN 2) cannot ask for the SVN-3 key: rollback refused.
        let (blockOld, authOld) = try signed(TestChips.measurementB, svn: 2)
        let guestOld = TestChips.guest(TestChips.milan, try launch(TestChips.measurementB, blockOld, authOld))
        #expect(guestOld.derivedKey(sealed).status == .invalidParam)
        // Another ID key gives another key even with the same family, image and SVN.
        let otherKey = P384.Signing.PrivateKey()
        let otherBlock = try IDBlock(
            launchDigest: TestChips.measurementA, familyID: family,
            imageID: image, guestSVN: 3, policy: GuestPolicy(rawValue: 0x30000))
        let otherAuth = try IDAuthentication.sign(otherBlock, idKey: otherKey, authorKey: nil)
        let guestOther = TestChips.guest(TestChips.milan, try launch(TestChips.measurementA, otherBlock, otherAuth))
        #expect(try guestOther.derivedKeyBytes(sealed) != guestA.derivedKeyBytes(sealed))
    }
}

import CryptoExtras
import Foundation
import SNP

@testable import SNPEmulator

/// Chips for tests. RSA-4096 generation is slow, so every test chip shares one ARK key and one ASK key,
/// minted into a per-product chain; chip secrets and CHIP_IDs are distinct.
enum TestChips {
    static let arkKey = try! _RSA.Signing.PrivateKey(keySize: .bits4096)
    static let askKey = try! _RSA.Signing.PrivateKey(keySize: .bits4096)
    static let issued = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01

    /// `tcb` is COMMITTED_TCB; CURRENT_TCB defaults to it, REPORTED_TCB to CURRENT_TCB.
    static func chip(
        _ product: Product, secret: UInt8 = 1, tcb: TCBLevels? = nil, current: TCBLevels? = nil,
        reported: TCBLevels? = nil
    ) -> ChipState {
        let ark = try! AMDCertificateBuilder.root(product: product, key: arkKey, notBefore: issued)
        let ask = try! AMDCertificateBuilder.intermediate(
            product: product, key: askKey.publicKey, issuerKey: arkKey, notBefore: issued)
        var chipID = Array(repeating: secret &+ 0x40, count: product.chipIDLength)
        chipID += Array(repeating: 0, count: 64 - chipID.count)
        let committed = tcb ?? ChipProfile.of(product).defaultTCB
        return try! ChipState(
            product: product, chipID: chipID, chipSecret: Array(repeating: secret, count: 32), tcb: committed,
            currentTCB: current ?? committed, reportedTCB: reported ?? current ?? committed, ark: ark, ask: ask,
            askKey: askKey, arkKeyPEM: arkKey.pemRepresentation)
    }

    static let milan = chip(.milan)
    static let genoa = chip(.genoa)
    static let turin = chip(.turin)

    static func guest(_ chip: ChipState = milan, _ launch: LaunchContext = LaunchContext()) -> EmulatedGuest {
        try! EmulatedGuest(chip: chip, launch: launch)
    }

    static let measurementA = Array(repeating: UInt8(0xA1), count: 48)
    static let measurementB = Array(repeating: UInt8(0xB2), count: 48)
    static let identity = LaunchIdentity(
        familyID: Array(repeating: 0x0F, count: 16), imageID: Array(repeating: 0x1E, count: 16), guestSVN: 5,
        idKeyDigest: Array(repeating: 0x1D, count: 48), authorKeyDigest: nil)
}

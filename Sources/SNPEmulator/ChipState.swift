import Crypto
import CryptoExtras
public import FoundationEssentials
public import SNP

/// An emulated chip, as kept in its state directory: identity, secrets, TCB and its AMD-shaped test PKI.
///
/// Files: `chip.json` (mode 0600: product, CHIP_ID, chip secret, TCB), `ark.key` and `ask.key` (PKCS#8 PEM, 0600),
/// `ark.pem`, `ask.pem`, and `vcek-<tcb>.der` per TCB once minted. Nothing here leaves the emulator except
/// the certificates.
public struct ChipState: Sendable {
    public var product: Product
    public var chipID: [UInt8]
    var chipSecret: [UInt8]
    /// COMMITTED_TCB, which is also the CURRENT_TCB and the REPORTED_TCB of this emulated platform.
    public var tcb: TCBLevels
    public var ark: AMDCertificate
    public var ask: AMDCertificate
    let askKey: _RSA.Signing.PrivateKey

    public var profile: ChipProfile { .of(product) }
    public var tcbVersion: TCBVersion { TCBVersion(tcb, layout: product.tcbLayout) }

    /// Makes a new chip: random secret and CHIP_ID (Turin: 8 bytes), fresh RSA-4096 ARK and ASK.
    public static func create(product: Product, tcb: TCBLevels? = nil, now: Date = Date()) throws -> ChipState {
        var chipID = randomBytes(product.chipIDLength)
        chipID += Array(repeating: 0, count: 64 - chipID.count)
        let arkKey = try _RSA.Signing.PrivateKey(keySize: .bits4096)
        let askKey = try _RSA.Signing.PrivateKey(keySize: .bits4096)
        let issued = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 86_400)
        let ark = try AMDCertificateBuilder.root(product: product, key: arkKey, notBefore: issued)
        let ask = try AMDCertificateBuilder.intermediate(
            product: product, key: askKey.publicKey, issuerKey: arkKey, notBefore: issued)
        var levels = tcb ?? ChipProfile.of(product).defaultTCB
        if product == .turin, levels.fmc == nil { levels.fmc = 0 }
        if product != .turin { levels.fmc = nil }
        return ChipState(
            product: product, chipID: chipID, chipSecret: randomBytes(32), tcb: levels, ark: ark, ask: ask,
            askKey: askKey, arkKeyPEM: arkKey.pemRepresentation)
    }

    /// The ARK private key, kept only to be written to the state directory.
    let arkKeyPEM: String

    init(
        product: Product, chipID: [UInt8], chipSecret: [UInt8], tcb: TCBLevels, ark: AMDCertificate,
        ask: AMDCertificate, askKey: _RSA.Signing.PrivateKey, arkKeyPEM: String
    ) {
        self.product = product
        self.chipID = chipID
        self.chipSecret = chipSecret
        self.tcb = tcb
        self.ark = ark
        self.ask = ask
        self.askKey = askKey
        self.arkKeyPEM = arkKeyPEM
    }

    /// The seed chain at this chip's committed TCB.
    var seedChain: SeedChain { SeedChain(chipSecret: chipSecret, committed: tcb) }

    /// The VCEK signing key for `tcb`: a P-384 scalar derived from that TCB's VCEK seed, so it is the same
    /// every time and differs per chip and per TCB. Nil when `tcb` is above the committed TCB.
    func vcekKey(for tcb: TCBLevels) -> P384.Signing.PrivateKey? {
        guard let seed = seedChain.vcekSeed(for: tcb) else { return nil }
        for counter in UInt8(0)...UInt8.max {
            let scalar = HKDF<SHA384>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: seed), salt: [counter],
                info: Array("vhsm-emulator/vcek-signing-key".utf8), outputByteCount: 48)
            if let key = scalar.withUnsafeBytes({ try? P384.Signing.PrivateKey(rawRepresentation: $0) }) {
                return key
            }
        }
        return nil
    }

    /// The VCEK certificate for `tcb`, signed by this chip's ASK.
    func mintVCEK(for tcb: TCBLevels, now: Date = Date()) throws -> AMDCertificate {
        guard let key = vcekKey(for: tcb) else {
            throw EmulatorError.launchRefused(.invalidParam, reason: "no VCEK above the committed TCB \(self.tcb)")
        }
        let issued = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 86_400)
        return try AMDCertificateBuilder.vcek(
            product: product, key: key.publicKey, tcb: tcb, hardwareID: Array(chipID.prefix(product.chipIDLength)),
            issuerKey: askKey, notBefore: issued)
    }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

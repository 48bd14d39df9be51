import Crypto
import CryptoExtras
public import FoundationEssentials
public import SNP

/// An emulated chip, as kept in its state directory: identity, secrets, TCB and its AMD-shaped test PKI.
///
/// Three TCBs, as on hardware: COMMITTED_TCB (`tcb`, the anti-rollback floor: MSG_KEY_REQ may pin any TCB up to
/// it), CURRENT_TCB (the firmware running now, at or above COMMITTED_TCB until the host commits an update) and
/// REPORTED_TCB (the host's SNP_SET_CONFIG choice, at most CURRENT_TCB, possibly below COMMITTED_TCB; the report
/// is signed by its VCEK). LAUNCH_TCB is CURRENT_TCB at launch.
///
/// Files: `chip.json` (mode 0600: product, CHIP_ID, chip secret, the TCBs), `ark.key` and `ask.key` (PKCS#8 PEM, 0600),
/// `ark.pem`, `ask.pem`, and `vcek-<tcb>.der` per TCB once minted. Nothing here leaves the emulator except
/// the certificates.
public struct ChipState: Sendable {
    public var product: Product
    public var chipID: [UInt8]
    var chipSecret: [UInt8]
    /// COMMITTED_TCB.
    public private(set) var tcb: TCBLevels
    /// CURRENT_TCB: component-wise at least `tcb`.
    public private(set) var currentTCB: TCBLevels
    /// REPORTED_TCB: component-wise at most `currentTCB`. The host lowers it with `settingReportedTCB(_:)`.
    public private(set) var reportedTCB: TCBLevels
    public var ark: AMDCertificate
    public var ask: AMDCertificate
    let askKey: _RSA.Signing.PrivateKey

    public var profile: ChipProfile { .of(product) }
    /// COMMITTED_TCB as TCB_VERSION.
    public var tcbVersion: TCBVersion { TCBVersion(tcb, layout: product.tcbLayout) }
    public var currentTCBVersion: TCBVersion { TCBVersion(currentTCB, layout: product.tcbLayout) }
    public var reportedTCBVersion: TCBVersion { TCBVersion(reportedTCB, layout: product.tcbLayout) }

    /// Makes a new chip: random secret and CHIP_ID (Turin: 8 bytes), fresh RSA-4096 ARK and ASK. `tcb` is
    /// COMMITTED_TCB; CURRENT_TCB defaults to it and REPORTED_TCB to CURRENT_TCB.
    public static func create(
        product: Product, tcb: TCBLevels? = nil, currentTCB: TCBLevels? = nil, reportedTCB: TCBLevels? = nil,
        now: Date = Date()
    ) throws -> ChipState {
        var chipID = randomBytes(product.chipIDLength)
        chipID += Array(repeating: 0, count: 64 - chipID.count)
        let arkKey = try _RSA.Signing.PrivateKey(keySize: .bits4096)
        let askKey = try _RSA.Signing.PrivateKey(keySize: .bits4096)
        let issued = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400 - 86_400)
        let ark = try AMDCertificateBuilder.root(product: product, key: arkKey, notBefore: issued)
        let ask = try AMDCertificateBuilder.intermediate(
            product: product, key: askKey.publicKey, issuerKey: arkKey, notBefore: issued)
        func normalized(_ levels: TCBLevels) -> TCBLevels {
            var levels = levels
            if product == .turin, levels.fmc == nil { levels.fmc = 0 }
            if product != .turin { levels.fmc = nil }
            return levels
        }
        let committed = normalized(tcb ?? ChipProfile.of(product).defaultTCB)
        let current = normalized(currentTCB ?? committed)
        return try ChipState(
            product: product, chipID: chipID, chipSecret: randomBytes(32), tcb: committed, currentTCB: current,
            reportedTCB: normalized(reportedTCB ?? current), ark: ark, ask: ask, askKey: askKey,
            arkKeyPEM: arkKey.pemRepresentation)
    }

    /// This chip with the host's REPORTED_TCB set to `reported` (SNP_SET_CONFIG): any TCB up to CURRENT_TCB.
    public func settingReportedTCB(_ reported: TCBLevels) throws(EmulatorError) -> ChipState {
        var chip = self
        try Self.checkOrder(committed: tcb, current: currentTCB, reported: reported)
        chip.reportedTCB = reported
        return chip
    }

    /// This chip after the host loads newer firmware (SNP_DOWNLOAD_FIRMWARE_EX) without committing it:
    /// CURRENT_TCB rises to `current`, COMMITTED_TCB and REPORTED_TCB stay.
    public func updatingFirmware(to current: TCBLevels) throws(EmulatorError) -> ChipState {
        var chip = self
        try Self.checkOrder(committed: tcb, current: current, reported: reportedTCB)
        chip.currentTCB = current
        return chip
    }

    /// This chip after SNP_COMMIT: COMMITTED_TCB becomes CURRENT_TCB (no rollback below it from now on).
    public func committingFirmware() -> ChipState {
        var chip = self
        chip.tcb = currentTCB
        return chip
    }

    /// CURRENT_TCB at or above COMMITTED_TCB and REPORTED_TCB, per component, as the firmware keeps them.
    static func checkOrder(committed: TCBLevels, current: TCBLevels, reported: TCBLevels) throws(EmulatorError) {
        guard committed.components == current.components, reported.components == current.components else {
            throw .tcbOrder("the TCBs name different components (one has an FMC SPL, another not)")
        }
        guard current.isAtLeast(committed) else {
            throw .tcbOrder("CURRENT_TCB (\(current)) is below COMMITTED_TCB (\(committed)) in some component")
        }
        guard current.isAtLeast(reported) else {
            throw .tcbOrder("REPORTED_TCB (\(reported)) is above CURRENT_TCB (\(current)) in some component")
        }
    }

    /// The ARK private key, kept only to be written to the state directory.
    let arkKeyPEM: String

    init(
        product: Product, chipID: [UInt8], chipSecret: [UInt8], tcb: TCBLevels, currentTCB: TCBLevels,
        reportedTCB: TCBLevels, ark: AMDCertificate, ask: AMDCertificate, askKey: _RSA.Signing.PrivateKey,
        arkKeyPEM: String
    ) throws(EmulatorError) {
        try Self.checkOrder(committed: tcb, current: currentTCB, reported: reportedTCB)
        self.product = product
        self.chipID = chipID
        self.chipSecret = chipSecret
        self.tcb = tcb
        self.currentTCB = currentTCB
        self.reportedTCB = reportedTCB
        self.ark = ark
        self.ask = ask
        self.askKey = askKey
        self.arkKeyPEM = arkKeyPEM
    }

    /// The seed chain at this chip's running firmware (CURRENT_TCB): every VCEK seed at or below it. Which of
    /// them MSG_KEY_REQ may use is the firmware's rule (at most COMMITTED_TCB), applied by `EmulatedGuest`.
    var seedChain: SeedChain { SeedChain(chipSecret: chipSecret, top: currentTCB) }

    /// The VCEK signing key for `tcb`: a P-384 scalar derived from that TCB's VCEK seed, so it is the same
    /// every time and differs per chip and per TCB. Nil when `tcb` is above CURRENT_TCB.
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
            throw EmulatorError.launchRefused(.invalidParam, reason: "no VCEK above CURRENT_TCB \(currentTCB)")
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

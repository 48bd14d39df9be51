public import Crypto
public import FoundationEssentials
public import Sealing
import StrictJSON

/// What a guest that cannot open its own data (another chip, measurement or TCB) hands the operator: an X25519
/// public key, and a report from the Secure Processor binding that key to this launch. The operator checks the
/// report (AMD chain, no DEBUG, the MEASUREMENT they expect) and seals the secret only this guest may have to the
/// key (`grant`): the volume's recovery key (`vhsm volume reenroll`) or vhsmd's barrier root key
/// (`vhsm operator recover`). The host carries the request and the grant but can open neither.
///
/// Binding: `REPORT_DATA = SHA-512("vhsm-recovery-request-v1" ‖ 0x00 ‖ purpose ‖ 0x00 ‖ subject ‖ 0x00 ‖ key)`,
/// the ASCII label and purpose, the subject's UTF-8 bytes and the 32-byte raw X25519 public key.
///
/// Armored as "VHSM RECOVERY REQUEST": `{"version":1,"purpose":"volume"|"barrier","subject":"…",
/// "public_key":"<base64, 32 bytes>","report":"<base64, 1184 bytes>","certificates":["<base64 DER>",…]}`, the
/// certificates from the extended report's table (VCEK or VLEK first, then ASK/ASVK and ARK) when the host gave any.
public struct RecoveryRequest: Sendable {
    public static let label = "vhsm-recovery-request-v1"
    public static let armorLabel = "VHSM RECOVERY REQUEST"
    public static let version: UInt64 = 1

    public enum Purpose: String, Sendable, CaseIterable {
        /// The LUKS volume's recovery key; the subject is the volume UUID.
        case volume
        /// vhsmd's barrier root key; the subject is the data directory.
        case barrier
    }

    public var purpose: Purpose
    public var subject: String
    public var publicKey: Curve25519.KeyAgreement.PublicKey
    public var report: AttestationReport
    public var certificates: [[UInt8]]

    public init(
        purpose: Purpose, subject: String, publicKey: Curve25519.KeyAgreement.PublicKey, report: AttestationReport,
        certificates: [[UInt8]]
    ) {
        self.purpose = purpose
        self.subject = subject
        self.publicKey = publicKey
        self.report = report
        self.certificates = certificates
    }

    /// The REPORT_DATA a request for `purpose`, `subject` and `publicKey` carries.
    public static func reportData(
        purpose: Purpose, subject: String, publicKey: Curve25519.KeyAgreement.PublicKey
    ) -> [UInt8] {
        var input = Array(label.utf8) + [0] + Array(purpose.rawValue.utf8) + [0] + Array(subject.utf8) + [0]
        input += publicKey.rawRepresentation
        return Array(SHA512.hash(data: input))
    }

    /// Asks `device` for an extended report binding `publicKey` (VMPL 0, VCEK or VLEK as the firmware chooses).
    public static func make(
        device: any GuestDevice, purpose: Purpose, subject: String, publicKey: Curve25519.KeyAgreement.PublicKey
    ) throws -> RecoveryRequest {
        let request = try ReportRequest(
            reportData: reportData(purpose: purpose, subject: subject, publicKey: publicKey))
        let (response, table) = try device.extendedReport(request)
        let report = try response.checked()
        let signer: CertificateTable.Kind = report.keyInfo.signingKey == .vlek ? .vlek : .vcek
        let certificates = [table[signer], table[.ask], table[.ark]].compactMap { $0 }
        return RecoveryRequest(
            purpose: purpose, subject: subject, publicKey: publicKey, report: report, certificates: certificates)
    }

    /// The grant: `secret` sealed to this request's key, for its purpose and subject.
    public func grant(_ secret: some DataProtocol) throws(SealingError) -> SealedSecret {
        try SealedSecret.seal(
            secret, kind: .recoveryGrant, context: Self.context(purpose: purpose, subject: subject),
            to: .x25519(publicKey))
    }

    /// The grant's context: `<purpose>|<subject>`.
    public static func context(purpose: Purpose, subject: String) -> String { "\(purpose.rawValue)|\(subject)" }

    /// Checks that the request is genuine (`verifier`'s roots, the endorsement in `certificates` or `endorsement`,
    /// valid at `instant`), that REPORT_DATA binds its key, purpose and subject, and that the launch is one the
    /// operator expects: MEASUREMENT equal to `measurement`, no DEBUG unless `allowDebug`. Every problem is listed.
    public func verify(
        verifier: ReportVerifier, measurement: [UInt8], endorsement: AMDCertificate? = nil,
        extraCertificates: [AMDCertificate] = [], allowDebug: Bool = false, at instant: Date = Date()
    ) throws(SealingError) -> VerifiedReport {
        var parsed: [AMDCertificate] = []
        for der in certificates {
            do { parsed.append(try AMDCertificate(derEncoded: der)) } catch {
                throw SealingError("the recovery request holds a certificate that does not parse: \(error)")
            }
        }
        guard let signer = endorsement ?? parsed.first else {
            throw SealingError(
                "the recovery request carries no VCEK or VLEK (the host gave no certificate table): pass the chip's "
                    + "VCEK with --cert")
        }
        let verified: VerifiedReport
        do {
            verified = try verifier.verify(
                report, endorsement: signer, candidates: parsed + extraCertificates, at: instant)
        } catch {
            throw SealingError("the recovery request's report is not genuine: \(error)")
        }
        let policy = ReportPolicy(
            measurement: measurement,
            reportData: Self.reportData(purpose: purpose, subject: subject, publicKey: publicKey),
            forbidden: allowDebug ? [] : [.debugAllowed])
        let violations = policy.violations(in: verified)
        guard violations.isEmpty else {
            throw SealingError(
                "the recovery request's launch is not the expected one: "
                    + violations.map(\.description).joined(separator: "; "))
        }
        return verified
    }

    public var armored: String {
        Armor.wrap(
            .object([
                ("version", .number(Self.version)), ("purpose", .string(purpose.rawValue)),
                ("subject", .string(subject)),
                ("public_key", .string(Data(publicKey.rawRepresentation).base64EncodedString())),
                ("report", .string(Data(report.bytes).base64EncodedString())),
                ("certificates", .array(certificates.map { .string(Data($0).base64EncodedString()) })),
            ]), label: Self.armorLabel)
    }

    /// Parses an armored request (text around it, such as the rest of a console log, is ignored).
    public static func parse(armored text: String) throws(SealingError) -> RecoveryRequest {
        let fields = try Armor.unwrap(text, label: armorLabel, what: "recovery request")
        try fields.only(["version", "purpose", "subject", "public_key", "report", "certificates"])
        try fields.version(version)
        let purposeName = try fields.string("purpose")
        guard let purpose = Purpose(rawValue: purposeName) else {
            throw SealingError("the recovery request's purpose '\(purposeName)' is not volume or barrier")
        }
        let subject = try fields.string("subject")
        guard !subject.isEmpty, subject.utf8.count <= 256 else {
            throw SealingError("the recovery request's subject is empty or over 256 bytes")
        }
        let keyBytes = try fields.bytes("public_key", 32...32)
        let publicKey: Curve25519.KeyAgreement.PublicKey
        do { publicKey = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: keyBytes) } catch {
            throw SealingError("the recovery request's public_key is not an X25519 key")
        }
        let reportBytes = try fields.bytes("report", AttestationReport.byteCount...AttestationReport.byteCount)
        let report: AttestationReport
        do { report = try AttestationReport(bytes: reportBytes) } catch {
            throw SealingError("the recovery request's report does not parse: \(error)")
        }
        return RecoveryRequest(
            purpose: purpose, subject: subject, publicKey: publicKey, report: report,
            certificates: try fields.byteList("certificates", 1...16384, maximum: 4))
    }
}

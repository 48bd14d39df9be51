public import FoundationEssentials

/// Every reason a report was found not genuine, in the order they were checked.
public struct VerificationFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var problems: [VerificationProblem]

    public var description: String { problems.map(\.description).joined(separator: "; ") }
}

/// One reason a report or its chain is not genuine.
public enum VerificationProblem: Equatable, Sendable, CustomStringConvertible {
    case unsupportedSignatureAlgorithm(UInt32)
    case reservedKeyInfoBits(UInt32)
    case reservedSigningKey(UInt32)
    case unsigned
    case endorsementKindUnknown(String)
    case signerMismatch(report: KeyInfo.SigningKey, certificate: KeyInfo.SigningKey)
    case productMismatch(report: Product, certificate: String)
    case productUnknown
    case issuerNotFound(String)
    case untrustedRoot(subject: String, fingerprint: String)
    case rootNotSelfIssued(String)
    case issuerMismatch(String, issuer: String)
    case unsupportedCertificateAlgorithm(String)
    case certificateSignatureInvalid(String, signer: String)
    case notSignedByAMDRoot(String, root: String)
    case wrongKeyType(String, expected: String)
    case notValidAt(String, notBefore: Date, notAfter: Date, at: Date)
    case splMismatch(TCBLevels.Component, certificate: UInt8?, reportedTCB: UInt8)
    case missingSPLs
    case hardwareIDMismatch(certificate: String, chipID: String)
    case signatureNotCanonical
    case reportSignatureInvalid

    public var description: String {
        switch self {
        case .unsupportedSignatureAlgorithm(let algorithm):
            "SIGNATURE_ALGO is \(algorithm); only 1 (ECDSA P-384 with SHA-384) is defined"
        case .reservedKeyInfoBits(let value):
            "KEY_INFO 0x\(String(value, radix: 16)) sets reserved bits 31:5"
        case .reservedSigningKey(let value): "KEY_INFO SIGNING_KEY is \(value), a reserved value"
        case .unsigned: "the report is unsigned (SIGNING_KEY = none: the host masked the chip key)"
        case .endorsementKindUnknown(let subject):
            "the endorsement certificate \(subject) has neither a hwID (VCEK) nor a CSP_ID (VLEK) extension"
        case .signerMismatch(let report, let certificate):
            "KEY_INFO says the report was signed by the \(report), but the certificate given is a \(certificate)"
        case .productMismatch(let report, let certificate):
            "the report's CPUID says \(report.name), the certificate's productName says \(certificate)"
        case .productUnknown:
            "cannot tell the product line: the report has no CPUID (version 2) and the certificate no productName"
        case .issuerNotFound(let issuer):
            "no certificate for issuer \(issuer) among --chain, the certificate table and the built-in AMD certificates"
        case .untrustedRoot(let subject, let fingerprint):
            "the root \(subject) (SHA-256 \(fingerprint)) is not a pinned AMD ARK; "
                + "for an emulator report pass --trust-emulator-root"
        case .rootNotSelfIssued(let subject): "the root \(subject) is not self-issued"
        case .issuerMismatch(let subject, let issuer): "\(subject) was not issued by \(issuer)"
        case .unsupportedCertificateAlgorithm(let subject):
            "\(subject) is not signed with AMD's RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48)"
        case .certificateSignatureInvalid(let subject, let signer):
            "the signature on \(subject) does not verify with the key of \(signer)"
        case .notSignedByAMDRoot(let subject, let root):
            "\(subject) is not signed by AMD's \(root); if this chain comes from the emulator, "
                + "pass its ARK with --trust-emulator-root"
        case .wrongKeyType(let subject, let expected): "\(subject) does not carry an \(expected) key"
        case .notValidAt(let subject, let notBefore, let notAfter, let at):
            "\(subject) is valid from \(Self.format(notBefore)) to \(Self.format(notAfter)), not at \(Self.format(at))"
        case .splMismatch(let component, let certificate, let reported):
            "certificate \(component.splName) is \(certificate.map(String.init) ?? "missing"), REPORTED_TCB has \(reported)"
        case .missingSPLs: "the endorsement certificate lacks AMD's SPL extensions"
        case .hardwareIDMismatch(let certificate, let chipID):
            "certificate hwID \(certificate) does not match CHIP_ID \(chipID)"
        case .signatureNotCanonical: "the signature's unused R/S bytes (48–71) are not zero"
        case .reportSignatureInvalid: "the report signature does not verify with the endorsement key"
        }
    }

    static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

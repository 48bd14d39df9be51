import Crypto
import CryptoExtras
public import FoundationEssentials

/// A report whose signature chain was checked back to a trusted root. Only `ReportVerifier` makes one.
public struct VerifiedReport: Sendable {
    public let report: AttestationReport
    public let product: Product
    public let signer: KeyInfo.SigningKey
    /// ARK, then ASK or ASVK, then VCEK or VLEK.
    public let chain: [AMDCertificate]
    /// True when the root is one of AMD's pinned ARKs, false for an operator-trusted (emulator) root.
    public let rootIsAMD: Bool
}

/// "Is this report genuine?": AMD's chain (ARK → ASK → VCEK, or ARK → ASVK → VLEK), the report signature,
/// and the bindings between them (SPLs = REPORTED_TCB, hwID = CHIP_ID, signer kind = KEY_INFO).
///
/// The only roots are AMD's pinned ARKs unless an operator adds one with `trusting(_:)`. Certificates from a
/// host's table or a file are candidates, never anchors.
public struct ReportVerifier: Sendable {
    /// SHA-256 fingerprints of the DER of every trusted ARK.
    public private(set) var trustedRoots: Set<[UInt8]>
    private var amdRoots: Set<[UInt8]>
    /// Roots trusted explicitly; they are also candidates when the chain is assembled.
    private var extraRoots: [AMDCertificate] = []

    /// AMD's ARKs for Milan, Genoa and Turin, pinned by fingerprint.
    public static let amd: ReportVerifier = {
        let pins = Set(Product.allCases.map(\.arkFingerprint))
        return ReportVerifier(trustedRoots: pins, amdRoots: pins)
    }()

    /// A verifier that trusts exactly `roots` (no AMD ARK unless one of them is).
    public init(roots: [AMDCertificate]) {
        let amdPins = Set(Product.allCases.map(\.arkFingerprint))
        self.trustedRoots = Set(roots.map { Array(SHA256.hash(data: $0.derRepresentation)) })
        self.amdRoots = amdPins
        self.extraRoots = roots
    }

    private init(trustedRoots: Set<[UInt8]>, amdRoots: Set<[UInt8]>) {
        self.trustedRoots = trustedRoots
        self.amdRoots = amdRoots
    }

    /// This verifier, also trusting `root` (e.g. the emulator's ARK named by `--trust-emulator-root`).
    public func trusting(_ root: AMDCertificate) -> ReportVerifier {
        var copy = self
        copy.trustedRoots.insert(Array(SHA256.hash(data: root.derRepresentation)))
        copy.extraRoots.append(root)
        return copy
    }

    /// Verifies `report` with its VCEK or VLEK. The intermediate and root come from `candidates` (in order of
    /// preference), then from AMD's built-in certificates for the report's product.
    public func verify(
        _ report: AttestationReport, endorsement: AMDCertificate, candidates: [AMDCertificate] = [], at instant: Date
    ) throws(VerificationFailure) -> VerifiedReport {
        var problems: [VerificationProblem] = []

        // The report itself.
        if report.signatureAlgorithm != 1 { problems.append(.unsupportedSignatureAlgorithm(report.signatureAlgorithm)) }
        if report.keyInfo.reservedBits != 0 { problems.append(.reservedKeyInfoBits(report.keyInfo.rawValue)) }
        let claimedSigner = report.keyInfo.signingKey
        switch claimedSigner {
        case .unsigned?: problems.append(.unsigned)
        case nil: problems.append(.reservedSigningKey(report.keyInfo.signingKeyField))
        default: break
        }

        // What the endorsement certificate is.
        let signer: KeyInfo.SigningKey
        switch (endorsement.hardwareID != nil, endorsement.cspID != nil) {
        case (true, false): signer = .vcek
        case (false, true): signer = .vlek
        default:
            problems.append(.endorsementKindUnknown(endorsement.subject.description))
            signer = claimedSigner ?? .vcek
        }
        if let claimedSigner, claimedSigner != .unsigned, claimedSigner != signer {
            problems.append(.signerMismatch(report: claimedSigner, certificate: signer))
        }

        // Which product: the report's CPUID (v3+), else the certificate's productName.
        let certificateProduct = endorsement.productName.flatMap(Product.init(productName:))
        let product: Product
        switch (report.product, certificateProduct) {
        case (let fromReport?, let fromCertificate?):
            product = fromReport
            if fromReport != fromCertificate {
                problems.append(.productMismatch(report: fromReport, certificate: endorsement.productName ?? "?"))
            }
        case (let fromReport?, nil): product = fromReport
        case (nil, let fromCertificate?): product = fromCertificate
        case (nil, nil):
            throw VerificationFailure(problems: problems + [.productUnknown])
        }

        // The chain. A missing issuer is one problem among others: the bindings and the signature are still checked.
        let builtin = Self.builtinCertificates(for: product, signer: signer)
        let pool = candidates + extraRoots + builtin
        let intermediate = Self.issuer(of: endorsement, in: pool)
        let root = intermediate.flatMap { Self.issuer(of: $0, in: pool) }
        var rootFingerprint: [UInt8] = []
        if let intermediate, let root {
            rootFingerprint = Array(SHA256.hash(data: root.derRepresentation))
            if !trustedRoots.contains(rootFingerprint) {
                problems.append(
                    .untrustedRoot(subject: root.subject.description, fingerprint: Hex.encode(rootFingerprint)))
            }
            if root.issuer != root.subject { problems.append(.rootNotSelfIssued(root.subject.description)) }
            for (child, parent) in [(root, root), (intermediate, root), (endorsement, intermediate)] {
                problems += Self.linkProblems(child: child, parent: parent)
            }
            for certificate in [root, intermediate] where !Self.isRSA4096(certificate) {
                problems.append(.wrongKeyType(certificate.subject.description, expected: "RSA-4096"))
            }
        } else {
            let missing = intermediate?.issuer ?? endorsement.issuer
            problems.append(.issuerNotFound(missing.description))
        }
        let chain = [root, intermediate, endorsement].compactMap { $0 }
        for certificate in chain where !(certificate.notBefore <= instant && instant <= certificate.notAfter) {
            problems.append(
                .notValidAt(
                    certificate.subject.description, notBefore: certificate.notBefore,
                    notAfter: certificate.notAfter, at: instant))
        }

        // Bindings between the certificate and the report.
        if let levels = endorsement.tcbLevels {
            let reported = report.reportedTCB.levels(product.tcbLayout)
            for component in reported.components where levels[component] != reported[component] {
                problems.append(
                    .splMismatch(component, certificate: levels[component], reportedTCB: reported[component] ?? 0))
            }
        } else {
            problems.append(.missingSPLs)
        }
        if signer == .vcek, let hardwareID = endorsement.hardwareID {
            let length = product.chipIDLength
            let chipPrefix = Array(report.chipID.prefix(length))
            let tailIsZero = report.chipID.dropFirst(length).allSatisfy { $0 == 0 }
            if hardwareID != chipPrefix || !tailIsZero {
                problems.append(
                    .hardwareIDMismatch(certificate: Hex.encode(hardwareID), chipID: Hex.encode(report.chipID)))
            }
        }

        // The report signature.
        if !report.signature.hasCanonicalPadding {
            problems.append(.signatureNotCanonical)
        } else if claimedSigner != .unsigned {
            if let key = try? P384.Signing.PublicKey(derRepresentation: endorsement.subjectPublicKeyInfo) {
                let valid = (try? report.signature.p384()).map {
                    key.isValidSignature($0, for: SHA384.hash(data: report.signedBytes))
                }
                if valid != true { problems.append(.reportSignatureInvalid) }
            } else {
                problems.append(.wrongKeyType(endorsement.subject.description, expected: "ECDSA P-384"))
            }
        }

        guard problems.isEmpty else { throw VerificationFailure(problems: problems) }
        return VerifiedReport(
            report: report, product: product, signer: signer, chain: chain,
            rootIsAMD: amdRoots.contains(rootFingerprint))
    }

    /// AMD's certificates that may sign a `signer` certificate of `product`: ASK or ASVK, and the ARK.
    static func builtinCertificates(for product: Product, signer: KeyInfo.SigningKey) -> [AMDCertificate] {
        builtin[product]?[signer == .vlek ? 1 : 0] ?? []
    }

    /// AMD's certificates per product, parsed once: [ASK, ARK] and [ASVK, ARK].
    private static let builtin: [Product: [[AMDCertificate]]] = Dictionary(
        uniqueKeysWithValues: Product.allCases.map { product in
            let parse = { (pem: String) in try? AMDCertificate(pemEncoded: pem) }
            let ark = parse(product.builtinArkPEM)
            let chains = [product.builtinAskPEM, product.builtinAsvkPEM].map { [parse($0), ark].compactMap { $0 } }
            return (product, chains)
        })

    /// The candidate named as `certificate`'s issuer whose key verifies its signature, else the first one
    /// with the right name (so that the signature failure is reported against it).
    static func issuer(of certificate: AMDCertificate, in pool: [AMDCertificate]) -> AMDCertificate? {
        let named = pool.filter { $0.subject == certificate.issuer }
        return named.first { signatureIsValid(certificate, signedBy: $0) } ?? named.first
    }

    static func linkProblems(child: AMDCertificate, parent: AMDCertificate) -> [VerificationProblem] {
        var problems: [VerificationProblem] = []
        if child.issuer != parent.subject {
            problems.append(.issuerMismatch(child.subject.description, issuer: parent.subject.description))
        }
        if !child.isSignedWithAMDPSS {
            problems.append(.unsupportedCertificateAlgorithm(child.subject.description))
        } else if !signatureIsValid(child, signedBy: parent) {
            let parentIsAMD = Product.allCases.contains {
                $0.arkFingerprint == Array(SHA256.hash(data: parent.derRepresentation))
            }
            problems.append(
                parentIsAMD && child.subject != parent.subject
                    ? .notSignedByAMDRoot(child.subject.description, root: parent.subject.description)
                    : .certificateSignatureInvalid(child.subject.description, signer: parent.subject.description))
        }
        return problems
    }

    static func signatureIsValid(_ child: AMDCertificate, signedBy parent: AMDCertificate) -> Bool {
        guard child.isSignedWithAMDPSS, parent.publicKeyAlgorithm == AMDOID.rsaEncryption,
            let key = try? _RSA.Signing.PublicKey(derRepresentation: parent.subjectPublicKeyInfo)
        else { return false }
        let signature = _RSA.Signing.RSASignature(rawRepresentation: child.signature)
        return key.isValidSignature(signature, for: SHA384.hash(data: child.tbsBytes), padding: .PSS)
    }

    static func isRSA4096(_ certificate: AMDCertificate) -> Bool {
        guard certificate.publicKeyAlgorithm == AMDOID.rsaEncryption,
            let key = try? _RSA.Signing.PublicKey(derRepresentation: certificate.subjectPublicKeyInfo)
        else { return false }
        return key.keySizeInBits == 4096
    }
}

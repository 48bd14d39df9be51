public import FoundationEssentials
import SwiftASN1

/// An X.509 certificate of AMD's SEV chain (ARK, ASK, ASVK, VCEK, VLEK), read with SwiftASN1.
///
/// swift-certificates refuses RSASSA-PSS while parsing, so this reader takes the TBSCertificate bytes,
/// the SubjectPublicKeyInfo, the signature and AMD's extensions (1.3.6.1.4.1.3704.1) itself. It is lenient
/// where AMD's certificates break RFC 5280 (serial number 0) and strict about structure.
public struct AMDCertificate: Hashable, Sendable {
    public let derRepresentation: [UInt8]
    /// The signed TBSCertificate, as encoded.
    public let tbsBytes: [UInt8]
    /// The serial number's big-endian magnitude bytes (AMD's VCEK/VLEK use 0).
    public let serialNumber: [UInt8]
    /// The outer signatureAlgorithm AlgorithmIdentifier, as encoded.
    public let signatureAlgorithm: [UInt8]
    /// The TBS `signature` AlgorithmIdentifier, as encoded (must equal the outer one).
    public let tbsSignatureAlgorithm: [UInt8]
    public let issuer: DistinguishedName
    public let subject: DistinguishedName
    public let notBefore: Date
    public let notAfter: Date
    /// The SubjectPublicKeyInfo, as encoded.
    public let subjectPublicKeyInfo: [UInt8]
    /// The SPKI algorithm OID in dotted form (`1.2.840.113549.1.1.1` RSA, `1.2.840.10045.2.1` EC).
    public let publicKeyAlgorithm: String
    /// The EC curve OID for EC keys (`1.3.132.0.34` for P-384).
    public let publicKeyCurve: String?
    public let signature: [UInt8]
    public let extensions: [Extension]

    /// An X.509 extension: OID, criticality and the extnValue OCTET STRING contents.
    public struct Extension: Hashable, Sendable {
        public var oid: String
        public var critical: Bool
        public var value: [UInt8]
    }

    /// A Name: its encoding (compared byte for byte when chaining) and its common name for messages.
    public struct DistinguishedName: Hashable, Sendable, CustomStringConvertible {
        public let derRepresentation: [UInt8]
        public let commonName: String?
        public var description: String { commonName.map { "CN=\($0)" } ?? "(no common name)" }
    }

    public init(derEncoded der: [UInt8]) throws(CertificateError) {
        do {
            self = try Self.parse(der)
        } catch let error as CertificateError {
            throw error
        } catch {
            throw .malformed(String(describing: error))
        }
    }

    /// Reads the first certificate of a PEM text.
    public init(pemEncoded pem: String) throws(CertificateError) {
        let documents: [PEMDocument]
        do { documents = try PEMDocument.parseMultiple(pemString: pem) } catch {
            throw .malformed("not a PEM document: \(error)")
        }
        guard let first = documents.first(where: { $0.discriminator == "CERTIFICATE" }) else {
            throw .malformed("the PEM text holds no CERTIFICATE block")
        }
        try self.init(derEncoded: first.derBytes)
    }

    /// Every certificate of a PEM text, in order (a KDS `cert_chain` is ASK or ASVK, then ARK).
    public static func all(pemEncoded pem: String) throws(CertificateError) -> [AMDCertificate] {
        let documents: [PEMDocument]
        do { documents = try PEMDocument.parseMultiple(pemString: pem) } catch {
            throw .malformed("not a PEM document: \(error)")
        }
        var certificates: [AMDCertificate] = []
        for document in documents where document.discriminator == "CERTIFICATE" {
            certificates.append(try AMDCertificate(derEncoded: document.derBytes))
        }
        guard !certificates.isEmpty else { throw .malformed("the PEM text holds no CERTIFICATE block") }
        return certificates
    }

    /// Reads DER, or PEM when the bytes start with `-----BEGIN`.
    public init(bytes: [UInt8]) throws(CertificateError) {
        if bytes.starts(with: Array("-----BEGIN".utf8)) {
            try self.init(pemEncoded: String(decoding: bytes, as: UTF8.self))
        } else {
            try self.init(derEncoded: bytes)
        }
    }

    /// The certificate as PEM text.
    public var pemRepresentation: String {
        PEMDocument(type: "CERTIFICATE", derBytes: derRepresentation).pemString + "\n"
    }

    private static func parse(_ der: [UInt8]) throws -> AMDCertificate {
        let root = try DER.parse(der)
        guard root.encodedBytes.count == der.count else {
            throw CertificateError.malformed("trailing bytes after the certificate")
        }
        return try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbsNode = nodes.next(), let algorithmNode = nodes.next(), let signatureNode = nodes.next()
            else { throw CertificateError.malformed("a certificate needs TBSCertificate, algorithm and signature") }
            let bitString = try ASN1BitString(derEncoded: signatureNode)
            guard bitString.paddingBits == 0 else { throw CertificateError.malformed("signature has padding bits") }
            let tbs = try TBS(tbsNode)
            return AMDCertificate(
                derRepresentation: der, tbsBytes: Array(tbsNode.encodedBytes), serialNumber: tbs.serial,
                signatureAlgorithm: Array(algorithmNode.encodedBytes), tbsSignatureAlgorithm: tbs.algorithm,
                issuer: tbs.issuer, subject: tbs.subject, notBefore: tbs.notBefore, notAfter: tbs.notAfter,
                subjectPublicKeyInfo: tbs.spki, publicKeyAlgorithm: tbs.keyAlgorithm, publicKeyCurve: tbs.curve,
                signature: Array(bitString.bytes), extensions: tbs.extensions)
        }
    }

    private init(
        derRepresentation: [UInt8], tbsBytes: [UInt8], serialNumber: [UInt8], signatureAlgorithm: [UInt8],
        tbsSignatureAlgorithm: [UInt8], issuer: DistinguishedName, subject: DistinguishedName, notBefore: Date,
        notAfter: Date, subjectPublicKeyInfo: [UInt8], publicKeyAlgorithm: String, publicKeyCurve: String?,
        signature: [UInt8], extensions: [Extension]
    ) {
        self.derRepresentation = derRepresentation
        self.tbsBytes = tbsBytes
        self.serialNumber = serialNumber
        self.signatureAlgorithm = signatureAlgorithm
        self.tbsSignatureAlgorithm = tbsSignatureAlgorithm
        self.issuer = issuer
        self.subject = subject
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.subjectPublicKeyInfo = subjectPublicKeyInfo
        self.publicKeyAlgorithm = publicKeyAlgorithm
        self.publicKeyCurve = publicKeyCurve
        self.signature = signature
        self.extensions = extensions
    }

    /// The parts of a TBSCertificate this reader keeps.
    private struct TBS {
        var serial: [UInt8] = []
        var algorithm: [UInt8] = []
        var issuer: DistinguishedName
        var subject: DistinguishedName
        var notBefore: Date
        var notAfter: Date
        var spki: [UInt8]
        var keyAlgorithm: String
        var curve: String?
        var extensions: [Extension] = []

        init(_ node: ASN1Node) throws {
            (serial, algorithm, issuer, notBefore, notAfter, subject, spki, keyAlgorithm, curve, extensions) =
                try DER.sequence(node, identifier: .sequence) { nodes in
                    let version = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                        try Int(derEncoded: $0)
                    }
                    guard version == 2 else { throw CertificateError.malformed("not an X.509 v3 certificate") }
                    let serial = try ArraySlice<UInt8>(derEncoded: &nodes)
                    guard let algorithm = nodes.next(), let issuer = nodes.next(), let validity = nodes.next(),
                        let subject = nodes.next(), let spki = nodes.next()
                    else { throw CertificateError.malformed("TBSCertificate is missing fields") }
                    let (notBefore, notAfter) = try DER.sequence(validity, identifier: .sequence) { times in
                        guard let first = times.next(), let second = times.next() else {
                            throw CertificateError.malformed("validity needs two times")
                        }
                        return (try CertificateTime.date(first), try CertificateTime.date(second))
                    }
                    let (keyAlgorithm, curve) = try Self.keyAlgorithm(spki)
                    var extensions: [Extension] = []
                    while let next = nodes.next() {
                        guard next.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) else {
                            continue  // issuerUniqueID / subjectUniqueID: not used by AMD, ignored
                        }
                        extensions = try DER.explicitlyTagged(next, tagNumber: 3, tagClass: .contextSpecific) {
                            try DER.sequence($0, identifier: .sequence) { list in
                                var found: [Extension] = []
                                while let item = list.next() { found.append(try Self.extensionValue(item)) }
                                return found
                            }
                        }
                    }
                    return (
                        Array(serial.drop(while: { $0 == 0 })), Array(algorithm.encodedBytes),
                        try Self.name(issuer), notBefore, notAfter, try Self.name(subject),
                        Array(spki.encodedBytes), keyAlgorithm, curve, extensions
                    )
                }
        }

        static func keyAlgorithm(_ spki: ASN1Node) throws -> (String, String?) {
            try DER.sequence(spki, identifier: .sequence) { nodes in
                guard let algorithm = nodes.next(), nodes.next() != nil else {
                    throw CertificateError.malformed("SubjectPublicKeyInfo is incomplete")
                }
                return try DER.sequence(algorithm, identifier: .sequence) { parts in
                    let oid = try ASN1ObjectIdentifier(derEncoded: &parts)
                    var curve: String?
                    if let parameter = parts.next(), parameter.identifier == .objectIdentifier {
                        curve = String(describing: try ASN1ObjectIdentifier(derEncoded: parameter))
                    }
                    return (String(describing: oid), curve)
                }
            }
        }

        static func extensionValue(_ node: ASN1Node) throws -> Extension {
            try DER.sequence(node, identifier: .sequence) { parts in
                let oid = try ASN1ObjectIdentifier(derEncoded: &parts)
                var critical = false
                var valueNode = parts.next()
                if let node = valueNode, node.identifier == .boolean {
                    critical = try Bool(derEncoded: node)
                    valueNode = parts.next()
                }
                guard let valueNode else { throw CertificateError.malformed("extension \(oid) has no value") }
                let value = try ASN1OctetString(derEncoded: valueNode)
                return Extension(oid: String(describing: oid), critical: critical, value: Array(value.bytes))
            }
        }

        static func name(_ node: ASN1Node) throws -> DistinguishedName {
            var commonName: String?
            try DER.sequence(node, identifier: .sequence) { sets in
                while let set = sets.next() {
                    guard case .constructed(let attributes) = set.content else {
                        throw CertificateError.malformed("a name component is not a SET")
                    }
                    for attribute in attributes {
                        try DER.sequence(attribute, identifier: .sequence) { pair in
                            let oid = try ASN1ObjectIdentifier(derEncoded: &pair)
                            guard let value = pair.next() else { throw CertificateError.malformed("empty attribute") }
                            if oid == [2, 5, 4, 3], case .primitive(let bytes) = value.content {
                                commonName = String(decoding: bytes, as: UTF8.self)
                            }
                        }
                    }
                }
            }
            return DistinguishedName(derRepresentation: Array(node.encodedBytes), commonName: commonName)
        }
    }
}

/// Why a certificate could not be read.
public enum CertificateError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let detail): "is not a readable X.509 certificate: \(detail)"
        }
    }
}

/// UTCTime / GeneralizedTime to `Date`, without a calendar.
enum CertificateTime {
    static func date(_ node: ASN1Node) throws -> Date {
        let fields: (Int, Int, Int, Int, Int, Int)
        switch node.identifier {
        case .utcTime:
            let time = try UTCTime(derEncoded: node)
            fields = (time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
        case .generalizedTime:
            let time = try GeneralizedTime(derEncoded: node)
            fields = (time.year, time.month, time.day, time.hours, time.minutes, time.seconds)
        default:
            throw CertificateError.malformed("a validity time is neither UTCTime nor GeneralizedTime")
        }
        let days = CivilDate(year: fields.0, month: fields.1, day: fields.2).daysSinceEpoch
        let seconds = days * 86_400 + fields.3 * 3600 + fields.4 * 60 + fields.5
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

}

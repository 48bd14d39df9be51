public import SNP
public import SwiftASN1
public import X509

/// What vhsmd proves itself with: a report whose REPORT_DATA is `AttestedTLSBinding.reportData(nonce:spkiSHA256:)`
/// and the certificates that endorse it (VCEK or VLEK first, then ASK or ASVK, then ARK; any may be missing).
///
/// Two carriers, one content:
/// - `GET /v1/sys/attestation?nonce=HEX` answers it as JSON (`data.format`, `data.nonce`, `data.report`,
///   `data.certificates`, `data.spki_sha256`);
/// - vhsmd's self-signed certificate carries it, over an all-zero nonce, in the non-critical X.509 extension `oid`,
///   whose value is the DER of
///
///       VHSMAttestationEvidence ::= SEQUENCE {
///           format        UTF8String,            -- "vhsm-attested-tls-v1"
///           nonce         OCTET STRING,          -- 32 bytes (all zero in a certificate)
///           report        OCTET STRING,          -- the raw attestation report (1184 bytes)
///           certificates  SEQUENCE OF OCTET STRING  -- DER certificates, VCEK/VLEK first
///       }
public struct AttestationEvidence: Hashable, Sendable {
    /// `1.3.9903.1.1`: vhsm's private arc (unregistered, in the style of Constellation's `1.3.9900` and Contrast's
    /// `1.3.9901`), evidence format version 1. A new format gets a new OID; this one is never reused.
    public static let oid: ASN1ObjectIdentifier = [1, 3, 9903, 1, 1]
    public static let format = AttestedTLSBinding.label
    /// Parsing limits for evidence read from a peer: at most 8 certificates of at most 16 KiB each.
    public static let maximumCertificates = 8
    public static let maximumCertificateBytes = 16 * 1024

    public var format: String
    public var nonce: [UInt8]
    public var report: [UInt8]
    public var certificates: [[UInt8]]

    public init(
        format: String = AttestationEvidence.format, nonce: [UInt8], report: [UInt8], certificates: [[UInt8]]
    ) {
        self.format = format
        self.nonce = nonce
        self.report = report
        self.certificates = certificates
    }

    /// The certificate chain of an extended report's table, in evidence order (VCEK or VLEK for `signer`, ASK or
    /// ASVK (the table's ASK entry), ARK); absent entries are skipped.
    public static func certificates(from table: CertificateTable, signer: KeyInfo.SigningKey?) -> [[UInt8]] {
        let endorsement: CertificateTable.Kind = signer == .vlek ? .vlek : .vcek
        return [table[endorsement], table[.ask], table[.ark]].compactMap { $0 }
    }

    /// The DER of the extension's value.
    public func derEncoded() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }

    /// Parses an extension value; anything beyond the limits, or trailing bytes, is refused.
    public init(derEncoded bytes: [UInt8]) throws {
        self = try AttestationEvidence(derEncoded: try DER.parse(bytes))
    }

    /// The non-critical certificate extension carrying this evidence.
    public func certificateExtension() throws -> Certificate.Extension {
        Certificate.Extension(oid: Self.oid, critical: false, value: ArraySlice(try derEncoded()))
    }

    /// The evidence in `certificate`'s extension; nil when it has none.
    public init?(certificate: Certificate) throws {
        guard let found = certificate.extensions.first(where: { $0.oid == Self.oid }) else { return nil }
        try self.init(derEncoded: Array(found.value))
    }
}

extension AttestationEvidence: DERImplicitlyTaggable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            let format = try ASN1UTF8String(derEncoded: &nodes)
            let nonce = try ASN1OctetString(derEncoded: &nodes)
            let report = try ASN1OctetString(derEncoded: &nodes)
            let certificates = try DER.sequence(of: ASN1OctetString.self, identifier: .sequence, nodes: &nodes)
            guard certificates.count <= Self.maximumCertificates,
                certificates.allSatisfy({ $0.bytes.count <= Self.maximumCertificateBytes })
            else {
                throw ASN1Error.invalidASN1Object(
                    reason: "more than \(Self.maximumCertificates) certificates, or one over "
                        + "\(Self.maximumCertificateBytes) bytes")
            }
            return AttestationEvidence(
                format: String(format), nonce: Array(nonce.bytes), report: Array(report.bytes),
                certificates: certificates.map { Array($0.bytes) })
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(ASN1UTF8String(format))
            try coder.serialize(ASN1OctetString(contentBytes: nonce[...]))
            try coder.serialize(ASN1OctetString(contentBytes: report[...]))
            try coder.serializeSequenceOf(certificates.map { ASN1OctetString(contentBytes: $0[...]) })
        }
    }
}

extension Certificate.PublicKey {
    /// The DER SubjectPublicKeyInfo (what the binding hashes).
    public var subjectPublicKeyInfoDER: [UInt8] {
        var serializer = DER.Serializer()
        // Serialising a public key that was parsed or made by swift-certificates cannot fail.
        try! serializer.serialize(self)
        return serializer.serializedBytes
    }
}

extension AttestedTLSBinding {
    /// The DER SubjectPublicKeyInfo exactly as it is encoded in the certificate `der` (the bytes a third-party
    /// client hashes), found with SwiftASN1's parser: the 6th element of tbsCertificate, or the 7th after an explicit
    /// version. Not re-encoded, so an unusual but valid encoding is hashed as served.
    public static func subjectPublicKeyInfo(certificate der: [UInt8]) throws -> [UInt8] {
        let root = try DER.parse(der)
        guard case .constructed(let certificate) = root.content, let tbs = certificate.first(where: { _ in true }),
            case .constructed(let fields) = tbs.content
        else { throw ASN1Error.invalidASN1Object(reason: "not an X.509 certificate") }
        let elements = Array(fields)
        let version = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        let index = elements.first?.identifier == version ? 6 : 5
        guard elements.count > index, elements[index].identifier == .sequence else {
            throw ASN1Error.invalidASN1Object(reason: "tbsCertificate has no SubjectPublicKeyInfo")
        }
        return Array(elements[index].encodedBytes)
    }
}

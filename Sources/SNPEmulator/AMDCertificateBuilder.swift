public import Crypto
public import CryptoExtras
public import FoundationEssentials
public import SNP
import SwiftASN1

/// Mints an AMD-shaped test PKI: ARK → ASK → VCEK, encoded like AMD's own certificates.
///
/// The shape follows the real certificates in `shared/testdata/snp`: X.509 v3; AMD's RSASSA-PSS
/// AlgorithmIdentifier (SHA-384, MGF1-SHA-384, salt 48) in the TBS and the outer signatureAlgorithm, with the
/// trailer field written out on ARK and ASK and left to its default on the VCEK, as AMD's KDS issues them today;
/// names `OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices, CN=…` with UTF8String everywhere
/// except the PrintableString country; UTCTime validity (GeneralizedTime only from 2050 on, as RFC 5280 requires);
/// and AMD's extension sets in AMD's order, byte for byte where they do not depend on the key.
///
/// swift-certificates cannot build a PSS-signed certificate, so the TBSCertificate is serialised here with
/// SwiftASN1 and signed with `_RSA.Signing.PrivateKey.signature(for:padding: .PSS)`, whose salt is the digest
/// length (48). Each result is read back with `AMDCertificate(derEncoded:)`.
public enum AMDCertificateBuilder {
    /// Why a certificate could not be built.
    public enum BuildError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The hardware ID must be the 64-byte CHIP_ID (Turin: its first 8 bytes, or the whole 64-byte field).
        case hardwareIDLength(product: Product, count: Int)
        /// Turin VCEKs carry fmcSPL, so Turin levels need `fmc`; Milan and Genoa have no FMC component.
        case fmcLevel(product: Product, present: Bool)

        public var description: String {
            switch self {
            case .hardwareIDLength(let product, let count):
                "a \(product) hwID needs \(product == .turin ? "8 or 64" : "64") bytes, got \(count)"
            case .fmcLevel(let product, let present):
                present
                    ? "\(product) has no FMC security patch level, but the levels carry one"
                    : "\(product) VCEKs carry fmcSPL, but the levels have no FMC level"
            }
        }
    }

    /// Self-signed ARK ("ARK-<Product>") with an RSA-4096 key, RSASSA-PSS SHA-384 salt 48, serial per product,
    /// 25 years.
    public static func root(product: Product, key: _RSA.Signing.PrivateKey, notBefore: Date) throws -> AMDCertificate {
        let spki = Array(key.publicKey.derRepresentation)
        let name = try Name.amd(commonName: "ARK-\(product.name)")
        return try certificate(
            serial: product.arkSerial, algorithm: AMDOID.rsassaPSSSHA384AlgorithmIdentifier, issuer: name,
            validity: Validity(from: notBefore, years: 25), subject: name, spki: spki,
            extensions: [
                X509Extension(oid: OID.keyUsage, critical: true, value: KeyUsage.certSignCRLSign),
                X509Extension(oid: OID.subjectKeyIdentifier, value: try subjectKeyIdentifier(spki)),
                X509Extension(oid: OID.basicConstraints, critical: true, value: BasicConstraints.ca),
                X509Extension(oid: OID.crlDistributionPoints, value: try crlDistributionPoints(product)),
            ],
            signedBy: key)
    }

    /// ASK ("SEV-<Product>") signed by the ARK key.
    public static func intermediate(
        product: Product, key: _RSA.Signing.PublicKey, issuerKey: _RSA.Signing.PrivateKey, notBefore: Date
    ) throws -> AMDCertificate {
        let spki = Array(key.derRepresentation)
        return try certificate(
            serial: product.askSerial, algorithm: AMDOID.rsassaPSSSHA384AlgorithmIdentifier,
            issuer: try Name.amd(commonName: "ARK-\(product.name)"), validity: Validity(from: notBefore, years: 25),
            subject: try Name.amd(commonName: "SEV-\(product.name)"), spki: spki,
            extensions: [
                X509Extension(oid: OID.subjectKeyIdentifier, value: try subjectKeyIdentifier(spki)),
                X509Extension(
                    oid: OID.authorityKeyIdentifier,
                    value: try authorityKeyIdentifier(Array(issuerKey.publicKey.derRepresentation))),
                X509Extension(oid: OID.basicConstraints, critical: true, value: BasicConstraints.caPathLengthZero),
                X509Extension(oid: OID.keyUsage, critical: true, value: KeyUsage.certSign),
                X509Extension(oid: OID.crlDistributionPoints, value: try crlDistributionPoints(product)),
            ],
            signedBy: issuerKey)
    }

    /// VCEK ("SEV-VCEK"): P-384 public key, serial 0, AMD extensions for `tcb` (levels incl. fmc for Turin) and
    /// hwID = chipID prefix (64 bytes, Turin 8), signed by the ASK key, valid 7 years.
    ///
    /// `hardwareID` is the report's 64-byte CHIP_ID; for Turin its first 8 bytes alone are accepted too. `tcb` must
    /// carry an FMC level exactly when the product is Turin.
    public static func vcek(
        product: Product, key: P384.Signing.PublicKey, tcb: TCBLevels, hardwareID: [UInt8],
        issuerKey: _RSA.Signing.PrivateKey, notBefore: Date
    ) throws -> AMDCertificate {
        let hwID: [UInt8]
        switch (product, hardwareID.count) {
        case (.turin, 8), (.turin, 64): hwID = Array(hardwareID.prefix(8))
        case (.milan, 64), (.genoa, 64): hwID = hardwareID
        default: throw BuildError.hardwareIDLength(product: product, count: hardwareID.count)
        }
        guard (tcb.fmc != nil) == (product.tcbLayout == .turin) else {
            throw BuildError.fmcLevel(product: product, present: tcb.fmc != nil)
        }
        return try certificate(
            serial: 0, algorithm: vcekSignatureAlgorithm, issuer: try Name.amd(commonName: "SEV-\(product.name)"),
            validity: Validity(from: notBefore, years: 7), subject: try Name.amd(commonName: "SEV-VCEK"),
            spki: Array(key.derRepresentation),
            extensions: try vcekExtensions(product: product, tcb: tcb, hwID: hwID), signedBy: issuerKey)
    }

    /// `RSASSA-PSS { SHA-384, MGF1-SHA-384, salt 48 }` without the DEFAULT trailer field: AMD's VCEKs (Milan from
    /// 2024 on, Genoa, Turin, and the VLEK alike) are encoded so; ARK, ASK and older Milan VCEKs spell out `[3] 1`
    /// (`AMDOID.rsassaPSSSHA384AlgorithmIdentifier`).
    static let vcekSignatureAlgorithm: [UInt8] = [
        0x30, 0x41, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A, 0x30, 0x34, 0xA0, 0x0F, 0x30,
        0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xA1, 0x1C, 0x30, 0x1A,
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48,
        0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xA2, 0x03, 0x02, 0x01, 0x30,
    ]

    // MARK: - AMD's VCEK extensions

    /// AMD's VCEK extensions in AMD's order. Milan/Genoa (structVersion 0): 1, 2, 3.1, 3.2, 3.4–3.7, 3.3, 3.8, 4.
    /// Turin (structVersion 1): 1, 2, 3.9, 3.1, 3.2, 3.3, 3.5–3.7, 3.8, 4 (no 3.4; hwID 8 bytes).
    static func vcekExtensions(product: Product, tcb: TCBLevels, hwID: [UInt8]) throws -> [X509Extension] {
        func integer(_ oid: String, _ value: UInt8) throws -> X509Extension {
            X509Extension(oid: oid, value: try encode(Int(value)))
        }
        func reserved(_ index: Int) throws -> X509Extension { try integer("1.3.6.1.4.1.3704.1.3.\(index)", 0) }
        let isTurin = product.tcbLayout == .turin
        var extensions = [
            try integer(AMDOID.structVersion, isTurin ? 1 : 0),
            X509Extension(oid: AMDOID.productName, value: try encode(ASN1IA5String(product.vcekName))),
        ]
        if isTurin {
            extensions += [
                try integer(AMDOID.fmcSPL, tcb.fmc ?? 0),
                try integer(AMDOID.blSPL, tcb.bootLoader),
                try integer(AMDOID.teeSPL, tcb.tee),
                try integer(AMDOID.snpSPL, tcb.snp),
                try reserved(5), try reserved(6), try reserved(7),
                try integer(AMDOID.ucodeSPL, tcb.microcode),
            ]
        } else {
            extensions += [
                try integer(AMDOID.blSPL, tcb.bootLoader),
                try integer(AMDOID.teeSPL, tcb.tee),
                try reserved(4), try reserved(5), try reserved(6), try reserved(7),
                try integer(AMDOID.snpSPL, tcb.snp),
                try integer(AMDOID.ucodeSPL, tcb.microcode),
            ]
        }
        // AMD puts the raw CHIP_ID bytes in extnValue, not a DER OCTET STRING inside it.
        extensions.append(X509Extension(oid: AMDOID.hwID, value: hwID))
        return extensions
    }

    // MARK: - Certificate

    struct X509Extension {
        var oid: String
        var critical = false
        /// The extnValue OCTET STRING contents.
        var value: [UInt8]
    }

    /// Serialises the TBSCertificate, signs it with RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48), wraps both with
    /// `algorithm` and reads the result back.
    private static func certificate(
        serial: Int, algorithm: [UInt8], issuer: [UInt8], validity: Validity, subject: [UInt8], spki: [UInt8],
        extensions: [X509Extension], signedBy key: _RSA.Signing.PrivateKey
    ) throws -> AMDCertificate {
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { fields in
            try fields.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { try $0.serialize(2) }
            try fields.serialize(serial)
            fields.serializeRawBytes(algorithm)
            fields.serializeRawBytes(issuer)
            try validity.serialize(into: &fields)
            fields.serializeRawBytes(subject)
            fields.serializeRawBytes(spki)
            try fields.serialize(explicitlyTaggedWithTagNumber: 3, tagClass: .contextSpecific) { wrapper in
                try wrapper.appendConstructedNode(identifier: .sequence) { list in
                    for item in extensions {
                        try list.appendConstructedNode(identifier: .sequence) { node in
                            try node.serialize(try ASN1ObjectIdentifier(dotRepresentation: item.oid))
                            if item.critical { try node.serialize(true) }
                            try node.serialize(ASN1OctetString(contentBytes: item.value[...]))
                        }
                    }
                }
            }
        }
        let signature = try key.signature(for: SHA384.hash(data: tbs.serializedBytes), padding: .PSS)
        var certificate = DER.Serializer()
        try certificate.appendConstructedNode(identifier: .sequence) { parts in
            parts.serializeRawBytes(tbs.serializedBytes)
            parts.serializeRawBytes(algorithm)
            try parts.serialize(ASN1BitString(bytes: Array(signature.rawRepresentation)[...]))
        }
        return try AMDCertificate(derEncoded: certificate.serializedBytes)
    }

    private static func encode(_ value: some DERSerializable) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(value)
        return serializer.serializedBytes
    }

    // MARK: - CA extensions, byte for byte as AMD encodes them

    private enum OID {
        static let subjectKeyIdentifier = "2.5.29.14"
        static let keyUsage = "2.5.29.15"
        static let basicConstraints = "2.5.29.19"
        static let crlDistributionPoints = "2.5.29.31"
        static let authorityKeyIdentifier = "2.5.29.35"
    }

    private enum KeyUsage {
        /// ARK: keyCertSign + cRLSign (`03 02 01 06`).
        static let certSignCRLSign: [UInt8] = [0x03, 0x02, 0x01, 0x06]
        /// ASK: keyCertSign. AMD writes one unused bit (`03 02 01 04`) where strict DER would say two; copied as is.
        static let certSign: [UInt8] = [0x03, 0x02, 0x01, 0x04]
    }

    private enum BasicConstraints {
        /// `SEQUENCE { cA TRUE }`
        static let ca: [UInt8] = [0x30, 0x03, 0x01, 0x01, 0xFF]
        /// `SEQUENCE { cA TRUE, pathLenConstraint 0 }`
        static let caPathLengthZero: [UInt8] = [0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x00]
    }

    /// RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents (AMD's ARK/ASK identifiers match it).
    private static func keyIdentifier(_ spki: [UInt8]) throws -> [UInt8] {
        let publicKey = try DER.sequence(try DER.parse(spki), identifier: .sequence) { nodes in
            guard nodes.next() != nil, let key = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "SubjectPublicKeyInfo is incomplete")
            }
            return try ASN1BitString(derEncoded: key)
        }
        return Array(Insecure.SHA1.hash(data: Array(publicKey.bytes)))
    }

    /// `OCTET STRING keyIdentifier`
    private static func subjectKeyIdentifier(_ spki: [UInt8]) throws -> [UInt8] {
        try encode(ASN1OctetString(contentBytes: try keyIdentifier(spki)[...]))
    }

    /// `SEQUENCE { [0] keyIdentifier }`
    private static func authorityKeyIdentifier(_ issuerSPKI: [UInt8]) throws -> [UInt8] {
        let identifier = try keyIdentifier(issuerSPKI)
        var serializer = DER.Serializer()
        serializer.appendConstructedNode(identifier: .sequence) { sequence in
            sequence.appendPrimitiveNode(identifier: contextTag(0)) { $0.append(contentsOf: identifier) }
        }
        return serializer.serializedBytes
    }

    /// `SEQUENCE { DistributionPoint { [0] { [0] fullName { [6] URI } } } }` naming the KDS CRL.
    private static func crlDistributionPoints(_ product: Product) throws -> [UInt8] {
        let uri = Array("https://kdsintf.amd.com/vcek/v1/\(product.name)/crl".utf8)
        var serializer = DER.Serializer()
        serializer.appendConstructedNode(identifier: .sequence) { points in
            points.appendConstructedNode(identifier: .sequence) { point in
                point.appendConstructedNode(identifier: contextTag(0)) { distributionPoint in
                    distributionPoint.appendConstructedNode(identifier: contextTag(0)) { fullName in
                        fullName.appendPrimitiveNode(identifier: contextTag(6)) { $0.append(contentsOf: uri) }
                    }
                }
            }
        }
        return serializer.serializedBytes
    }

    private static func contextTag(_ number: UInt) -> ASN1Identifier {
        ASN1Identifier(tagWithNumber: number, tagClass: .contextSpecific)
    }

    // MARK: - Names

    private enum Name {
        /// `OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices, CN=<commonName>`, one attribute
        /// per RDN, UTF8String except the PrintableString country, as in every AMD certificate.
        static func amd(commonName: String) throws -> [UInt8] {
            let attributes: [(oid: ASN1ObjectIdentifier, value: [UInt8])] = [
                ([2, 5, 4, 11], try encode(ASN1UTF8String("Engineering"))),
                ([2, 5, 4, 6], try encode(ASN1PrintableString("US"))),
                ([2, 5, 4, 7], try encode(ASN1UTF8String("Santa Clara"))),
                ([2, 5, 4, 8], try encode(ASN1UTF8String("CA"))),
                ([2, 5, 4, 10], try encode(ASN1UTF8String("Advanced Micro Devices"))),
                ([2, 5, 4, 3], try encode(ASN1UTF8String(commonName))),
            ]
            var serializer = DER.Serializer()
            try serializer.appendConstructedNode(identifier: .sequence) { name in
                for attribute in attributes {
                    try name.appendConstructedNode(identifier: .set) { set in
                        try set.appendConstructedNode(identifier: .sequence) { pair in
                            try pair.serialize(attribute.oid)
                            pair.serializeRawBytes(attribute.value)
                        }
                    }
                }
            }
            return serializer.serializedBytes
        }
    }

    // MARK: - Validity

    /// notBefore (whole seconds) and notAfter = the same civil time `years` later (29 February → 28 February).
    private struct Validity {
        var notBefore: Civil
        var notAfter: Civil

        init(from date: Date, years: Int) {
            notBefore = Civil(date)
            notAfter = notBefore
            notAfter.year += years
            if notAfter.month == 2, notAfter.day == 29, !Civil.isLeap(notAfter.year) { notAfter.day = 28 }
        }

        func serialize(into coder: inout DER.Serializer) throws {
            try coder.appendConstructedNode(identifier: .sequence) { validity in
                try notBefore.serialize(into: &validity)
                try notAfter.serialize(into: &validity)
            }
        }
    }

    /// A UTC civil time without a calendar (Howard Hinnant's `civil_from_days`).
    private struct Civil {
        var year: Int
        var month: Int
        var day: Int
        var hours: Int
        var minutes: Int
        var seconds: Int

        init(_ date: Date) {
            let (civil, secondOfDay) = CivilDate.split(unixSeconds: Int64(date.timeIntervalSince1970.rounded(.down)))
            year = civil.year
            month = civil.month
            day = civil.day
            hours = secondOfDay / 3600
            minutes = secondOfDay % 3600 / 60
            seconds = secondOfDay % 60
        }

        static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

        /// UTCTime for 1950–2049 (AMD's choice), GeneralizedTime outside, as RFC 5280 §4.1.2.5 requires.
        func serialize(into coder: inout DER.Serializer) throws {
            if (1950..<2050).contains(year) {
                try coder.serialize(
                    try UTCTime(year: year, month: month, day: day, hours: hours, minutes: minutes, seconds: seconds))
            } else {
                try coder.serialize(
                    try GeneralizedTime(
                        year: year, month: month, day: day, hours: hours, minutes: minutes, seconds: seconds,
                        fractionalSeconds: 0))
            }
        }
    }
}

extension Product {
    /// The ARK's serial number: 0x10000 Milan, 0x20000 Genoa, 0x30000 Turin.
    fileprivate var arkSerial: Int {
        switch self {
        case .milan: 0x10000
        case .genoa: 0x20000
        case .turin: 0x30000
        }
    }

    /// The ASK's serial number: 0x10001 Milan, 0x20002 Genoa, 0x30001 Turin.
    fileprivate var askSerial: Int {
        switch self {
        case .milan: 0x10001
        case .genoa: 0x20002
        case .turin: 0x30001
        }
    }

    /// The VCEK productName: `Milan-B0` (AMD's name on B0 and B1 chips), `Genoa`, `Turin`.
    fileprivate var vcekName: String {
        switch self {
        case .milan: "Milan-B0"
        case .genoa: "Genoa"
        case .turin: "Turin"
        }
    }
}

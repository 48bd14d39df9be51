import Crypto
import CryptoExtras
import Foundation
import SNP
import SNPEmulator
import Testing

/// The emulator's AMD-shaped PKI: every link verifies with AMD's RSASSA-PSS parameters, the SNP reader sees the
/// fields it expects, and the certificates have the shape of AMD's real ones in `../shared/testdata/snp`.
struct CertificateBuilderTests {
    /// RSA-4096 key generation is slow: one ARK key and one ASK key for all tests.
    enum Keys {
        static let ark = try! _RSA.Signing.PrivateKey(keySize: .bits4096)
        static let ask = try! _RSA.Signing.PrivateKey(keySize: .bits4096)
        static let vcek = P384.Signing.PrivateKey()
    }

    /// 2024-02-29T12:34:56.789Z: a leap day, with a fraction of a second to drop.
    static let leapDay = Date(timeIntervalSince1970: 1_709_210_096.789)
    /// 2020-10-22T17:23:05Z, the real Milan ARK's notBefore: ARK and ASK stay inside UTCTime's range.
    static let milanARKDate = Date(timeIntervalSince1970: 1_603_387_385)

    static func levels(_ product: Product) -> TCBLevels {
        product == .turin
            ? TCBLevels(fmc: 4, bootLoader: 1, tee: 2, snp: 3, microcode: 200)
            : TCBLevels(bootLoader: 3, tee: 1, snp: 8, microcode: 219)
    }

    static func chipID(_ product: Product) -> [UInt8] {
        let significant = (0..<product.chipIDLength).map { UInt8(truncatingIfNeeded: 0xA5 &+ $0 &* 7) }
        return significant + [UInt8](repeating: 0, count: 64 - significant.count)
    }

    struct Chain {
        var ark: AMDCertificate
        var ask: AMDCertificate
        var vcek: AMDCertificate
    }

    static func chain(_ product: Product, notBefore: Date = leapDay) throws -> Chain {
        let ark = try AMDCertificateBuilder.root(product: product, key: Keys.ark, notBefore: notBefore)
        let ask = try AMDCertificateBuilder.intermediate(
            product: product, key: Keys.ask.publicKey, issuerKey: Keys.ark, notBefore: notBefore)
        let vcek = try AMDCertificateBuilder.vcek(
            product: product, key: Keys.vcek.publicKey, tcb: levels(product), hardwareID: chipID(product),
            issuerKey: Keys.ask, notBefore: notBefore)
        return Chain(ark: ark, ask: ask, vcek: vcek)
    }

    /// The check `ReportVerifier` makes for each link: RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48.
    static func isSigned(_ child: AMDCertificate, by parent: AMDCertificate) throws -> Bool {
        let key = try _RSA.Signing.PublicKey(derRepresentation: parent.subjectPublicKeyInfo)
        return key.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: child.signature),
            for: SHA384.hash(data: child.tbsBytes),
            padding: .PSS)
    }

    // MARK: - Chain

    @Test("the chain verifies link by link with AMD's PSS parameters", arguments: Product.allCases)
    func chainVerifies(product: Product) throws {
        let chain = try Self.chain(product)
        #expect(try Self.isSigned(chain.ark, by: chain.ark))
        #expect(try Self.isSigned(chain.ask, by: chain.ark))
        #expect(try Self.isSigned(chain.vcek, by: chain.ask))
        #expect(try !Self.isSigned(chain.vcek, by: chain.ark))
        #expect(try !Self.isSigned(chain.ask, by: chain.ask))
        for certificate in [chain.ark, chain.ask, chain.vcek] {
            #expect(certificate.isSignedWithAMDPSS)
            #expect(certificate.signature.count == 512)
        }
        #expect(chain.ark.issuer == chain.ark.subject)
        #expect(chain.ask.issuer == chain.ark.subject)
        #expect(chain.vcek.issuer == chain.ask.subject)
        #expect(chain.ark.subject.commonName == "ARK-\(product.name)")
        #expect(chain.ask.subject.commonName == "SEV-\(product.name)")
        #expect(chain.vcek.subject.commonName == "SEV-VCEK")
        #expect(chain.ark.subjectPublicKeyInfo == Array(Keys.ark.publicKey.derRepresentation))
        #expect(chain.ask.subjectPublicKeyInfo == Array(Keys.ask.publicKey.derRepresentation))
        #expect(chain.vcek.subjectPublicKeyInfo == Array(Keys.vcek.publicKey.derRepresentation))
        #expect(chain.ark.publicKeyAlgorithm == AMDOID.rsaEncryption)
        #expect(chain.vcek.publicKeyAlgorithm == AMDOID.ecPublicKey)
        #expect(chain.vcek.publicKeyCurve == AMDOID.secp384r1)
    }

    @Test("a changed TBSCertificate no longer verifies")
    func tamperingBreaksTheSignature() throws {
        let chain = try Self.chain(.milan)
        var der = chain.vcek.derRepresentation
        let index = try #require(Self.range(of: Array("SEV-VCEK".utf8), in: der))
        der[index] ^= 0x01
        let tampered = try AMDCertificate(derEncoded: der)
        #expect(try !Self.isSigned(tampered, by: chain.ask))
    }

    @Test(
        "serial numbers: ARK 0x10000/0x20000/0x30000, ASK 0x10001/0x20002/0x30001, VCEK 0",
        arguments: Product.allCases)
    func serialNumbers(product: Product) throws {
        let chain = try Self.chain(product)
        let (ark, ask): ([UInt8], [UInt8]) =
            switch product {
            case .milan: ([0x01, 0x00, 0x00], [0x01, 0x00, 0x01])
            case .genoa: ([0x02, 0x00, 0x00], [0x02, 0x00, 0x02])
            case .turin: ([0x03, 0x00, 0x00], [0x03, 0x00, 0x01])
            }
        #expect(chain.ark.serialNumber == ark)
        #expect(chain.ask.serialNumber == ask)
        #expect(chain.vcek.serialNumber == [])
        let tbs = try DERNode.parse(chain.vcek.tbsBytes).children()
        #expect(tbs[1].encoded == [0x02, 0x01, 0x00])
    }

    // MARK: - VCEK extensions as the reader sees them

    @Test("VCEK: structVersion, productName, SPLs and hwID read back", arguments: Product.allCases)
    func vcekExtensionsReadBack(product: Product) throws {
        let vcek = try Self.chain(product).vcek
        #expect(vcek.structVersion == (product == .turin ? 1 : 0))
        #expect(vcek.productName == ["Milan-B0", "Genoa", "Turin"][Product.allCases.firstIndex(of: product)!])
        #expect(vcek.productName.flatMap(Product.init(productName:)) == product)
        #expect(vcek.tcbLevels == Self.levels(product))
        #expect(vcek.hardwareID == Array(Self.chipID(product).prefix(product.chipIDLength)))
        #expect(vcek.hardwareID?.count == (product == .turin ? 8 : 64))
        #expect(vcek.cspID == nil)
        #expect(vcek.extensions.allSatisfy { !$0.critical })
        // The SPL layouts agree with TCB_VERSION: the report's REPORTED_TCB round-trips through the certificate.
        let reported = TCBVersion(Self.levels(product), layout: product.tcbLayout)
        #expect(vcek.tcbLevels.map { TCBVersion($0, layout: product.tcbLayout) } == reported)
    }

    @Test("INTEGER values above 127 get a leading zero byte", arguments: Product.allCases)
    func integersAbove127(product: Product) throws {
        let vcek = try Self.chain(product).vcek
        let microcode = try #require(vcek.extension(AMDOID.ucodeSPL))
        #expect(microcode.value == (product == .turin ? [0x02, 0x02, 0x00, 0xC8] : [0x02, 0x02, 0x00, 0xDB]))
        #expect(vcek.extension(AMDOID.snpSPL)?.value == (product == .turin ? [0x02, 0x01, 0x03] : [0x02, 0x01, 0x08]))
        let all = TCBLevels(fmc: product == .turin ? 255 : nil, bootLoader: 128, tee: 255, snp: 129, microcode: 255)
        let high = try AMDCertificateBuilder.vcek(
            product: product, key: Keys.vcek.publicKey, tcb: all, hardwareID: Self.chipID(product),
            issuerKey: Keys.ask, notBefore: Self.leapDay)
        #expect(high.tcbLevels == all)
        #expect(high.extension(AMDOID.blSPL)?.value == [0x02, 0x02, 0x00, 0x80])
    }

    @Test("Turin takes the first 8 bytes of a 64-byte CHIP_ID")
    func turinHardwareIDPrefix() throws {
        let full = (0..<64).map { UInt8($0 + 1) }
        let vcek = try AMDCertificateBuilder.vcek(
            product: .turin, key: Keys.vcek.publicKey, tcb: Self.levels(.turin), hardwareID: full,
            issuerKey: Keys.ask, notBefore: Self.leapDay)
        #expect(vcek.hardwareID == Array(full.prefix(8)))
        #expect(vcek.extension(AMDOID.hwID)?.value == Array(full.prefix(8)))
    }

    @Test("wrong hwID lengths and FMC levels are refused")
    func refusals() throws {
        #expect(throws: AMDCertificateBuilder.BuildError.hardwareIDLength(product: .milan, count: 8)) {
            try AMDCertificateBuilder.vcek(
                product: .milan, key: Keys.vcek.publicKey, tcb: Self.levels(.milan),
                hardwareID: [UInt8](repeating: 1, count: 8),
                issuerKey: Keys.ask, notBefore: Self.leapDay)
        }
        #expect(throws: AMDCertificateBuilder.BuildError.hardwareIDLength(product: .turin, count: 16)) {
            try AMDCertificateBuilder.vcek(
                product: .turin, key: Keys.vcek.publicKey, tcb: Self.levels(.turin),
                hardwareID: [UInt8](repeating: 1, count: 16),
                issuerKey: Keys.ask, notBefore: Self.leapDay)
        }
        #expect(throws: AMDCertificateBuilder.BuildError.fmcLevel(product: .turin, present: false)) {
            try AMDCertificateBuilder.vcek(
                product: .turin, key: Keys.vcek.publicKey, tcb: Self.levels(.milan),
                hardwareID: Self.chipID(.turin),
                issuerKey: Keys.ask, notBefore: Self.leapDay)
        }
        #expect(throws: AMDCertificateBuilder.BuildError.fmcLevel(product: .genoa, present: true)) {
            try AMDCertificateBuilder.vcek(
                product: .genoa, key: Keys.vcek.publicKey, tcb: Self.levels(.turin),
                hardwareID: Self.chipID(.genoa),
                issuerKey: Keys.ask, notBefore: Self.leapDay)
        }
    }

    // MARK: - Validity

    @Test("validity: whole seconds, ARK/ASK 25 years, VCEK 7 years, 29 February → 28 February")
    func validity() throws {
        let chain = try Self.chain(.genoa)
        let start = Date(timeIntervalSince1970: 1_709_210_096)  // 2024-02-29T12:34:56Z
        for certificate in [chain.ark, chain.ask, chain.vcek] { #expect(certificate.notBefore == start) }
        // 2049-02-28T12:34:56Z and 2031-02-28T12:34:56Z
        #expect(chain.ark.notAfter == Date(timeIntervalSince1970: 2_498_128_496))
        #expect(chain.ask.notAfter == Date(timeIntervalSince1970: 2_498_128_496))
        #expect(chain.vcek.notAfter == Date(timeIntervalSince1970: 1_930_048_496))
        for certificate in [chain.ark, chain.ask, chain.vcek] {
            #expect(try Self.validityTags(certificate) == [0x17, 0x17])
        }
    }

    @Test("times from 2050 on are GeneralizedTime, as RFC 5280 requires")
    func generalizedTimeFrom2050() throws {
        let notBefore = Date(timeIntervalSince1970: 1_795_976_641)  // 2026-11-29T18:24:01Z
        let ark = try AMDCertificateBuilder.root(product: .turin, key: Keys.ark, notBefore: notBefore)
        #expect(try Self.validityTags(ark) == [0x17, 0x18])
        #expect(ark.notBefore == notBefore)
        #expect(ark.notAfter == Date(timeIntervalSince1970: 2_584_895_041))  // 2051-11-29T18:24:01Z
        #expect(try Self.isSigned(ark, by: ark))
    }

    @Test("the real Milan ARK's dates give the real ARK's validity bytes")
    func realARKValidity() throws {
        let ours = try AMDCertificateBuilder.root(product: .milan, key: Keys.ark, notBefore: Self.milanARKDate)
        let real = try AMDCertificate(pemEncoded: try RealAMD.text("ark_milan.pem"))
        #expect(
            try DERNode.parse(ours.tbsBytes).children()[4].encoded
                == DERNode.parse(real.tbsBytes).children()[4].encoded)
    }

    // MARK: - Shape against AMD's real certificates

    @Test(
        "names, algorithms and extensions have the shape of AMD's real certificates",
        arguments: Product.allCases)
    func shapeMatchesAMD(product: Product) throws {
        let ours = try Self.chain(product, notBefore: Self.milanARKDate)
        let real = try RealAMD.chain(product)
        let pairs = [("ARK", ours.ark, real.ark), ("ASK", ours.ask, real.ask), ("VCEK", ours.vcek, real.vcek)]
        for (label, mine, amd) in pairs {
            // Extensions: same OIDs, same order, same criticality.
            #expect(
                mine.extensions.map { "\($0.oid)\($0.critical ? "!" : "")" }
                    == amd.extensions.map { "\($0.oid)\($0.critical ? "!" : "")" }, "\(label) extensions")
            // Names: same attribute OIDs and string types in the same order, same bytes for the same text.
            #expect(try Self.nameShape(mine.subject) == Self.nameShape(amd.subject), "\(label) subject")
            #expect(try Self.nameShape(mine.issuer) == Self.nameShape(amd.issuer), "\(label) issuer")
            #expect(mine.subject.derRepresentation == amd.subject.derRepresentation, "\(label) subject bytes")
            #expect(mine.issuer.derRepresentation == amd.issuer.derRepresentation, "\(label) issuer bytes")
            // TBSCertificate: the same fields with the same tags; v3; the same SPKI algorithm.
            let mineTBS = try DERNode.parse(mine.tbsBytes).children()
            let amdTBS = try DERNode.parse(amd.tbsBytes).children()
            #expect(mineTBS.map(\.tag) == amdTBS.map(\.tag), "\(label) TBS fields")
            #expect(mineTBS[0].encoded == [0xA0, 0x03, 0x02, 0x01, 0x02], "\(label) version")
            #expect(try Self.validityTags(mine) == Self.validityTags(amd), "\(label) time types")
            #expect(
                try DERNode.parse(mine.subjectPublicKeyInfo).children()[0].encoded
                    == DERNode.parse(amd.subjectPublicKeyInfo).children()[0].encoded,
                "\(label) SPKI algorithm")
        }
        // AMD's PSS AlgorithmIdentifier byte for byte, the same inside the TBS and outside: trailer field written
        // out on ARK and ASK, left to its default on today's VCEKs.
        for (label, mine, amd) in pairs {
            #expect(amd.isSignedWithAMDPSS, "\(label): AMD's own algorithm identifier")
            #expect(mine.signatureAlgorithm == amd.signatureAlgorithm, "\(label) signatureAlgorithm")
            #expect(mine.tbsSignatureAlgorithm == amd.tbsSignatureAlgorithm, "\(label) TBS signature")
        }
        #expect(ours.ark.signatureAlgorithm == AMDOID.rsassaPSSSHA384AlgorithmIdentifier)
        // ARK and ASK: the same serials, and the same extension bytes except the key identifiers.
        for (label, mine, amd) in pairs.prefix(2) {
            #expect(mine.serialNumber == amd.serialNumber, "\(label) serial")
            for oid in ["2.5.29.15", "2.5.29.19", "2.5.29.31"] {
                #expect(mine.extension(oid)?.value == amd.extension(oid)?.value, "\(label) \(oid)")
            }
        }
        // Key identifiers: SHA-1 of the subjectPublicKey (checked on AMD's ARK), and the ASK's AKI names the ARK's.
        let keyID = Array(Insecure.SHA1.hash(data: try Self.subjectPublicKeyBits(real.ark)))
        #expect(real.ark.extension("2.5.29.14")?.value == [0x04, 0x14] + keyID)
        let ourKeyID = Array(Insecure.SHA1.hash(data: try Self.subjectPublicKeyBits(ours.ark)))
        #expect(ours.ark.extension("2.5.29.14")?.value == [0x04, 0x14] + ourKeyID)
        #expect(ours.ask.extension("2.5.29.35")?.value == [0x30, 0x16, 0x80, 0x14] + ourKeyID)
        #expect(real.ask.extension("2.5.29.35")?.value.suffix(20) == real.ark.extension("2.5.29.14")?.value.suffix(20))
        // VCEK: the same AMD extensions with the same value encodings (INTEGER, IA5String, raw hwID).
        #expect(ours.vcek.productName == real.vcek.productName)
        #expect(ours.vcek.structVersion == real.vcek.structVersion)
        #expect(ours.vcek.hardwareID?.count == real.vcek.hardwareID?.count)
        #expect(ours.vcek.extension(AMDOID.hwID)?.value.count == real.vcek.extension(AMDOID.hwID)?.value.count)
        for (mine, amd) in zip(ours.vcek.extensions, real.vcek.extensions) where mine.oid != AMDOID.hwID {
            #expect(mine.value.first == amd.value.first, "\(mine.oid) value type")
        }
        #expect(ours.vcek.serialNumber == real.vcek.serialNumber)
    }

    @Test("the helper that checks our links accepts AMD's real chain", arguments: Product.allCases)
    func helperAcceptsAMD(product: Product) throws {
        let real = try RealAMD.chain(product)
        #expect(try Self.isSigned(real.ark, by: real.ark))
        #expect(try Self.isSigned(real.ask, by: real.ark))
        #expect(try Self.isSigned(real.vcek, by: real.ask))
    }

    // MARK: - Helpers

    /// (attribute OID bytes, value tag) per RDN, in order.
    static func nameShape(_ name: AMDCertificate.DistinguishedName) throws -> [String] {
        try DERNode.parse(name.derRepresentation).children().map { set in
            let attributes = try set.children()
            return try attributes.map { attribute in
                let pair = try attribute.children()
                return
                    "\(pair[0].encoded.map { String($0, radix: 16) }.joined(separator: " "))/\(pair[1].tag)"
            }.joined(separator: "+")
        }
    }

    static func validityTags(_ certificate: AMDCertificate) throws -> [UInt8] {
        try DERNode.parse(certificate.tbsBytes).children()[4].children().map(\.tag)
    }

    static func subjectPublicKeyBits(_ certificate: AMDCertificate) throws -> [UInt8] {
        Array(try DERNode.parse(certificate.subjectPublicKeyInfo).children()[1].content.dropFirst())
    }

    static func range(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first {
            Array(haystack[$0..<($0 + needle.count)]) == needle
        }
    }
}

extension CertificateBuilderTests {
    /// AMD's real certificates in `../shared/testdata/snp` (relative to the package root). Missing files fail.
    enum RealAMD {
        static let directory = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/testdata/snp").standardizedFileURL

        static func bytes(_ name: String) throws -> [UInt8] {
            let path = directory.appendingPathComponent(name).path
            let data = try #require(
                FileManager.default.contents(atPath: path), "AMD test vector missing: \(path)")
            return Array(data)
        }

        static func text(_ name: String) throws -> String {
            String(decoding: try bytes(name), as: UTF8.self)
        }

        static func chain(_ product: Product) throws -> CertificateBuilderTests.Chain {
            let stem = product.rawValue
            let vcek: String =
                switch product {
                case .milan: "milan_v3_oak_vcek.der"
                case .genoa: "genoa_v5_oak_vcek.der"
                case .turin: "turin_v5_oak_vcek.der"
                }
            return CertificateBuilderTests.Chain(
                ark: try AMDCertificate(pemEncoded: try text("ark_\(stem).pem")),
                ask: try AMDCertificate(pemEncoded: try text("ask_\(stem).pem")),
                vcek: try AMDCertificate(derEncoded: try bytes(vcek)))
        }
    }

    /// A minimal DER TLV reader, so the shape checks do not depend on the code under test.
    struct DERNode {
        var tag: UInt8
        var content: ArraySlice<UInt8>
        var encoded: [UInt8]

        struct Malformed: Error {}

        static func parse(_ bytes: [UInt8]) throws -> DERNode {
            let nodes = try sequence(bytes[...])
            guard nodes.count == 1 else { throw Malformed() }
            return nodes[0]
        }

        func children() throws -> [DERNode] { try Self.sequence(content) }

        static func sequence(_ bytes: ArraySlice<UInt8>) throws -> [DERNode] {
            var nodes: [DERNode] = []
            var index = bytes.startIndex
            while index < bytes.endIndex {
                let start = index
                let tag = bytes[index]
                index += 1
                guard index < bytes.endIndex else { throw Malformed() }
                var length = Int(bytes[index])
                index += 1
                if length & 0x80 != 0 {
                    let count = length & 0x7F
                    guard count > 0, count <= 4, index + count <= bytes.endIndex else { throw Malformed() }
                    length = bytes[index..<(index + count)].reduce(0) { $0 << 8 | Int($1) }
                    index += count
                }
                guard index + length <= bytes.endIndex else { throw Malformed() }
                nodes.append(
                    DERNode(
                        tag: tag, content: bytes[index..<(index + length)],
                        encoded: Array(bytes[start..<(index + length)])))
                index += length
            }
            return nodes
        }
    }
}

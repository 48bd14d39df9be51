import SwiftASN1

/// AMD's VCEK/VLEK extensions under 1.3.6.1.4.1.3704.1 and the algorithm identifiers of AMD's chain.
public enum AMDOID {
    public static let structVersion = "1.3.6.1.4.1.3704.1.1"
    public static let productName = "1.3.6.1.4.1.3704.1.2"
    public static let blSPL = "1.3.6.1.4.1.3704.1.3.1"
    public static let teeSPL = "1.3.6.1.4.1.3704.1.3.2"
    public static let snpSPL = "1.3.6.1.4.1.3704.1.3.3"
    public static let ucodeSPL = "1.3.6.1.4.1.3704.1.3.8"
    public static let fmcSPL = "1.3.6.1.4.1.3704.1.3.9"
    public static let hwID = "1.3.6.1.4.1.3704.1.4"
    public static let cspID = "1.3.6.1.4.1.3704.1.5"

    public static let rsaEncryption = "1.2.840.113549.1.1.1"
    public static let rsassaPSS = "1.2.840.113549.1.1.10"
    public static let ecPublicKey = "1.2.840.10045.2.1"
    public static let secp384r1 = "1.3.132.0.34"

    /// The OID of each TCB component's SPL extension.
    public static func spl(_ component: TCBLevels.Component) -> String {
        switch component {
        case .fmc: fmcSPL
        case .bootLoader: blSPL
        case .tee: teeSPL
        case .snp: snpSPL
        case .microcode: ucodeSPL
        }
    }

    /// AlgorithmIdentifier `RSASSA-PSS { SHA-384, MGF1-SHA-384, salt 48, trailer 1 }`, exactly as every
    /// certificate in AMD's chain encodes it.
    public static let rsassaPSSSHA384AlgorithmIdentifier: [UInt8] = try! Hex.decode(
        "304606092a864886f70d01010a3039a00f300d06096086480165030402020500a11c301a06092a864886f70d010108"
            + "300d06096086480165030402020500a203020130a303020101")
}

extension AMDCertificate {
    public func `extension`(_ oid: String) -> Extension? { extensions.first { $0.oid == oid } }

    /// structVersion (…3704.1.1): 0 on Milan and Genoa, 1 on Turin.
    public var structVersion: Int? { self.extension(AMDOID.structVersion).flatMap { try? Int(derEncoded: $0.value) } }

    /// productName (…3704.1.2): `Milan-B0`, `Genoa`, `Turin`, or `Milan` on a VLEK.
    public var productName: String? { self.extension(AMDOID.productName).flatMap { Self.ia5String($0.value) } }

    /// The SPLs this certificate was issued for, or nil when one of the four mandatory ones is missing.
    public var tcbLevels: TCBLevels? {
        func spl(_ component: TCBLevels.Component) -> UInt8? {
            self.extension(AMDOID.spl(component)).flatMap { try? Int(derEncoded: $0.value) }.flatMap(
                UInt8.init(exactly:))
        }
        guard let bl = spl(.bootLoader), let tee = spl(.tee), let snp = spl(.snp), let ucode = spl(.microcode) else {
            return nil
        }
        return TCBLevels(fmc: spl(.fmc), bootLoader: bl, tee: tee, snp: snp, microcode: ucode)
    }

    /// hwID (…3704.1.4): the chip's CHIP_ID (Turin: 8 bytes). Raw bytes or wrapped in an OCTET STRING.
    public var hardwareID: [UInt8]? {
        guard let value = self.extension(AMDOID.hwID)?.value else { return nil }
        if (value.count == 66 || value.count == 10), value[0] == 0x04, Int(value[1]) == value.count - 2 {
            return Array(value[2...])
        }
        return value
    }

    /// CSP_ID (…3704.1.5): the cloud provider a VLEK was issued to.
    public var cspID: String? { self.extension(AMDOID.cspID).flatMap { Self.ia5String($0.value) } }

    /// True when the signature algorithm is AMD's RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48 (trailer 1,
    /// explicit or by default, as older and newer AMD certificates differ), the same in the TBS and outside.
    public var isSignedWithAMDPSS: Bool {
        signatureAlgorithm == tbsSignatureAlgorithm && Self.isAMDPSS(signatureAlgorithm)
    }

    /// Parses `AlgorithmIdentifier { id-RSASSA-PSS, RSASSA-PSS-params }` and checks AMD's parameters.
    static func isAMDPSS(_ encoded: [UInt8]) -> Bool {
        let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
        func isSHA384(_ node: ASN1Node) throws -> Bool {
            try DER.sequence(node, identifier: .sequence) { parts in
                let oid = try ASN1ObjectIdentifier(derEncoded: &parts)
                if let parameter = parts.next(), parameter.identifier != .null { return false }
                return oid == sha384
            }
        }
        let parsed = try? DER.sequence(try DER.parse(encoded), identifier: .sequence) { parts -> Bool in
            guard try ASN1ObjectIdentifier(derEncoded: &parts) == [1, 2, 840, 113549, 1, 1, 10],
                let parameters = parts.next()
            else { return false }
            return try DER.sequence(parameters, identifier: .sequence) { fields -> Bool in
                let hash = try DER.optionalExplicitlyTagged(&fields, tagNumber: 0, tagClass: .contextSpecific) {
                    try isSHA384($0)
                }
                let mgf = try DER.optionalExplicitlyTagged(&fields, tagNumber: 1, tagClass: .contextSpecific) {
                    try DER.sequence($0, identifier: .sequence) { mgf -> Bool in
                        let oid = try ASN1ObjectIdentifier(derEncoded: &mgf)
                        guard let hash = mgf.next() else { return false }
                        let hashIsSHA384 = try isSHA384(hash)
                        return oid == [1, 2, 840, 113549, 1, 1, 8] && hashIsSHA384
                    }
                }
                let salt = try DER.optionalExplicitlyTagged(&fields, tagNumber: 2, tagClass: .contextSpecific) {
                    try Int(derEncoded: $0)
                }
                let trailer = try DER.optionalExplicitlyTagged(&fields, tagNumber: 3, tagClass: .contextSpecific) {
                    try Int(derEncoded: $0)
                }
                return hash == true && mgf == true && salt == 48 && (trailer ?? 1) == 1
            }
        }
        return parsed == true
    }

    private static func ia5String(_ der: [UInt8]) -> String? {
        guard let node = try? DER.parse(der), node.identifier == .ia5String || node.identifier == .utf8String,
            case .primitive(let bytes) = node.content
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

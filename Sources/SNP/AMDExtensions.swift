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
            self.extension(AMDOID.spl(component)).flatMap { try? Int(derEncoded: $0.value) }.flatMap(UInt8.init(exactly:))
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

    /// True when the signature algorithm is AMD's RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48.
    public var isSignedWithAMDPSS: Bool {
        signatureAlgorithm == AMDOID.rsassaPSSSHA384AlgorithmIdentifier
            && tbsSignatureAlgorithm == AMDOID.rsassaPSSSHA384AlgorithmIdentifier
    }

    private static func ia5String(_ der: [UInt8]) -> String? {
        guard let node = try? DER.parse(der), node.identifier == .ia5String || node.identifier == .utf8String,
            case .primitive(let bytes) = node.content
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

import Foundation
import SNP

/// The JSON form of an ATTESTATION_REPORT: every field, hex for bytes, decoded flags and TCB levels.
struct ReportJSON: Encodable {
    struct TCB: Encodable {
        var raw: String
        var fmc: UInt8?
        var bootloader: UInt8
        var tee: UInt8
        var snp: UInt8
        var microcode: UInt8

        init(_ tcb: TCBVersion, _ layout: TCBLayout) {
            let levels = tcb.levels(layout)
            raw = tcb.hex
            fmc = levels.fmc
            bootloader = levels.bootLoader
            tee = levels.tee
            snp = levels.snp
            microcode = levels.microcode
        }
    }
    struct Flags: Encodable {
        var raw: String
        var flags: [String]
    }
    struct Policy: Encodable {
        var raw: String
        var abi_major: UInt8
        var abi_minor: UInt8
        var flags: [String]
    }
    struct KeyInformation: Encodable {
        var raw: String
        var signing_key: String
        var author_key_enabled: Bool
        var mask_chip_key: Bool
    }
    struct CPUID: Encodable {
        var family: String
        var model: String
        var stepping: UInt8
    }
    struct Signature: Encodable {
        var r: String
        var s: String
    }

    var version: UInt32
    var product: String?
    var guest_svn: UInt32
    var policy: Policy
    var family_id: String
    var image_id: String
    var vmpl: UInt32
    var signature_algorithm: UInt32
    var current_tcb: TCB
    var platform_info: Flags
    var key_info: KeyInformation
    var report_data: String
    var measurement: String
    var host_data: String
    var id_key_digest: String
    var author_key_digest: String
    var report_id: String
    var report_id_ma: String
    var reported_tcb: TCB
    var cpuid: CPUID?
    var chip_id: String
    var committed_tcb: TCB
    var current_version: String
    var committed_version: String
    var launch_tcb: TCB
    var launch_mit_vector: UInt64?
    var current_mit_vector: UInt64?
    var signature: Signature

    init(_ report: AttestationReport, product: Product? = nil) {
        let product = product ?? report.product
        let layout = product?.tcbLayout ?? .milanGenoa
        version = report.version
        self.product = product?.name
        guest_svn = report.guestSVN
        policy = Policy(
            raw: "0x" + String(report.policy.rawValue, radix: 16), abi_major: report.policy.abiMajor,
            abi_minor: report.policy.abiMinor, flags: report.policy.flagNames)
        family_id = Hex.encode(report.familyID)
        image_id = Hex.encode(report.imageID)
        vmpl = report.vmpl
        signature_algorithm = report.signatureAlgorithm
        current_tcb = TCB(report.currentTCB, layout)
        platform_info = Flags(
            raw: "0x" + String(report.platformInfo.rawValue, radix: 16), flags: report.platformInfo.flagNames)
        key_info = KeyInformation(
            raw: "0x" + String(report.keyInfo.rawValue, radix: 16),
            signing_key: report.keyInfo.signingKey?.description ?? "reserved (\(report.keyInfo.signingKeyField))",
            author_key_enabled: report.keyInfo.authorKeyEnabled, mask_chip_key: report.keyInfo.maskChipKey)
        report_data = Hex.encode(report.reportData)
        measurement = Hex.encode(report.measurement)
        host_data = Hex.encode(report.hostData)
        id_key_digest = Hex.encode(report.idKeyDigest)
        author_key_digest = Hex.encode(report.authorKeyDigest)
        report_id = Hex.encode(report.reportID)
        report_id_ma = Hex.encode(report.reportIDMA)
        reported_tcb = TCB(report.reportedTCB, layout)
        if report.version >= 3 {
            cpuid = CPUID(
                family: Hex.encode([report.cpuidFamilyID]) + "h", model: Hex.encode([report.cpuidModelID]) + "h",
                stepping: report.cpuidStepping)
        }
        chip_id = Hex.encode(report.chipID)
        committed_tcb = TCB(report.committedTCB, layout)
        current_version = report.currentVersion.description
        committed_version = report.committedVersion.description
        launch_tcb = TCB(report.launchTCB, layout)
        if report.version >= 5 {
            launch_mit_vector = report.launchMitigationVector
            current_mit_vector = report.currentMitigationVector
        }
        signature = Signature(
            r: Hex.encode(report.signature.r.prefix(48).reversed()),
            s: Hex.encode(report.signature.s.prefix(48).reversed()))
    }
}

enum Output {
    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The report as an aligned two-column table.
    static func text(_ report: AttestationReport, product: Product? = nil) -> String {
        let product = product ?? report.product
        let layout = product?.tcbLayout ?? .milanGenoa
        func tcb(_ value: TCBVersion) -> String { "\(value.hex)  (\(value.levels(layout)))" }
        var rows: [(String, String)] = [
            ("version", "\(report.version)" + (report.version == 4 ? " (read as 3)" : "")),
            (
                "product",
                product.map { $0.name + (report.version >= 3 ? " (from CPUID)" : " (from CHIP_ID)") }
                    ?? "not stated (version 2 report)"
            ),
        ]
        if report.version >= 3 {
            rows.append(
                (
                    "cpuid",
                    "family \(Hex.encode([report.cpuidFamilyID]))h, model \(Hex.encode([report.cpuidModelID]))h, stepping \(report.cpuidStepping)"
                ))
        }
        let policyFlags = report.policy.flagNames.joined(separator: ", ")
        rows += [
            ("guest svn", "\(report.guestSVN)"),
            (
                "policy",
                "0x\(String(report.policy.rawValue, radix: 16)) (ABI \(report.policy.abiMajor).\(report.policy.abiMinor); \(policyFlags))"
            ),
            ("family id", Hex.encode(report.familyID)),
            ("image id", Hex.encode(report.imageID)),
            ("vmpl", "\(report.vmpl)"),
            (
                "signature algorithm",
                report.signatureAlgorithm == 1
                    ? "1 (ECDSA P-384 with SHA-384)" : "\(report.signatureAlgorithm) (unknown)"
            ),
            (
                "signing key",
                report.keyInfo.signingKey?.description ?? "reserved value \(report.keyInfo.signingKeyField)"
            ),
            (
                "platform info",
                "0x\(String(report.platformInfo.rawValue, radix: 16)) (\(report.platformInfo.flagNames.joined(separator: ", ")))"
            ),
            ("report data", Hex.encode(report.reportData)),
            ("measurement", Hex.encode(report.measurement)),
            ("host data", Hex.encode(report.hostData)),
            ("id key digest", Hex.encode(report.idKeyDigest)),
            ("author key digest", Hex.encode(report.authorKeyDigest)),
            ("report id", Hex.encode(report.reportID)),
            ("report id ma", Hex.encode(report.reportIDMA)),
            ("chip id", Hex.encode(report.chipID)),
            ("current tcb", tcb(report.currentTCB)),
            ("reported tcb", tcb(report.reportedTCB)),
            ("committed tcb", tcb(report.committedTCB)),
            ("launch tcb", tcb(report.launchTCB)),
            ("firmware", "current \(report.currentVersion), committed \(report.committedVersion)"),
        ]
        if report.version >= 5 {
            rows.append(
                (
                    "mitigation vectors",
                    "launch 0x\(String(report.launchMitigationVector, radix: 16)), current 0x\(String(report.currentMitigationVector, radix: 16))"
                ))
        }
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(
            separator: "\n")
    }
}

import Foundation
import SNP
import Testing

/// The launch-measurement vectors of `../shared/testdata/measure/vectors.md`, parsed from its tables at test
/// time: each row's sev-snp-measure command line, exit status and expected output. A missing folder makes
/// the count test fail; it never skips.
struct LaunchVector: Sendable, CustomTestStringConvertible {
    var id: String
    var arguments: [String]
    var exitStatus: Int
    var expected: String

    var testDescription: String { id }

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["VHSM_TESTDATA"] {
            return URL(fileURLWithPath: override).appendingPathComponent("measure")
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/testdata/measure").standardized
    }()

    struct MissingFile: Error, CustomStringConvertible {
        var path: String
        var description: String {
            "test data \(path) is missing: the tests need ../shared/testdata beside the checkout"
        }
    }

    struct UnknownMode: Error { var mode: String }

    static func read(_ file: String) throws -> [UInt8] {
        let url = directory.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else { throw MissingFile(path: url.path) }
        return Array(data)
    }

    static func exists(_ file: String) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path)
    }

    /// The text of vectors.md, or "" when the folder is missing (the count test then fails).
    static let document: String = (try? read("vectors.md")).map { String(decoding: $0, as: UTF8.self) } ?? ""

    /// Every table row whose first column is a vector ID such as `B03`.
    static let all: [LaunchVector] = document.split(separator: "\n").compactMap { line in
        let columns = line.split(separator: "|", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard columns.count >= 6, columns[1].wholeMatch(of: /[A-F][0-9]{2}/) != nil,
            let exit = Int(columns[3])
        else { return nil }
        return LaunchVector(
            id: columns[1], arguments: tokens(columns[2].trimmingCharacters(in: CharacterSet(charactersIn: "`"))),
            exitStatus: exit, expected: columns[4].trimmingCharacters(in: CharacterSet(charactersIn: "`")))
    }

    /// B14 (`--vcpu-sig 0` counted as missing) is argument handling, left to the CLI tests.
    static let excluded: Set<String> = ["B14"]

    /// The vectors whose every input file is in the folder.
    static let shipped: [LaunchVector] = all.filter { !excluded.contains($0.id) && $0.files.allSatisfy(exists) }
    static let unshipped: [LaunchVector] = all.filter { !excluded.contains($0.id) && !$0.files.allSatisfy(exists) }

    static func named(_ id: String) -> LaunchVector? { all.first { $0.id == id } }

    /// A shell-like split: spaces separate words, double quotes group them and `""` is an empty word.
    static func tokens(_ command: String) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var quoted = false
        for character in command {
            if character == "\"" {
                quoted.toggle()
                inWord = true
            } else if character == " " && !quoted {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// The value following `--option`, if given.
    func option(_ name: String) -> String? {
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        return arguments[index + 1]
    }

    var mode: String { option("--mode") ?? "snp" }
    var files: [String] { ["--ovmf", "--kernel", "--initrd"].compactMap(option) }

    /// `int(x, 0)` as argparse does it: decimal or 0x-prefixed hex.
    static func integer(_ text: String) -> UInt64? {
        text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    }

    /// The vCPU signature as sev-snp-measure 0.0.13 resolves it: family/model/stepping, then --vcpu-sig,
    /// then --vcpu-type; a zero is "not given" (its falsy test); nothing given is 0 (allowed for ec2/gce/sev).
    var vcpuSignature: UInt32 {
        if let family = option("--vcpu-family").flatMap(Int.init), family != 0 {
            return CPUSignature.of(
                family: family, model: Int(option("--vcpu-model")!)!, stepping: Int(option("--vcpu-stepping")!)!)
        }
        if let signature = option("--vcpu-sig").flatMap(Self.integer), signature != 0 { return UInt32(signature) }
        if let name = option("--vcpu-type") { return CPUSignature.named(name)! }
        return 0
    }

    func inputs() throws -> LaunchInputs {
        LaunchInputs(
            ovmf: try Self.read(option("--ovmf")!),
            kernel: try option("--kernel").map(Self.read),
            initrd: try option("--initrd").map(Self.read),
            append: option("--append"),
            vcpus: option("--vcpus").flatMap(Int.init) ?? 1,
            vcpuSignature: mode == "sev" ? 0 : vcpuSignature,
            guestFeatures: option("--guest-features").flatMap(Self.integer) ?? 1,
            vmmType: VMMType(rawValue: option("--vmm-type") ?? "qemu")!,
            ovmfHash: try option("--snp-ovmf-hash").map { try Hex.decode($0) })
    }

    /// The measurement this library computes for the row, dispatched on `--mode`.
    func measure() throws -> [UInt8] {
        switch mode {
        case "snp": return try LaunchDigest.snp(inputs())
        case "snp:ovmf-hash": return try LaunchDigest.ovmfHash(Self.read(option("--ovmf")!))
        case "seves": return try LaunchDigest.sevES(inputs())
        case "sev": return try LaunchDigest.sev(inputs())
        default: throw UnknownMode(mode: mode)
        }
    }

    /// The output as the tool prints it: hex, or base64 with `--output-format base64`.
    func printed(_ digest: [UInt8]) -> String {
        option("--output-format") == "base64" ? Data(digest).base64EncodedString() : Hex.encode(digest)
    }
}

import ArgumentParser
import Foundation
import SNP

struct IDBlockVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an ID block and its ID auth info as SNP_LAUNCH_FINISH would.",
        discussion: """
            Reads DIR/id-block.bin and DIR/id-auth.bin (or, when a .bin file is missing, the one-line base64 \
            DIR/id-block.b64 and DIR/id-auth.b64), as 'vhsm idblock create --out DIR' writes them.
            Checked: the ID block VERSION is 1, ID_KEY_ALGO (and AUTH_KEY_ALGO with an author key) is 1, the ID \
            key's ECDSA P-384 signature over the ID block, and with an author key its signature over the ID key.
            The firmware also refuses a launch whose launch digest or policy differ from the block's LD and POLICY: \
            give --measurement and --policy to check those too.
            Prints the fields and the digests the guest's reports will show (ID_KEY_DIGEST, AUTHOR_KEY_DIGEST).

            Exit codes: 0 valid; 1 invalid (every problem is listed); 2 usage error or unreadable input.
            """)

    @Argument(help: "The directory with id-block.bin and id-auth.bin (or their .b64 forms).") var directory: String
    @Option(help: "The guest's launch digest (48 bytes hex): LD must equal it.") var measurement: String?
    @Option(help: "The guest's launch policy (hex, e.g. 0x30000): POLICY must equal it.") var policy: String?
    @Flag(help: "Print JSON.") var json = false

    struct Verdict: Encodable {
        struct Block: Encodable {
            struct Policy: Encodable {
                var raw: String
                var flags: [String]
            }
            var launch_digest: String
            var family_id: String
            var image_id: String
            var version: UInt32
            var guest_svn: UInt32
            var policy: Policy
        }
        var directory: String
        var valid: Bool
        var problems: [String]
        var id_block: Block
        var id_key_digest: String
        var author_key: Bool
        var author_key_digest: String
        var expected_measurement: String?
        var expected_policy: String?
    }

    func run() async throws {
        let verdict = try evaluate()
        print(json ? Output.json(verdict) : text(verdict))
        if !verdict.valid { throw ExitCode(1) }
    }

    func evaluate() throws -> Verdict {
        let expectedMeasurement = try measurement.map { try Inputs.hex($0, option: "--measurement", count: 48) }
        let expectedPolicy = try policy.map(Inputs.policy)
        let (block, auth) = try IDBlockInputs.load(directory)

        var problems = auth.problems(for: block)
        if let expectedMeasurement, expectedMeasurement != block.launchDigest {
            problems.append(
                "LD is \(Hex.encode(block.launchDigest)), but --measurement is \(Hex.encode(expectedMeasurement)): "
                    + "the firmware refuses the launch")
        }
        if let expectedPolicy, expectedPolicy != block.policy {
            problems.append(
                "POLICY is 0x\(String(block.policy.rawValue, radix: 16)), but --policy is "
                    + "0x\(String(expectedPolicy.rawValue, radix: 16)): the firmware refuses the launch")
        }
        return Verdict(
            directory: directory, valid: problems.isEmpty, problems: problems,
            id_block: Verdict.Block(
                launch_digest: Hex.encode(block.launchDigest), family_id: Hex.encode(block.familyID),
                image_id: Hex.encode(block.imageID), version: block.version, guest_svn: block.guestSVN,
                policy: Verdict.Block.Policy(
                    raw: "0x" + String(block.policy.rawValue, radix: 16), flags: block.policy.flagNames)),
            id_key_digest: Hex.encode(auth.idKeyDigest), author_key: auth.authorKey != nil,
            author_key_digest: Hex.encode(auth.authorKeyDigest),
            expected_measurement: expectedMeasurement.map(Hex.encode),
            expected_policy: expectedPolicy.map { "0x" + String($0.rawValue, radix: 16) })
    }

    private func text(_ verdict: Verdict) -> String {
        let policyFlags = verdict.id_block.policy.flags.joined(separator: ", ")
        let unchecked = [(measurement, "--measurement"), (policy, "--policy")].filter { $0.0 == nil }.map(\.1)
        let verdictLine =
            !verdict.valid
            ? "INVALID"
            : unchecked.isEmpty
                ? "VALID" : "VALID (not compared with the launch: give \(unchecked.joined(separator: " and ")))"
        var lines = [
            "\(directory): \(verdictLine)",
            "  launch digest      \(verdict.id_block.launch_digest)",
            "  family id          \(verdict.id_block.family_id)",
            "  image id           \(verdict.id_block.image_id)",
            "  version            \(verdict.id_block.version)",
            "  guest svn          \(verdict.id_block.guest_svn)",
            "  policy             \(verdict.id_block.policy.raw) (\(policyFlags))",
            "  id key digest      \(verdict.id_key_digest)",
            "  author key digest  \(verdict.author_key_digest)" + (verdict.author_key ? "" : " (no author key)"),
        ]
        lines += verdict.problems.map { "  - \($0)" }
        return lines.joined(separator: "\n")
    }
}

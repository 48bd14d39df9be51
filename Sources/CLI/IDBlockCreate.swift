import ArgumentParser
import Foundation
import SNP

struct IDBlockCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Build an ID block, sign it, and write what QEMU's sev-snp-guest id-block= and id-auth= take.",
        discussion: """
            Writes id-block.bin (96 bytes), id-auth.bin (4096 bytes) and their one-line base64 forms id-block.b64 \
            and id-auth.b64 to --out, then prints:
              id-block=<b64>,id-auth=<b64>[,author-key-enabled=on]   (append to -object sev-snp-guest,...)
              id_key_digest: <hex>       (what the guest's reports show as ID_KEY_DIGEST)
              author_key_digest: <hex>   (AUTHOR_KEY_DIGEST; zeros without --author-key)

            The firmware refuses the launch unless --measurement equals the launch digest it computes and --policy \
            equals the guest's launch policy (QEMU's default policy is 0x30000). --family-id and --image-id take 1 \
            to 16 bytes of hex, zero-padded on the right to 16 (as --report-data is); reports show them as \
            FAMILY_ID and IMAGE_ID, and --svn as GUEST_SVN.

            Keys are unencrypted PEM P-384 private keys, PKCS#8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY" (e.g. \
            'openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out id.pem'). They are never printed. \
            With --author-key the author key signs the ID key; QEMU then needs author-key-enabled=on (printed). \
            ECDSA is randomized: id-auth differs on every run; id-block and the digests do not.

            Exit codes: 0 written; 1 cannot write; 2 usage error or unreadable key.
            """)

    @Option(help: "The expected MEASUREMENT, the block's LD (48 bytes hex).") var measurement: String
    @Option(help: "FAMILY_ID (1 to 16 bytes hex, zero-padded on the right).") var familyID: String
    @Option(help: "IMAGE_ID (1 to 16 bytes hex, zero-padded on the right).") var imageID: String
    @Option(help: "GUEST_SVN (decimal).") var svn: UInt32
    @Option(help: "The guest's launch policy (hex, e.g. 0x30000).") var policy: String
    @Option(help: "The ID key (unencrypted PEM P-384 private key).") var idKey: String
    @Option(help: "The author key, which signs the ID key (unencrypted PEM P-384 private key).") var authorKey: String?
    @Option(help: "Directory to write the four files to (created if missing).") var out: String

    /// What `create` made, and the lines it prints.
    struct Created {
        var block: SNP.IDBlock
        var auth: IDAuthentication
        var lines: [String]
    }

    func run() async throws {
        print(try create().lines.joined(separator: "\n"))
    }

    func create() throws -> Created {
        let block: SNP.IDBlock
        do {
            block = try SNP.IDBlock(
                launchDigest: try Inputs.hex(measurement, option: "--measurement", count: 48),
                familyID: try Inputs.paddedHex(familyID, option: "--family-id", count: 16),
                imageID: try Inputs.paddedHex(imageID, option: "--image-id", count: 16), guestSVN: svn,
                policy: try Inputs.policy(policy))
        } catch let error as LayoutError {
            throw CLIError.usage(error.description)
        }
        let idPrivate = try IDBlockInputs.privateKey(idKey, option: "--id-key")
        let authorPrivate = try authorKey.map { try IDBlockInputs.privateKey($0, option: "--author-key") }

        let auth: IDAuthentication
        do { auth = try IDAuthentication.sign(block, idKey: idPrivate, authorKey: authorPrivate) } catch {
            throw CLIError.refused("cannot sign the ID block: \(error)")
        }
        // A signature this build cannot verify is a bug here, never something to hand to QEMU.
        let problems = auth.problems(for: block)
        guard problems.isEmpty else {
            throw CLIError.refused("the new ID auth does not verify: " + problems.joined(separator: "; "))
        }

        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CLIError.refused("\(out): cannot create the directory: \(error.localizedDescription)")
        }
        let blockBase64 = Data(block.bytes).base64EncodedString()
        let authBase64 = Data(auth.bytes).base64EncodedString()
        try Inputs.write(block.bytes, to: IDBlockInputs.path(out, IDBlockInputs.blockBinary))
        try Inputs.write(auth.bytes, to: IDBlockInputs.path(out, IDBlockInputs.authBinary))
        try Inputs.write(Array((blockBase64 + "\n").utf8), to: IDBlockInputs.path(out, IDBlockInputs.blockBase64))
        try Inputs.write(Array((authBase64 + "\n").utf8), to: IDBlockInputs.path(out, IDBlockInputs.authBase64))

        let fragment =
            "id-block=\(blockBase64),id-auth=\(authBase64)" + (authorPrivate == nil ? "" : ",author-key-enabled=on")
        return Created(
            block: block, auth: auth,
            lines: [
                fragment,
                "id_key_digest: \(Hex.encode(auth.idKeyDigest))",
                "author_key_digest: \(Hex.encode(auth.authorKeyDigest))",
            ])
    }
}

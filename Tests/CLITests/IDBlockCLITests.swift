import ArgumentParser
import Crypto
import Foundation
import SNP
import Testing

@testable import CLI

@Suite struct IDBlockCLITests {
    static let measurement = String(repeating: "ab", count: 48)

    /// A fresh directory under the system temporary directory, removed by `remove`.
    struct Scratch {
        let path: String
        init() throws {
            path =
                FileManager.default.temporaryDirectory.appendingPathComponent("vhsm-idblock-\(UUID().uuidString)")
                .path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
        func write(_ text: String, to name: String) throws -> String {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
            return file(name)
        }
        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    /// `../shared/testdata/measure`; a missing folder fails the test.
    static func vector(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/testdata/measure/\(name)").standardized
        let data = try #require(
            FileManager.default.contents(atPath: url.path), "test data \(url.path) is missing (../shared/testdata)")
        return Array(data)
    }

    static func createArguments(_ out: String, idKey: String, authorKey: String?) -> [String] {
        [
            "idblock", "create", "--measurement", measurement, "--family-id", "0102", "--image-id",
            String(repeating: "ee", count: 16), "--svn", "5", "--policy", "0x30000", "--id-key", idKey, "--out", out,
        ] + (authorKey.map { ["--author-key", $0] } ?? [])
    }

    static func verifier(_ arguments: [String]) throws -> IDBlockVerify {
        try #require(try VHSM.parseAsRoot(["idblock", "verify"] + arguments) as? IDBlockVerify)
    }

    @Test func parsesTheSurface() throws {
        let create = try #require(
            try VHSM.parseAsRoot(Self.createArguments("d", idKey: "id.pem", authorKey: "a.pem")) as? IDBlockCreate)
        #expect(create.measurement == Self.measurement && create.familyID == "0102")
        #expect(create.imageID == String(repeating: "ee", count: 16) && create.svn == 5 && create.policy == "0x30000")
        #expect(create.idKey == "id.pem" && create.authorKey == "a.pem" && create.out == "d")
        let noAuthor = try #require(
            try VHSM.parseAsRoot(Self.createArguments("d", idKey: "id.pem", authorKey: nil)) as? IDBlockCreate)
        #expect(noAuthor.authorKey == nil)
        #expect(throws: (any Error).self) {
            try VHSM.parseAsRoot(["idblock", "create", "--measurement", Self.measurement, "--out", "d"])
        }
        #expect(throws: (any Error).self) {
            try VHSM.parseAsRoot(Self.createArguments("d", idKey: "id.pem", authorKey: nil) + ["--svn", "-1"])
        }

        let verify = try Self.verifier(["d", "--measurement", Self.measurement, "--policy", "0x30000", "--json"])
        #expect(verify.directory == "d" && verify.measurement == Self.measurement && verify.policy == "0x30000")
        #expect(verify.json)
        #expect(throws: (any Error).self) { try VHSM.parseAsRoot(["idblock", "verify"]) }
        #expect(VHSM.IDBlock.configuration.commandName == "idblock")
    }

    @Test(arguments: [false, true])
    func createThenVerify(withAuthor: Bool) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let idKey = P384.Signing.PrivateKey()
        let authorKey = P384.Signing.PrivateKey()
        let idPath = try scratch.write(idKey.pemRepresentation, to: "id.pem")
        let authorPath = try scratch.write(authorKey.pemRepresentation, to: "author.pem")
        let out = scratch.file("out")

        let command = try #require(
            try VHSM.parseAsRoot(Self.createArguments(out, idKey: idPath, authorKey: withAuthor ? authorPath : nil))
                as? IDBlockCreate)
        let created = try command.create()
        let blockBytes = try Inputs.read((out as NSString).appendingPathComponent("id-block.bin"))
        let authBytes = try Inputs.read((out as NSString).appendingPathComponent("id-auth.bin"))
        #expect(blockBytes.count == 96 && authBytes.count == 4096)
        #expect(blockBytes == created.block.bytes && authBytes == created.auth.bytes)
        let blockBase64 = String(decoding: try Inputs.read(out + "/id-block.b64"), as: UTF8.self)
        let authBase64 = String(decoding: try Inputs.read(out + "/id-auth.b64"), as: UTF8.self)
        #expect(blockBase64 == Data(blockBytes).base64EncodedString() + "\n")
        #expect(authBase64 == Data(authBytes).base64EncodedString() + "\n")

        let block = try IDBlock(bytes: blockBytes)
        #expect(Hex.encode(block.launchDigest) == Self.measurement)
        #expect(block.familyID == [1, 2] + Array(repeating: 0, count: 14))
        #expect(block.imageID == Array(repeating: 0xEE, count: 16) && block.guestSVN == 5 && block.version == 1)
        #expect(block.policy.rawValue == 0x30000)

        let fragment =
            "id-block=\(Data(blockBytes).base64EncodedString()),id-auth=\(Data(authBytes).base64EncodedString())"
            + (withAuthor ? ",author-key-enabled=on" : "")
        let authorDigest = withAuthor ? SEVPublicKey(authorKey.publicKey).digest : Array(repeating: 0, count: 48)
        #expect(
            created.lines == [
                fragment, "id_key_digest: \(Hex.encode(SEVPublicKey(idKey.publicKey).digest))",
                "author_key_digest: \(Hex.encode(authorDigest))",
            ])
        #expect(!created.lines.joined().contains(idKey.pemRepresentation))

        // Valid as written, with and without the launch values.
        let verdict = try Self.verifier([out, "--measurement", Self.measurement, "--policy", "0x30000"]).evaluate()
        #expect(verdict.valid && verdict.problems == [] && verdict.author_key == withAuthor)
        #expect(verdict.id_key_digest == Hex.encode(SEVPublicKey(idKey.publicKey).digest))
        #expect(verdict.author_key_digest == Hex.encode(authorDigest))
        try await Self.verifier([out]).run()
        try await Self.verifier([out, "--json"]).run()

        // The launch values must match.
        let mismatch = try Self.verifier([
            out, "--measurement", String(repeating: "cd", count: 48), "--policy", "0x70000",
        ])
        #expect(try mismatch.evaluate().problems.count == 2)
        await #expect(throws: ExitCode(1)) { try await mismatch.run() }

        // The base64 files stand in for missing .bin files.
        try FileManager.default.removeItem(atPath: out + "/id-block.bin")
        try FileManager.default.removeItem(atPath: out + "/id-auth.bin")
        #expect(try Self.verifier([out]).evaluate().valid)

        // A flipped bit in the signature is a problem, exit 1.
        var tampered = authBytes
        tampered[0x40] ^= 1
        try Data(tampered).write(to: URL(fileURLWithPath: out + "/id-auth.bin"))
        #expect(try !Self.verifier([out]).evaluate().valid)
        await #expect(throws: ExitCode(1)) { try await Self.verifier([out]).run() }
    }

    @Test func verifyAcceptsTheUpstreamSample() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try Data(try Self.vector("id-block-B03.bin")).write(to: URL(fileURLWithPath: scratch.file("id-block.bin")))
        try Data(try Self.vector("id-auth-B03.bin")).write(to: URL(fileURLWithPath: scratch.file("id-auth.bin")))
        let verdict = try Self.verifier([
            scratch.path, "--measurement",
            "b401308a0b72a6c70fa4be86fcd235377a55110b75dcb911773d934f19b9c93ec887086d2f548d691f1718e96eba2c0f",
            "--policy", "0x30000",
        ]).evaluate()
        #expect(verdict.valid && verdict.author_key)
        #expect(
            verdict.id_key_digest
                == "870b7e35c53f8a72d0d322f75ab2af8262792aaf6579622ce4131c3f21f289e77cb0560a5e3b90b3932e674ec709cb14")
        #expect(
            verdict.author_key_digest
                == "63111c34bbfc0a4938f9a009bd074980d8172323e61599c9fd336da8673248e1dca98d0be8f76376a106b8afd4c0a057")
    }

    @Test func verifyRefusesBadInputsWithTheirExitCodes() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        func exitCode(_ arguments: [String]) throws -> Int32? {
            do { _ = try Self.verifier(arguments).evaluate() } catch let error as CLIError {
                #expect(error.description.contains(scratch.path), "\(error)")
                return error.exitCode
            }
            return nil
        }
        #expect(try exitCode([scratch.file("nothing")]) == 2)
        #expect(try exitCode([scratch.path]) == 2)  // neither .bin nor .b64
        try Data(try Self.vector("id-block-B03.bin")).write(to: URL(fileURLWithPath: scratch.file("id-block.bin")))
        try Data(repeating: 0, count: 100).write(to: URL(fileURLWithPath: scratch.file("id-auth.bin")))
        #expect(try exitCode([scratch.path]) == 2)  // wrong size
        var reserved = try Self.vector("id-auth-B03.bin")
        reserved[0xFFF] = 1
        try Data(reserved).write(to: URL(fileURLWithPath: scratch.file("id-auth.bin")))
        #expect(try exitCode([scratch.path]) == 1)  // reserved byte set
        try FileManager.default.removeItem(atPath: scratch.file("id-auth.bin"))
        _ = try scratch.write("not base64!\n", to: "id-auth.b64")
        #expect(try exitCode([scratch.path]) == 2)
    }

    @Test func createRefusesKeysItCannotUse() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let good = try scratch.write(P384.Signing.PrivateKey().pemRepresentation, to: "good.pem")
        let p256 = P256.Signing.PrivateKey().pemRepresentation
        let cases: [(String, String, String)] = [
            ("p256.pem", p256, "P-256"),
            ("public.pem", P384.Signing.PrivateKey().publicKey.pemRepresentation, "public key"),
            (
                "encrypted.pem", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted"
            ),
            ("der.bin", "\u{30}\u{81}", "not PEM"),
        ]
        for (name, contents, expected) in cases {
            let path = try scratch.write(contents, to: name)
            for arguments in [
                Self.createArguments(scratch.file("out"), idKey: path, authorKey: nil),
                Self.createArguments(scratch.file("out"), idKey: good, authorKey: path),
            ] {
                let command = try #require(try VHSM.parseAsRoot(arguments) as? IDBlockCreate)
                do {
                    _ = try command.create()
                    Issue.record("\(name) was accepted")
                } catch let error as CLIError {
                    #expect(error.exitCode == 2)
                    #expect(error.description.hasPrefix(path) && error.description.contains(expected), "\(error)")
                    #expect(
                        !error.description.contains("MIIB")
                            && !error.description.contains(String(p256.dropFirst(40).prefix(20))))
                }
            }
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.file("out")))

        let missing = try #require(
            try VHSM.parseAsRoot(
                Self.createArguments(scratch.file("out"), idKey: scratch.file("none.pem"), authorKey: nil))
                as? IDBlockCreate)
        #expect(throws: (any Error).self) { try missing.create() }
        var tooLong = Self.createArguments(scratch.file("out"), idKey: good, authorKey: nil)
        tooLong[tooLong.firstIndex(of: "0102")!] = String(repeating: "11", count: 17)
        let command = try #require(try VHSM.parseAsRoot(tooLong) as? IDBlockCreate)
        do {
            _ = try command.create()
            Issue.record("a 17-byte --family-id was accepted")
        } catch let error as CLIError {
            #expect(error.exitCode == 2 && error.description.hasPrefix("--family-id"))
        }
    }
}

import ArgumentParser
import Crypto
import CryptoExtras
import Foundation
import Sealing
import Testing

@testable import CLI

/// `vhsm operator`: opening sealed root tokens with the operator key, and the trust options of the HTTPS client.
@Suite struct OperatorCLITests {
    final class Workspace {
        let directory: URL
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vhsm-op-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        func write(_ name: String, _ text: String) throws -> String {
            let path = directory.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    func open(_ arguments: [String]) throws -> String {
        let command = try #require(try VHSM.parseAsRoot(["operator", "open"] + arguments) as? OperatorOpen)
        return try command.output()
    }

    @Test func operatorOpenPrintsTheTokenSealedToTheKey() throws {
        let workspace = try Workspace()
        let key = Curve25519.KeyAgreement.PrivateKey()
        let keyFile = try workspace.write("operator.pem", key.pemRepresentation)
        let sealed = try SealedRootToken.seal(
            "s.opened-by-the-operator", to: .x25519(key.publicKey), issuedBy: "sys/generate-root/operator")
        let blob = try workspace.write("blob.txt", "vhsmd said:\n" + sealed.armored + "trailing text\n")

        let text = try open(["--key", keyFile, blob])
        #expect(text.hasPrefix("root token: s.opened-by-the-operator\n"))
        #expect(text.contains("issued by sys/generate-root/operator"))
        #expect(text.contains(SealedRootToken.hex(sealed.recipientFingerprint)))

        let json = try open(["--key", keyFile, blob, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        #expect(object["root_token"] == "s.opened-by-the-operator")
        #expect(object["issued_by"] == "sys/generate-root/operator")
        #expect(object["operator_key_sha256"] == SealedRootToken.hex(sealed.recipientFingerprint))

        // The blob as it appears inside a JSON answer (newlines escaped) opens too.
        let escaped = try workspace.write(
            "answer.json",
            #"{"root_token_sealed":""# + sealed.armored.replacingOccurrences(of: "\n", with: "\\n")
                + #""}"#)
        #expect(try open(["--key", keyFile, escaped]).hasPrefix("root token: s.opened-by-the-operator"))
    }

    @Test func operatorOpenRefusesAnotherKeyAndWhatIsNotABlob() throws {
        let workspace = try Workspace()
        let key = P384.KeyAgreement.PrivateKey()
        let sealed = try SealedRootToken.seal("s.secret", to: .p384(key.publicKey), issuedBy: "sys/init")
        let blob = try workspace.write("blob.txt", sealed.armored)
        let otherKey = try workspace.write("other.pem", P384.KeyAgreement.PrivateKey().pemRepresentation)
        // Another key: the blob does not open, exit 1, and the message names both fingerprints.
        let refused = #expect(throws: CLIError.self) { try open(["--key", otherKey, blob]) }
        #expect(refused?.exitCode == 1)
        #expect(refused?.description.contains(SealedRootToken.hex(sealed.recipientFingerprint)) == true)
        // A recovery blob, or no blob at all: unusable input, exit 2.
        let notBlob = try workspace.write(
            "recovery.txt", "-----BEGIN VHSM RECOVERY-----\nAAAA\n-----END VHSM RECOVERY-----\n")
        let keyFile = try workspace.write("operator.pem", key.pemRepresentation)
        let unusable = #expect(throws: CLIError.self) { try open(["--key", keyFile, notBlob]) }
        #expect(unusable?.exitCode == 2)
        #expect(unusable?.description.contains("BEGIN VHSM ROOT TOKEN") == true)
        // A key file that is not a private key: exit 2.
        let publicOnly = try workspace.write("public.pem", key.publicKey.pemRepresentation)
        let badKey = #expect(throws: CLIError.self) { try open(["--key", publicOnly, blob]) }
        #expect(badKey?.exitCode == 2)
    }

    @Test func httpsNeedsACAOrAPinnedFingerprint() throws {
        let unpinned = #expect(throws: CLIError.self) {
            try VaultClient(url: "https://10.0.2.15:8200", caFile: nil, fingerprint: nil)
        }
        #expect(unpinned?.exitCode == 2)
        let pin = String(repeating: "AB:", count: 31) + "AB"
        let client = try VaultClient(url: "https://[::1]:8200/", caFile: nil, fingerprint: pin)
        #expect(client.host == "::1" && client.port == 8200 && client.secure)
        guard case .fingerprint(let bytes) = client.trust else {
            Issue.record("a --fingerprint is not a pinned trust")
            return
        }
        #expect(bytes == [UInt8](repeating: 0xAB, count: 32))
        #expect(throws: CLIError.self) {
            try VaultClient(url: "https://h:8200", caFile: nil, fingerprint: String(repeating: "a", count: 63))
        }
        #expect(throws: CLIError.self) {
            try VaultClient(url: "http://h:8200", caFile: nil, fingerprint: String(repeating: "a", count: 64))
        }
        let plain = try VaultClient(url: "http://127.0.0.1:8200", caFile: nil, fingerprint: nil)
        #expect(!plain.secure && plain.port == 8200)
        let parsed = try #require(
            try VHSM.parseAsRoot([
                "operator", "init", "https://127.0.0.1:8200", "--key", "k.pem", "--fingerprint", pin, "--json",
            ]) as? OperatorInit)
        #expect(parsed.server.url == "https://127.0.0.1:8200" && parsed.key.key == "k.pem" && parsed.key.json)
    }
}

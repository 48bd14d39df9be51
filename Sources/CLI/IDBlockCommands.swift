import ArgumentParser
import Crypto
import Foundation
import SNP

extension VHSM {
    struct IDBlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "idblock",
            abstract: "Create and verify SEV-SNP ID blocks (what SNP_LAUNCH_FINISH checks).",
            discussion:
                "Exit codes: as 'vhsm --help' lists them; each command's --help says which it returns and when.",
            subcommands: [IDBlockCreate.self, IDBlockVerify.self])
    }
}

/// The files `vhsm idblock create` writes and `vhsm idblock verify` reads, and the private-key loader.
enum IDBlockInputs {
    static let blockBinary = "id-block.bin"
    static let authBinary = "id-auth.bin"
    static let blockBase64 = "id-block.b64"
    static let authBase64 = "id-auth.b64"

    static func path(_ directory: String, _ name: String) -> String {
        (directory as NSString).appendingPathComponent(name)
    }

    /// An unencrypted PEM P-384 private key (PKCS#8 or SEC1). Errors name the file and never show its contents.
    static func privateKey(_ path: String, option: String) throws -> P384.Signing.PrivateKey {
        let bytes = try Inputs.read(path)
        let text = String(decoding: bytes, as: UTF8.self)
        let expected =
            "\(option) expects an unencrypted PEM P-384 private key (PKCS#8 \"PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")"
        guard text.contains("-----BEGIN ") else {
            throw CLIError.input(path, "is not PEM; \(expected)")
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("Proc-Type: 4,ENCRYPTED") {
            throw CLIError.input(
                path, "is an encrypted private key; \(expected). Decrypt a copy with 'openssl pkey -in FILE -out PLAIN'"
            )
        }
        if let key = try? P384.Signing.PrivateKey(pemRepresentation: text) { return key }
        if text.contains("-----BEGIN PUBLIC KEY-----") || text.contains("-----BEGIN CERTIFICATE-----") {
            throw CLIError.input(path, "holds a public key or certificate, not a private key; \(expected)")
        }
        if (try? P256.Signing.PrivateKey(pemRepresentation: text)) != nil {
            throw CLIError.input(path, "is a P-256 key; \(expected)")
        }
        if (try? P521.Signing.PrivateKey(pemRepresentation: text)) != nil {
            throw CLIError.input(path, "is a P-521 key; \(expected)")
        }
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            throw CLIError.input(path, "is an RSA key; \(expected)")
        }
        throw CLIError.input(path, "is not a P-384 key that can be read; \(expected)")
    }
}

import ArgumentParser
import Foundation
import NIOHTTP1
import Sealing

extension VHSM {
    struct Operator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "The operator key's powers over vhsmd: the root token (sys/init, root recovery, opening a blob), moving the store.",
            discussion: """
                A vhsmd whose configuration has operator_key (in the guest: the operator's recovery public key, \
                measured with the initramfs) never answers a root token in the clear. 'PUT /v1/sys/init' and \
                'PUT /v1/sys/generate-root/operator' answer it HPKE-sealed to that key (an armored VHSM ROOT TOKEN \
                blob); these commands open it with the private key, on the operator's machine. Whoever calls \
                sys/init first (on a first boot, the cloud host) gets a blob it cannot open.

                Exit codes: 0 the root token was opened and printed; 1 vhsmd refused, or the blob does not open with \
                this key; 2 usage error or unreadable input; 3 vhsmd could not be reached (no connection, or no \
                answer in time): nothing was sent or decided, try again later.

                Examples:
                  vhsm operator init https://10.0.2.15:8200 --key operator.pem --fingerprint AB:CD:…
                  vhsm operator generate-root https://vhsm.example:8200 --key operator.pem --cacert ca.pem --json
                  vhsm operator open --key operator.pem blob.txt
                """,
            subcommands: [OperatorInit.self, OperatorGenerateRoot.self, OperatorOpen.self, OperatorRecover.self])
    }
}

/// The options of the commands that talk to vhsmd.
struct ServerOptions: ParsableArguments {
    @Argument(help: "vhsmd's address: https://HOST:PORT (or http://HOST:PORT for a plain-HTTP vhsmd).")
    var url: String
    @Option(help: "Trust this PEM CA certificate (or vhsmd's own DATA/tls/cert.pem) for an https URL.")
    var cacert: String?
    @Option(
        help: ArgumentHelp(
            "Trust the server whose leaf certificate has this SHA-256 (64 hex digits, colon-separated or not).",
            discussion: "vhsmd prints it at every start; openssl x509 -noout -fingerprint -sha256 prints it too."))
    var fingerprint: String?

    func client() throws -> VaultClient { try VaultClient(url: url, caFile: cacert, fingerprint: fingerprint) }
}

/// The operator's private key and how the opened token is printed.
struct OperatorKeyOptions: ParsableArguments {
    @Option(help: "The operator's private key: unencrypted PEM, P-384 (PKCS#8 or SEC1) or X25519 (PKCS#8).")
    var key: String
    @Flag(
        help: "Print JSON for scripts ({\"root_token\", \"issued_by\", \"operator_key_sha256\"}; recover: the outcome)."
    )
    var json = false

    func privateKey() throws -> HPKEPrivateKey {
        let text = String(decoding: try Inputs.read(key), as: UTF8.self)
        guard let key = HPKEPrivateKey(pem: text) else {
            throw CLIError.input(
                self.key, "is not an unencrypted PEM P-384 or X25519 private key (PKCS#8 \"PRIVATE KEY\" or SEC1)")
        }
        return key
    }

    /// Opens an armored blob with the key and renders the token.
    func open(_ blobText: String, source: String) throws -> String {
        let key = try privateKey()
        let sealed: SealedRootToken
        do { sealed = try SealedRootToken.parse(armored: blobText) } catch {
            throw CLIError.input(source, error.description)
        }
        let token: String
        do { token = try sealed.open(with: key) } catch { throw CLIError.refused("\(source): \(error.description)") }
        return render(token: token, sealed: sealed)
    }

    func render(token: String, sealed: SealedRootToken?, issuedBy: String = "") -> String {
        let fingerprint = sealed.map { SealedRootToken.hex($0.recipientFingerprint) }
        if json {
            var object: [String: String] = ["root_token": token, "issued_by": sealed?.issuedBy ?? issuedBy]
            object["operator_key_sha256"] = fingerprint
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
        guard let sealed, let fingerprint else { return "root token: \(token)\n  issued by \(issuedBy), in the clear" }
        return """
            root token: \(token)
              issued by \(sealed.issuedBy), sealed (\(sealed.suite.rawValue)) to operator key \(fingerprint)
            """
    }
}

extension OperatorKeyOptions {
    /// Sends `path` to vhsmd and opens the `root_token_sealed` of its answer.
    func request(_ client: VaultClient, _ path: String) async throws -> String {
        let key = try privateKey()
        let answer = try await client.send(.PUT, path, body: Array("{}".utf8))
        let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
        guard answer.status == 200, let object else {
            let errors = (object?["errors"] as? [String])?.joined(separator: "; ") ?? "no error message"
            var advice = ""
            if path == "sys/init", errors.contains("already initialized") {
                advice =
                    ". Someone called sys/init before you; its sealed answer was the only copy of that root token. "
                    + "If it was not you, mint another with 'vhsm operator generate-root'"
            }
            throw CLIError.refused("vhsmd refused PUT /v1/\(path) (HTTP \(answer.status)): \(errors)\(advice)")
        }
        if let clear = object["root_token"] as? String {
            print(render(token: clear, sealed: nil, issuedBy: path))
            throw CLIError.refused(
                "vhsmd answered \(path) with the root token in the clear (printed above): it has no operator_key, so "
                    + "whoever called first could have taken it. Set operator_key in vhsmd's configuration")
        }
        guard let blob = object["root_token_sealed"] as? String else {
            throw CLIError.refused("vhsmd's answer to \(path) has neither root_token_sealed nor root_token")
        }
        let sealed: SealedRootToken
        do { sealed = try SealedRootToken.parse(armored: blob) } catch {
            throw CLIError.refused("vhsmd's root_token_sealed: \(error.description)")
        }
        do { return render(token: try sealed.open(with: key), sealed: sealed) } catch {
            throw CLIError.refused(
                "the root token vhsmd sealed does not open with \(self.key): \(error.description). The blob is "
                    + "printed here so that the right key can open it later ('vhsm operator open'):\n\(blob)")
        }
    }
}

struct OperatorInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Initialise vhsmd (PUT /v1/sys/init) and open its sealed root token with the operator key.",
        discussion: """
            Initialisation happens once: the answer is the only copy of the first root token. If vhsmd was \
            already initialised by someone else (on a first boot that can be the host, which gains nothing: the \
            token is sealed to your key), mint a new root token with 'vhsm operator generate-root'.

            Exit codes: 0 the root token was opened and printed; 1 vhsmd refused (already initialised, no \
            operator_key) or presented a certificate not trusted, or the token does not open with this key; 2 usage \
            error or unreadable input; 3 vhsmd could not be reached (no connection, or no answer in time).
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var key: OperatorKeyOptions

    func run() async throws { print(try await key.request(try server.client(), "sys/init")) }
}

struct OperatorGenerateRoot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-root",
        abstract: "Mint a new root token (PUT /v1/sys/generate-root/operator), opened with the operator key.",
        discussion: """
            Root recovery for a vhsmd with operator_key: the call needs no token, and its answer is sealed to the \
            operator key, so only the holder of the private key can use what it mints. At most one such token \
            is outstanding unused: a new call revokes the previous operator-generated root token if that one never \
            authenticated a request. Every call is audited.

            Exit codes: 0 the root token was opened and printed; 1 vhsmd refused (no operator_key, not \
            initialised) or presented a certificate not trusted, or the token does not open with this key; 2 usage \
            error or unreadable input; 3 vhsmd could not be reached (no connection, or no answer in time).
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var key: OperatorKeyOptions

    func run() async throws {
        print(try await key.request(try server.client(), "sys/generate-root/operator"))
    }
}

struct OperatorOpen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Open an armored VHSM ROOT TOKEN blob (root_token_sealed) with the operator key.",
        discussion: """
            For a blob obtained otherwise: a saved sys/init or sys/generate-root/operator answer (the whole JSON \
            answer works too: its \\n escapes are read as line breaks), a log excerpt, a colleague's copy. Nothing \
            is sent anywhere.

            Exit codes: 0 the token was opened and printed; 1 the blob does not open with this key (another key, \
            or changed); 2 usage error, unreadable input, or text that is not a root-token blob.
            """)

    @OptionGroup var key: OperatorKeyOptions
    @Argument(help: "The blob file, or - for standard input.") var blob = "-"

    func output() throws -> String {
        let text: String
        if blob == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard data.count <= 1 << 20 else { throw CLIError.input("-", "is larger than 1 MiB, more than a blob is") }
            text = String(decoding: data, as: UTF8.self)
        } else {
            text = String(decoding: try Inputs.read(blob, limit: 1 << 20), as: UTF8.self)
        }
        return try key.open(unescaped(text), source: blob == "-" ? "standard input" : blob)
    }

    /// A blob copied out of a JSON answer keeps its newlines as `\n`: they are turned back into line breaks.
    private func unescaped(_ text: String) -> String { text.replacingOccurrences(of: "\\n", with: "\n") }

    func run() async throws { print(try output()) }
}

import ArgumentParser
import Foundation
import Hummingbird
import Logging

@main
struct VHSMD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhsmd",
        abstract: "The vhsm key service: a Vault-compatible API (tokens, transit, KV v2) inside the confidential VM.",
        discussion: """
            Dev mode (--dev) is like 'bao server -dev': in-memory state behind the same barrier, unsealed, plain HTTP \
            on loopback, a root token printed at start.

            Config mode (--config FILE) keeps state in SQLite under the data directory, every value encrypted by \
            the barrier whose root key comes from the SEV-SNP Secure Processor. The first 'PUT /v1/sys/init' \
            initialises it and returns the only root token; later starts unseal by themselves on the same VM. \
            Config file (JSON; unknown keys are errors):
              {"listener": {"address": "127.0.0.1:8200", "tls_disable": true},
               "storage": {"path": "/var/lib/vhsm"},
               "seal": "sev-guest"}
            TLS is not in this build yet: config mode requires "tls_disable": true.
            """)

    @Flag(help: "Dev mode: in-memory, unsealed, HTTP on 127.0.0.1:8200, root token printed.") var dev = false
    @Option(help: "The dev root token (default: random).") var devRootTokenId: String?
    @Option(help: "Listen address in dev mode.") var devListenAddress = "127.0.0.1:8200"
    @Option(help: "Config mode: a JSON configuration file.") var config: String?
    @Option(help: "Audit every request to this file (JSON lines, secrets HMAC'd); overrides the config's audit_file.")
    var auditFile: String?

    func validate() throws {
        guard dev != (config != nil) else { throw ValidationError("give exactly one of --dev and --config FILE") }
    }

    func run() async throws {
        var logger = Logger(label: "vhsmd")
        logger.logLevel = .info
        let runtime: Runtime
        let address: (String, Int)
        var auditPath = auditFile
        if dev {
            address = try Self.address(devListenAddress, loopbackOnly: true)
            let storage = try DevStorage.make()
            let services = try await Services.open(storage)
            let tokens = services.tokens
            let rootEntry = TokenStore.Entry(
                accessor: TokenStore.newToken(prefix: ""), policies: ["root"], displayName: "root",
                creationTime: Date(), ttl: nil, explicitMaxTTL: 0, renewable: false, numUses: 0, meta: [:],
                parent: nil, orphan: true, path: "auth/token/root")
            let rootToken = try await tokens.create(id: devRootTokenId, entry: rootEntry)
            try await services.mounts.enable(
                path: "secret/", type: "kv", description: "key/value secret storage", options: ["version": .string("2")]
            )
            runtime = Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services)
            // The root token is printed once on the console, as 'bao server -dev' does; it is never logged.
            print(
                """
                vhsmd \(ServerState.version) in DEV mode: in-memory state, unsealed, plain HTTP. Do not use in production.
                  address:    http://\(address.0):\(address.1)
                  root token: \(rootToken)
                """)
        } else {
            let settings = try ServerConfig.load(config!)
            auditPath = auditPath ?? settings.auditFile
            address = try Self.address(settings.address, loopbackOnly: false)
            let backend: SQLiteBackend
            do { backend = try SQLiteBackend(directory: settings.dataDirectory) } catch {
                throw ConfigError("cannot open the data directory \(settings.dataDirectory): \(error)")
            }
            let seal = try BarrierSeal.provider(settings.seal, directory: settings.dataDirectory)
            do {
                runtime = try Runtime(barrier: Barrier(backend: backend), seal: seal, storageType: "sqlite")
            } catch {
                throw ConfigError(
                    "the '\(settings.seal)' seal does not open \(settings.dataDirectory): \(error). Was it sealed on "
                        + "another chip, with another measurement or policy?")
            }
            try await runtime.start()
            let state = await runtime.state
            print(
                """
                vhsmd \(ServerState.version): data \(settings.dataDirectory), seal \(settings.seal), \
                \(state.initialized ? "unsealed" : "not initialised: PUT /v1/sys/init"), plain HTTP on \
                \(address.0):\(address.1)
                """)
        }
        var audit = AuditBroker()
        if let auditPath {
            do { audit = AuditBroker(devices: [try AuditDevice(filePath: auditPath)]) } catch {
                throw ConfigError("cannot open the audit log: \(error)")
            }
        }
        let app = buildApplication(
            core: VaultCore(runtime: runtime, audit: audit), host: address.0, port: address.1, logger: logger)
        try await app.runService()
    }

    static func address(_ text: String, loopbackOnly: Bool) throws -> (String, Int) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else {
            throw ValidationError("listen address '\(text)' must be HOST:PORT, e.g. 127.0.0.1:8200")
        }
        let host = String(parts[0])
        if loopbackOnly, !["127.0.0.1", "localhost", "::1"].contains(host) {
            throw ValidationError("dev mode serves plain HTTP and listens on loopback only")
        }
        return (host, port)
    }
}

/// The config file, checked against an allow-list of keys.
struct ServerConfig {
    var address: String
    var dataDirectory: String
    var seal: String
    var auditFile: String?

    static func load(_ path: String) throws -> ServerConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError("cannot read \(path)") }
        let root: JSONValue
        do { root = try JSONValue.parse(Array(data)) } catch { throw ConfigError("\(path) is not JSON: \(error)") }
        guard case .object(let top) = root else { throw ConfigError("\(path) must hold a JSON object") }
        try allow(top, ["listener", "storage", "seal", "audit_file"], in: path)
        guard case .object(let listener)? = top["listener"], case .object(let storage)? = top["storage"] else {
            throw ConfigError("\(path) needs \"listener\" and \"storage\" objects")
        }
        try allow(listener, ["address", "tls_disable", "tls_cert_file", "tls_key_file"], in: path + " listener")
        try allow(storage, ["path"], in: path + " storage")
        guard listener["tls_disable"] == .bool(true) else {
            throw ConfigError("TLS is not available in this build yet: set \"listener\": {\"tls_disable\": true}")
        }
        guard case .string(let seal)? = top["seal"] else {
            throw ConfigError("\(path) needs \"seal\": \"sev-guest\" (or \"emulator:SOCKET\" in test builds)")
        }
        var address = "127.0.0.1:8200"
        if case .string(let value)? = listener["address"] { address = value }
        var directory = SQLiteBackend.defaultDirectory
        if case .string(let value)? = storage["path"] { directory = value }
        var auditFile: String?
        if case .string(let value)? = top["audit_file"] { auditFile = value }
        return ServerConfig(address: address, dataDirectory: directory, seal: seal, auditFile: auditFile)
    }

    private static func allow(_ object: [String: JSONValue], _ keys: Set<String>, in place: String) throws {
        if let unknown = object.keys.first(where: { !keys.contains($0) }) {
            throw ConfigError("\(place): unknown key \"\(unknown)\" (known: \(keys.sorted().joined(separator: ", ")))")
        }
    }
}

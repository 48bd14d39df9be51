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
            This build serves dev mode only, like 'bao server -dev': in-memory state, unsealed, plain HTTP on \
            loopback, a root token printed at start. Hardware-sealed storage, TLS and the config file arrive with \
            the rest of issue 4; until then vhsmd refuses to start without --dev.
            """)

    @Flag(help: "Dev mode: in-memory, unsealed, HTTP on 127.0.0.1:8200, root token printed.") var dev = false
    @Option(help: "The dev root token (default: random).") var devRootTokenId: String?
    @Option(help: "Listen address in dev mode.") var devListenAddress = "127.0.0.1:8200"

    func run() async throws {
        guard dev else {
            throw ValidationError(
                "only --dev is available in this build: sealed storage and TLS are not implemented yet (see the README)"
            )
        }
        let parts = devListenAddress.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else {
            throw ValidationError("--dev-listen-address must be HOST:PORT, e.g. 127.0.0.1:8200")
        }
        let host = String(parts[0])
        guard ["127.0.0.1", "localhost", "::1"].contains(host) else {
            throw ValidationError("dev mode serves plain HTTP and listens on loopback only")
        }
        var logger = Logger(label: "vhsmd")
        logger.logLevel = .info
        let storage = try DevStorage.make()
        let tokens = try TokenStore(storage: storage)
        let rootEntry = TokenStore.Entry(
            accessor: TokenStore.newToken(prefix: ""), policies: ["root"], displayName: "root",
            creationTime: Date(), ttl: nil, explicitMaxTTL: 0, renewable: false, numUses: 0, meta: [:], parent: nil,
            orphan: true, path: "auth/token/root")
        let rootToken = try await tokens.create(id: devRootTokenId, entry: rootEntry)
        let mounts = MountTable(storage: storage)
        try await mounts.enable(
            path: "secret/", type: "kv", description: "key/value secret storage", options: ["version": .string("2")])
        let core = VaultCore(
            state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
            tokens: tokens, mounts: mounts)
        let app = buildApplication(core: core, host: host, port: port, logger: logger)
        // The root token is printed once on the console, as 'bao server -dev' does; it is never logged.
        print(
            """
            vhsmd \(ServerState.version) in DEV mode: in-memory state, unsealed, plain HTTP. Do not use in production.
              address:    http://\(host):\(port)
              root token: \(rootToken)
            """)
        try await app.runService()
    }
}

import ArgumentParser
import AttestedTLS
import FoundationEssentials
import Glibc
import Hummingbird
import Logging
import NIOCore
import SNP
import SNPGuest
import Sealing
import ServiceLifecycle
import StrictJSON
import Synchronization
import UnixSignals

/// vhsmd's entry point, called by the `vhsmd` executable and by the initramfs's multi-call `vhsm-guest` when it
/// runs as `vhsmd`.
public enum VHSMDProgram {
    public static func main() async { await VHSMD.start() }
    /// The host `vhsmd`: config mode may also run as one node of a cluster on PostgreSQL.
    package static func main(cluster: any ClusterDriver) async {
        ClusterDrivers.postgresql = cluster
        await VHSMD.start()
    }
}

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
            Config file (JSON; unknown keys are errors; a line whose first non-blank character is # is a comment):
              {"listener": {"address": "0.0.0.0:8200",
                            "tls_cert_file": "/etc/vhsm/tls.crt", "tls_key_file": "/etc/vhsm/tls.key"},
               "storage": {"path": "/var/lib/vhsm"},
               "seal": "sev-guest", "seal_mode": "measurement", "min_tcb": "0300000000000873", "allow_smt": false,
               "audit_file": "/var/lib/vhsm/audit.log",
               "operator_key": "-----BEGIN PUBLIC KEY-----\\n...\\n-----END PUBLIC KEY-----\\n",
               "api_addr": "https://vhsm.example.com:8200"}
            api_addr (optional, Vault's key) is the URL clients reach vhsmd at; without it, the listener's URL. \
            It is the default issuer of identity tokens.
            operator_key (optional; a PEM P-384 or X25519 public key, in the guest the operator's recovery key) \
            closes the first-boot race for root: 'PUT /v1/sys/init' then answers no root_token but \
            root_token_sealed (the token HPKE-sealed to the key, an armored VHSM ROOT TOKEN blob) and \
            operator_key_sha256, and the unauthenticated 'PUT /v1/sys/generate-root/operator' mints a new root \
            token, also answered only sealed (it revokes the previous one it minted if that was never used). \
            'vhsm operator init|generate-root|open --key operator.pem' opens them.
            seal_mode binds the barrier like the LUKS volume: measurement (default), platform or image. Every start \
            refuses a launch whose guest policy allows DEBUG or MIGRATE_MA, or SMT unless allow_smt is true, or \
            whose COMMITTED_TCB is below min_tcb (TCB_VERSION hex in report order); the TCB pinned on first use \
            is COMMITTED_TCB.
            Listener limits (optional "listener" keys, Vault's names where Vault has one; durations are seconds or \
            Go durations such as "30s"): max_request_size (bytes, default 33554432: KV, transit and \
            sys/wrapping/wrap bodies), max_sys_request_size (default 1048576: other sys/ and auth/ bodies; the \
            unauthenticated paths take 65536), max_connections (default 1024; one more is closed on accept), \
            http_read_header_timeout (default 10: a request head, and a new connection's first head including the \
            TLS handshake), http_read_timeout (default 30: a whole request from its first byte), \
            http_idle_timeout (default 300: a keep-alive connection waiting for its next request).
            Config mode serves HTTPS: with the given certificate chain (PEM, leaf first) and key, or, without \
            them, with a self-signed P-256 certificate made on first start and kept in DATA/tls/ (its SHA-256 \
            fingerprint is printed at every start; clients trust DATA/tls/cert.pem or pin the fingerprint). \
            The self-signed certificate is valid for a year; a start within 30 days of its expiry replaces it and \
            prints the old and the new fingerprint (remove DATA/tls/ and restart to replace it at will). \
            "tls_disable": true serves plain HTTP. HTTPS is TLS 1.3, or TLS 1.2 with ECDHE and AES-GCM or \
            ChaCha20-Poly1305 only. An IPv6 listen address is written in brackets: "[::]:8200", "[::1]:8200".

            A cluster (high availability on a shared PostgreSQL, the host vhsmd only): "storage": {"path": \
            "/var/lib/vhsm", "postgresql": {"connection_url": "postgres://vhsm@db:5432/vhsm?sslmode=require", \
            "table": "vhsm_kv_store", "ha_table": "vhsm_ha_locks", "max_connections": 8, "lease_ttl": "3s", \
            "renew_interval": "500ms", "retry_interval": "250ms"}} with "node_id" (unique), "cluster_name" and \
            "api_addr" (required). The database holds barrier ciphertext under hidden path names; storage.path keeps \
            this node's seal.json and certificate. One node holds the lease row (by the database's clock) and \
            serves; standbys answer sys/health 429, sys/leader and sys/seal-status, and 307 everything else to the \
            active node's api_addr. PUT sys/step-down (sudo) hands the lease on. The first node answers sys/init; \
            another node starts sealed until 'vhsm operator recover' releases the cluster's root key to it, then \
            keeps its own member entry and unseals by itself. With "join": "https://HOST:PORT" (another node), a node \
            without a member entry joins by attestation instead: it verifies the sponsor by attested TLS, proves its \
            own launch with a fresh report (POST /v1/sys/cluster/join/nonce, then /v1/sys/cluster/join) and receives \
            the root key HPKE-sealed to an ephemeral key; the sponsor admits its own MEASUREMENT (or ID key) unless \
            PUT /v1/sys/cluster/join-policy (sudo; the sev-snp role vocabulary) says otherwise. \
            "cluster_trusted_roots": a PEM file of ARKs trusted beyond AMD's for joins (an emulator's).

            attestation_certificates (optional): a PEM file of the certificates GET /v1/sys/attestation serves \
            when the host supplies no certificate table with reports: the VCEK or VLEK first, then ASK or ASVK, \
            then ARK; checked at start against this launch's report.
            Attested TLS: GET /v1/sys/attestation?nonce=<64 hex digits> (no token; sealed or not) answers a fresh \
            SEV-SNP report whose REPORT_DATA is SHA-512("vhsm-attested-tls-v1" || nonce || SHA-256(SPKI of the \
            served leaf certificate)), at most 10 per second (bursts of 10, 4 waiting; beyond: 429 with \
            Retry-After). The self-signed certificate carries the same evidence over an all-zero nonce in the \
            non-critical extension 1.3.9903.1.1, and is re-issued for the same key when a start finds another \
            measurement, TCB or chip.
            Workload login: POST /v1/sys/auth/<path> {"type": "sev-snp"} enables an auth method at auth/<path>/ \
            (config, role/:name); a VM draws POST auth/<path>/nonce and logs in with POST auth/<path>/login \
            {role, nonce, report, certificates, public_key?, wrap_to_public_key?} (no token): REPORT_DATA = \
            SHA-512("vhsm-login-v1" || nonce || SHA-256(public_key SPKI) or 32 zero bytes || SHA-256(SPKI of the \
            served certificate), 32 zero bytes over plain HTTP). With "wrap_to_public_key": true and a P-384 or X25519 \
            public_key, the answer's auth is null and data is {sealed_auth: base64(enc || ciphertext), suite, info: \
            "vhsm/login/auth/v1"}: the auth JSON sealed by HPKE base mode to public_key, AAD the 32 nonce bytes.
            Identity tokens (Vault's paths): identity/oidc/key/:name (ES256 default, RS256..512, ES384, ES512, \
            EdDSA; rotation_period, verification_ttl, allowed_client_ids; LIST identity/oidc/key; POST \
            identity/oidc/key/:name/rotate), identity/oidc/role/:name (key, ttl, client_id = aud; LIST), \
            identity/oidc/config (issuer; default api_addr), GET identity/oidc/token/:role (a JWT for the calling \
            token: iss, sub, aud, iat, nbf, exp, and snp for an auth/sev-snp login), and without a token GET \
            identity/oidc/.well-known/openid-configuration and identity/oidc/.well-known/keys (JWKS).

            Metrics: GET /v1/sys/metrics?format=prometheus (a token with read on sys/metrics). OpenAPI 3 document \
            of what this server serves: GET /v1/sys/internal/specs/openapi. With NOTIFY_SOCKET set (systemd \
            Type=notify), READY=1 is sent once the listener accepts connections. SIGTERM or SIGINT stop it \
            gracefully: in-flight requests finish, storage is closed. SIGHUP reopens the audit log (logrotate: \
            rename the file, then send SIGHUP; new lines go to a new file at the configured path).

            \(exitCodes)
            """,
        version: Release.version)

    /// What `vhsmd` exits with, stated in its --help and the README.
    static let exitCodes = """
        Exit codes: 0 stopped cleanly on SIGTERM or SIGINT (after 'vhsmd: stopped'); 1 the start was refused or \
        failed (one line 'vhsmd: ...' naming the file, setting or device, e.g. a busy address, a configuration \
        error, a seal that cannot get a report or does not open the data directory; no banner and no root token \
        are printed), or serving failed; 2 usage error (one line, and a second naming 'vhsmd --help').
        """

    /// Parses, runs, and turns a failure into one line on stderr and the documented exit code.
    static func start() async -> Never {
        let command: VHSMD
        do {
            command = try parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            // --help and --generate-completion-script: printed as ArgumentParser prints them, exit 0.
            if exitCode(for: error) == .success { exit(withError: error) }
            let text = message(for: error).split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let line =
                text.first.map { $0.isUppercase && text.dropFirst().first?.isLowercase == true } == true
                ? text.prefix(1).lowercased() + text.dropFirst() : text
            complain("vhsmd: \(line)\nvhsmd: see 'vhsmd --help'")
            Glibc.exit(2)
        }
        do {
            try await command.run()
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            complain("vhsmd: \(message(for: error))")
            Glibc.exit(1)
        }
        Glibc.exit(0)
    }

    @Flag(help: "Dev mode: in-memory, unsealed, HTTP on 127.0.0.1:8200, root token printed.") var dev = false
    @Option(help: "The dev root token (default: random).") var devRootTokenId: String?
    @Option(help: "Listen address in dev mode.") var devListenAddress = "127.0.0.1:8200"
    @Option(help: "Config mode: a JSON configuration file.") var config: String?
    @Option(help: "Audit every request to this file (JSON lines, secrets HMAC'd); overrides the config's audit_file.")
    var auditFile: String?
    @Option(
        name: .customLong("barrier-key-fd"),
        help: "Set by vhsm-init: read the barrier root keys from this inherited descriptor instead of the device.")
    var barrierKeyFD: Int32?
    @Option(help: "Set by vhsm-init: the report broker's socket, vhsmd's only way to the Secure Processor.")
    var reportSocket: String?

    func validate() throws {
        guard dev != (config != nil) else { throw ValidationError("give exactly one of --dev and --config FILE") }
        guard (barrierKeyFD == nil) == (reportSocket == nil) else {
            throw ValidationError("--barrier-key-fd and --report-socket come together (vhsm-init sets both)")
        }
        if barrierKeyFD != nil, dev { throw ValidationError("--barrier-key-fd applies to config mode only") }
    }

    func run() async throws {
        // The handed keys first: the descriptor is read and closed before anything else runs.
        let handoff = try barrierKeyFD.map { (fd) throws(ConfigError) -> BarrierHandoff in
            do throws(BarrierHandoffError) { return try BarrierHandoff.read(descriptor: fd) } catch {
                throw ConfigError("\(error)")
            }
        }
        var logger = Logger(label: "vhsmd")
        logger.logLevel = .info
        let runtime: Runtime
        let address: (String, Int)
        var auditPath = auditFile
        var tls: TLSIdentity?
        var limits = ListenerLimits()
        var attestation = AttestationEndpoint.devMode
        var apiAddress = APIAddress()
        var clusterStore: (any ClusterStore)?
        var clusterJoin: ClusterJoinSponsor?
        var storageExecutor: BlockingTaskExecutor?
        // What vhsmd says it serves (and, in dev mode, the root token) is printed once the listener is bound, so a
        // start that fails prints only its failure.
        var startBanner: @Sendable (_ url: String) -> [String] = { _ in [] }
        if dev {
            address = try Self.address(devListenAddress, loopbackOnly: true)
            let storage = try DevStorage.make()
            let services = try Services.open(storage)
            let tokens = services.tokens
            // As `bao server -dev` makes it: through the token store's create path, so it reads back as such.
            let rootEntry = TokenStore.Entry(
                accessor: TokenStore.newToken(prefix: ""), policies: ["root"], displayName: "token",
                creationTime: Date(), ttl: nil, explicitMaxTTL: 0, renewable: false, numUses: 0, meta: [:],
                parent: nil, orphan: true, path: "auth/token/create")
            let rootToken = try tokens.create(id: devRootTokenId, entry: rootEntry)
            try services.mounts.enable(
                path: "secret/", type: "kv", description: "key/value secret storage", options: ["version": .string("2")]
            )
            runtime = Runtime(
                state: ServerState(initialized: true, sealed: false, sealType: "dev", storageType: "inmem"),
                services: services)
            // The root token is printed once on the console, as 'bao server -dev' does; it is never logged.
            startBanner = { url in
                [
                    """
                    vhsmd \(ServerState.version) in DEV mode: in-memory state, unsealed, plain HTTP. Do not use in production.
                      address:    \(url)
                      root token: \(rootToken)
                    """
                ]
            }
        } else {
            let settings = try ServerConfig.load(config!)
            apiAddress = APIAddress(configured: settings.apiAddress)
            auditPath = auditPath ?? settings.auditFile
            limits = settings.limits
            address = try Self.address(settings.address, loopbackOnly: false)
            let backend: any StorageBackend
            if handoff == nil {
                // The seal's device answers before anything is created, so a refused start leaves no database behind
                // (a wrong build, a dead emulator socket, a missing /dev/sev-guest).
                let device = try BarrierSeal.device(settings.seal)
                do { _ = try device.attestationReport(ReportRequest()) } catch {
                    throw ConfigError(
                        "the '\(settings.seal)' seal cannot get an attestation report from \(device.name): \(error); "
                            + "nothing was created in \(settings.dataDirectory)")
                }
            }
            if let cluster = settings.cluster {
                // Twice the database connections: every connection busy, and as many tasks again doing the rest.
                storageExecutor = BlockingTaskExecutor(threads: 2 * cluster.postgresql.maxConnections)
                guard handoff == nil else {
                    throw ConfigError(
                        "a node of a cluster (storage.postgresql) runs as the host vhsmd binary; vhsm-init's handoff "
                            + "(--barrier-key-fd) serves a single node on its sealed volume")
                }
                guard let driver = ClusterDrivers.postgresql else {
                    throw ConfigError(
                        "this vhsmd (the initramfs's vhsm-guest) has no PostgreSQL driver: storage.postgresql needs "
                            + "the vhsmd binary (swift build --product vhsmd)")
                }
                try Self.createNodeDirectory(settings.dataDirectory)
                let store: any ClusterStore
                do { store = try await driver.open(cluster) } catch {
                    throw ConfigError("cannot open the cluster's database: \(error)")
                }
                clusterStore = store
                backend = store.storage
            } else {
                do { backend = try SQLiteBackend(directory: settings.dataDirectory) } catch {
                    throw ConfigError("cannot open the data directory \(settings.dataDirectory): \(error)")
                }
            }
            let seal: any SealProvider
            var privileges: String?
            if let handoff, let reportSocket {
                // vhsm-init derived the keys; vhsmd holds no device and its reports come from the broker.
                do throws(BarrierHandoffError) {
                    try handoff.check(
                        setting: settings.seal, mode: settings.sealMode, directory: settings.dataDirectory)
                } catch { throw ConfigError("\(error)") }
                let device = ProcessPrivileges.devicePath(seal: settings.seal)
                guard let denied = ProcessPrivileges.openProbe(device) else {
                    throw ConfigError(
                        "vhsmd was handed its barrier key but can still open the Secure Processor's device \(device): "
                            + "vhsm-init must run it as an unprivileged user (handoff.user) with the device mode 0600")
                }
                seal = handoff.pinnedProvider(name: settings.seal)
                privileges =
                    "\(ProcessPrivileges.current().description); barrier key from vhsm-init (fd \(barrierKeyFD!)), "
                    + "reports from \(reportSocket), \(device) not accessible (\(denied))"
            } else {
                seal = try BarrierSeal.provider(
                    settings.seal, mode: settings.sealMode, requirements: settings.sealing,
                    directory: settings.dataDirectory, warn: { announce($0) })
            }
            let clusterSeal = try settings.cluster.map { cluster in
                try Self.clusterSeal(seal, setting: settings.seal, cluster: cluster, backend: backend)
            }
            let barrier = Barrier(backend: backend)
            if let cluster = settings.cluster, let clusterSeal {
                // Any unsealed node sponsors joins: the default policy admits its own launch.
                let launch: AttestationReport
                do { launch = try BarrierSeal.device(settings.seal).attestationReport(ReportRequest()) } catch {
                    throw ConfigError("the '\(settings.seal)' seal cannot get this launch's report: \(error)")
                }
                clusterJoin = ClusterJoinSponsor(
                    launch: ClusterJoinSponsor.Launch(launch),
                    verifier: ClusterJoinSponsor.verifier(trustedRoots: settings.clusterTrustedRoots))
                if let url = settings.join, try clusterSeal.members.entry() == nil, try barrier.isInitialized {
                    try await Self.join(
                        url: url, cluster: cluster, seal: clusterSeal, barrier: barrier, launch: launch,
                        settings: settings,
                        evidence: EvidenceSource(
                            device: try BarrierSeal.device(settings.seal),
                            configuredCertificates: settings.attestationCertificates))
                }
            }
            do {
                // With an operator key, a store this launch cannot open waits sealed for the operator's recovery.
                let recovery = try settings.operatorKey.map { _ in
                    if let cluster = settings.cluster {
                        return try Self.clusterRecovery(settings.seal, cluster: cluster)
                    }
                    if let handoff, let reportSocket {
                        return BarrierSeal.recovery(
                            handoff: handoff, device: ReportBrokerClient(path: reportSocket), setting: settings.seal,
                            directory: settings.dataDirectory)
                    }
                    return try BarrierSeal.recovery(
                        settings.seal, mode: settings.sealMode, requirements: settings.sealing,
                        directory: settings.dataDirectory)
                }
                runtime = try Runtime(
                    barrier: barrier, seal: clusterSeal ?? seal,
                    storageType: settings.cluster == nil ? "sqlite" : "postgresql", operatorKey: settings.operatorKey,
                    recovery: recovery, clustered: settings.cluster != nil, clusterName: settings.cluster?.clusterName)
            } catch let error as Runtime.RecoveryUnavailable {
                throw ConfigError("the '\(settings.seal)' seal does not open \(settings.dataDirectory): \(error)")
            } catch BarrierError.wrongRootKey {
                throw ConfigError(Self.sealedElsewhere(settings))
            } catch {
                throw ConfigError("the '\(settings.seal)' seal does not open \(settings.dataDirectory): \(error)")
            }
            try runtime.start()
            let state = runtime.state
            // Attested TLS: reports from the broker under vhsm-init, else from the seal's device.
            let reports: any GuestDevice =
                if let reportSocket, handoff != nil {
                    ReportBrokerClient(path: reportSocket)
                } else {
                    try BarrierSeal.device(settings.seal)
                }
            let source = EvidenceSource(device: reports, configuredCertificates: settings.attestationCertificates)
            switch settings.tls {
            case .disabled: tls = nil
            case .files(let certificate, let key):
                tls = try TLSIdentity.load(certificateFile: certificate, keyFile: key)
            case .selfSigned:
                tls = try TLSIdentity.selfSigned(
                    directory: settings.dataDirectory, host: address.0,
                    evidence: { spkiSHA256 in
                        try source.evidence(nonce: AttestedTLSBinding.certificateNonce, spkiSHA256: spkiSHA256)
                    })
            }
            let notices: [String]
            (attestation, notices) = try Self.attestation(tls: tls, source: source)
            for notice in notices { announce(notice) }
            let transport =
                tls.map {
                    "HTTPS (\($0.origin.rawValue) \($0.certificatePath), SHA-256 fingerprint \($0.fingerprint), "
                        + "valid until \(TransitTime.rfc3339($0.validUntil)))"
                } ?? "plain HTTP (tls_disable)"
            for notice in tls?.notices ?? [] { announce(notice) }
            let rootTokens =
                settings.operatorKey.map {
                    "sealed to operator key \(SealedRootToken.hex($0.fingerprint)) (SHA-256 of its "
                        + "SubjectPublicKeyInfo); open with 'vhsm operator init'"
                } ?? "in the clear (no operator_key)"
            let status =
                if let pending = runtime.pendingRecovery {
                    "SEALED: this launch's seal does not open it (\(pending.cause)); waiting for the operator: vhsm "
                        + "operator recover URL --key OPERATOR_KEY --measurement "
                        + Hex.encode(pending.request.report.measurement)
                } else {
                    state.initialized ? "unsealed" : "not initialised: PUT /v1/sys/init"
                }
            var banner: [String] = []
            if let cluster = settings.cluster {
                banner.append(
                    "vhsmd: node \(cluster.nodeID) of cluster \(cluster.clusterName) on PostgreSQL (lease "
                        + "\(cluster.postgresql.leaseTTL), renewed every \(cluster.postgresql.renewInterval)); a standby "
                        + "until it holds the lease; api_addr \(cluster.apiAddress)")
            }
            banner.append(
                """
                vhsmd \(ServerState.version): data \(settings.dataDirectory), seal \(settings.seal), \
                \(status)
                  listener: \(Self.display(address)), \(transport)
                  root tokens: \(rootTokens)
                """)
            if let spkiSHA256 = attestation.spkiSHA256 {
                banner.append(
                    "  attestation: GET /v1/sys/attestation?nonce=HEX binds SPKI SHA-256 \(Hex.encode(spkiSHA256)), "
                        + "reports from \(source.name)"
                        + (tls?.origin == .given ? " (the operator's certificate's key)" : ""))
            }
            if let privileges { banner.append("  privileges: \(privileges)") }
            startBanner = { [banner] _ in banner }
        }
        var audit = AuditBroker()
        if let auditPath {
            do { audit = AuditBroker(devices: [try AuditDevice(filePath: auditPath)]) } catch {
                throw ConfigError("cannot open the audit log: \(error)")
            }
        }
        let scheme = tls == nil ? "http" : "https"
        // SIGHUP reopens the audit log (logrotate: rename, then HUP), as Vault does, instead of ending vhsmd: the
        // handler is installed here, before the listener is ready.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let apiAddressOnceBound = apiAddress
        let banner = startBanner
        let serving = ShutdownAnnouncer.Serving()
        let app = try buildApplication(
            core: VaultCore(
                runtime: runtime, audit: audit, metrics: ServiceMetrics(), attestation: attestation,
                servedSPKISHA256: Self.servedSPKISHA256(tls), apiAddress: apiAddress, clusterJoin: clusterJoin,
                forwarder: tls == nil
                    ? nil
                    : clusterJoin.map { ClusterForwarder(measurement: $0.launch.measurement, verifier: $0.verifier) },
                storageExecutor: storageExecutor),
            host: address.0,
            port: address.1, logger: logger, tls: tls?.configuration, limits: limits,
            onServerRunning: { channel in
                // The bound port: the configured one, or the one the kernel chose for port 0.
                let url = "\(scheme)://\(Self.display((address.0, channel.localAddress?.port ?? address.1)))"
                // The identity tokens' default issuer, unless the configuration names api_addr.
                apiAddressOnceBound.bound(url)
                for line in banner(url) { announce(line) }
                serving.set()
                announce("vhsmd: ready on \(url)")
                if let problem = ServiceNotification.send("READY=1\nSTATUS=serving \(url)\nMAINPID=\(getpid())") {
                    complain("vhsmd: \(problem)")
                }
            })
        let lease = clusterStore.map { store in
            let lease = store.lease(events: runtime, mayCompete: { runtime.mayCompete })
            runtime.attach(lease)
            return lease
        }
        let group = ServiceGroup(
            configuration: .init(
                services: (lease.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                    .init(service: app), .init(service: ShutdownAnnouncer(serving: serving)),
                    .init(service: HangupHandler(signals: hangups, audit: audit)),
                    .init(service: TransitAutoRotation(runtime: runtime)),
                    .init(service: IdentityKeyRotation(runtime: runtime)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch {
            await clusterStore?.close()
            let setting = dev ? "--dev-listen-address HOST:PORT" : "\"listener\": {\"address\": …} in \(config ?? "")"
            throw Self.listenFailure(error, address: Self.display(address), setting: setting) ?? error
        }
        await clusterStore?.close()
        announce("vhsmd: stopped")
    }

    /// A data directory this launch's key does not open: what `seal.json` says it was sealed to against this launch
    /// (expected vs actual), and what to do.
    static func sealedElsewhere(_ settings: ServerConfig) -> String {
        let directory = settings.dataDirectory
        var sentence =
            "the '\(settings.seal)' seal does not open \(directory): this launch's key is not the one it was sealed with"
        let pin = FileManager.default.contents(atPath: BarrierSeal.pinPath(directory)).flatMap {
            try? JSONDecoder().decode(BarrierSeal.Pin.self, from: $0)
        }
        let report = try? BarrierSeal.device(settings.seal).attestationReport(ReportRequest())
        if let pin {
            sentence +=
                ". \(BarrierSeal.pinPath(directory)) binds \(pin.fields.joined(separator: ", ")) at TCB \(pin.tcb)"
            if let report {
                let differences = pin.differences(from: report)
                sentence +=
                    differences.isEmpty
                    ? (pin.chipID == nil
                        ? " (it records no chip or measurement: written by an older vhsmd)"
                        : "; chip and measurement match this launch, so the policy, the TCB or the image's ID differs")
                    : "; " + differences.joined(separator: "; ")
            }
        }
        return sentence
            + ". Start vhsmd on the chip and image it was sealed on, or recover the store with the operator key "
            + "(operator_key, then vhsm operator recover)"
    }

    /// Where and why `bytes` are not JSON, as an editor counts: "line L, column C: reason" (from 1; columns in
    /// characters).
    static func syntaxProblem(_ bytes: [UInt8]) -> String {
        do {
            _ = try JSON.parse(bytes)
            return "it does not parse as JSON vhsmd reads (duplicate keys, or nesting deeper than 64?)"
        } catch {
            let before = bytes.prefix(min(error.offset, bytes.count))
            let lineStart = before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let line = before.count(where: { $0 == UInt8(ascii: "\n") }) + 1
            let column = String(decoding: before[lineStart...], as: UTF8.self).count + 1
            return "line \(line), column \(column): \(error.reason)"
        }
    }

    /// A listener that could not bind, as a sentence that names the address and what to do (nil: another error).
    static func listenFailure(_ error: any Error, address: String, setting: String) -> ConfigError? {
        guard let io = error as? IOError else { return nil }
        let why: String
        switch io.errnoCode {
        case EADDRINUSE: why = "the address is already in use (another vhsmd, Vault or OpenBao?); stop that server or"
        case EACCES: why = "permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE); run so, or"
        case EADDRNOTAVAIL: why = "no interface of this machine has that address;"
        default: return nil
        }
        return ConfigError("cannot listen on \(address): \(why) choose another address with \(setting)")
    }

    /// A cluster node's directory (seal.json, the self-signed certificate): mode 0700; the data is in the database.
    static func createNodeDirectory(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ConfigError("cannot create the node directory \(directory): \(error)")
        }
    }

    /// A cluster node's root key source: the cluster root key from its member entry, opened with `seal`'s key; the
    /// entry is tagged with this launch's chip id and measurement (from a report).
    static func clusterSeal(
        _ seal: any SealProvider, setting: String, cluster: ClusterSettings, backend: any StorageBackend
    ) throws -> ClusterSeal {
        let report: AttestationReport
        do { report = try BarrierSeal.device(setting).attestationReport(ReportRequest()) } catch {
            throw ConfigError("the '\(setting)' seal cannot get an attestation report for the member entry: \(error)")
        }
        let tags = ClusterMembers.Tags(
            chipID: Hex.encode(report.chipID), measurement: Hex.encode(report.measurement))
        return ClusterSeal(
            seal: seal,
            members: ClusterMembers(
                backend: backend, nodeID: cluster.nodeID, cluster: cluster.clusterName, tags: tags))
    }

    /// The attested join of a node without a member entry (`join`): through its sponsor, verified by attested TLS
    /// over https. On failure the node does not start, unless it has an operator_key: it then waits sealed for
    /// operator recovery, as a node without `join` does.
    static func join(
        url: String, cluster: ClusterSettings, seal: ClusterSeal, barrier: Barrier, launch: AttestationReport,
        settings: ServerConfig, evidence: EvidenceSource
    ) async throws {
        if url.hasPrefix("http://") {
            announce(
                "vhsmd: WARNING: join \(url) is plain HTTP: the sponsor is not verified and the join binds no "
                    + "certificate (S = 32 zero bytes); use https:// outside tests")
        }
        announce(
            "vhsmd: node \(cluster.nodeID) has no member entry: joining cluster \(cluster.clusterName) through \(url)")
        do throws(ClusterJoinError) {
            let transport = try await ClusterJoinHTTP.connect(
                url: url, measurement: launch.measurement,
                verifier: ClusterJoinSponsor.verifier(trustedRoots: settings.clusterTrustedRoots))
            try await ClusterJoiner(nodeID: cluster.nodeID, evidence: evidence).join(
                via: transport, seal: seal, barrier: barrier)
            announce("vhsmd: node \(cluster.nodeID) joined cluster \(cluster.clusterName) through \(transport.place)")
        } catch {
            guard settings.operatorKey != nil else {
                throw ConfigError(
                    "\(error). Nothing was enrolled and this node does not start (with an operator_key it would wait "
                        + "sealed for operator recovery instead)")
            }
            complain(
                "vhsmd: \(error). Falling back to operator recovery: this node starts SEALED and waits for 'vhsm "
                    + "operator recover'")
        }
    }

    /// Operator recovery of a cluster node (the interim join): the request binds a key to this launch for the
    /// subject `cluster:NAME`, the escrow's context on every node; a released key enrolls the node (no re-pin).
    static func clusterRecovery(_ setting: String, cluster: ClusterSettings) throws -> BarrierRecovery {
        let device = try BarrierSeal.device(setting)
        let subject = "cluster:" + cluster.clusterName
        return BarrierRecovery(
            directory: subject,
            makeRequest: { publicKey in
                try RecoveryRequest.make(device: device, purpose: .barrier, subject: subject, publicKey: publicKey)
            },
            repin: { throw ConfigError("a cluster node enrolls with the released key; it is not re-pinned") })
    }

    /// S of `auth/sev-snp` logins (`AttestedLoginBinding`): the SHA-256 of the served certificate's SPKI, as the
    /// client sees it in the handshake; 32 zero bytes over plain HTTP (dev mode, `tls_disable`).
    static func servedSPKISHA256(_ tls: TLSIdentity?) -> [UInt8] {
        tls.map { AttestedTLSBinding.spkiSHA256($0.subjectPublicKeyInfo) } ?? AttestedLoginBinding.absent
    }

    /// `sys/attestation` in config mode: over HTTPS it binds the served leaf's SPKI (the self-signed one or the
    /// operator's), after a first report checks the source and the configured certificates; over plain HTTP it
    /// answers 501. Returns start notices.
    static func attestation(
        tls: TLSIdentity?, source: EvidenceSource, limits: AttestationLimits = AttestationLimits()
    ) throws(ConfigError) -> (AttestationEndpoint, [String]) {
        guard let tls else { return (.tlsDisabled, []) }
        let probe: AttestationEvidence
        do {
            probe = try source.evidence(
                nonce: AttestedTLSBinding.certificateNonce,
                spkiSHA256: AttestedTLSBinding.spkiSHA256(tls.subjectPublicKeyInfo))
        } catch {
            throw ConfigError("sys/attestation cannot be served: \(error)")
        }
        let notices = try source.check(probe).map { [$0] } ?? []
        return (AttestationEndpoint(source: source, spki: tls.subjectPublicKeyInfo, limits: limits), notices)
    }

    /// HOST:PORT, with an IPv6 address in brackets as Vault (Go's net.SplitHostPort) takes it: `0.0.0.0:8200`,
    /// `localhost:8200`, `[::1]:8200`, `[::]:8200`. Returns the host without brackets.
    static func address(_ text: String, loopbackOnly: Bool) throws -> (String, Int) {
        let form =
            "listen address '\(text)' must be HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:8200, or "
            + "[ADDRESS]:PORT for IPv6, e.g. [::1]:8200"
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[close...].hasPrefix("]:") else {
                throw ValidationError(form)
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
            guard TLSIdentity.ipAddressBytes(String(host))?.count == 16 else {
                throw ValidationError("\(form): '\(host)' in brackets is not an IPv6 address")
            }
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw ValidationError(parts.count > 2 ? "\(form) (an IPv6 address needs brackets)" : form)
            }
            (host, port) = (parts[0], parts[1])
        }
        guard !host.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port),
            (0...65_535).contains(number)
        else {
            throw ValidationError(form)
        }
        if loopbackOnly, !["127.0.0.1", "localhost", "::1"].contains(host) {
            throw ValidationError(
                "dev mode serves plain HTTP and listens on loopback only (127.0.0.1, localhost, [::1])")
        }
        return (String(host), number)
    }

    /// HOST:PORT as URLs and logs write it: an IPv6 address in brackets.
    static func display(_ address: (String, Int)) -> String {
        address.0.contains(":") ? "[\(address.0)]:\(address.1)" : "\(address.0):\(address.1)"
    }
}

/// Reopens the audit log on every SIGHUP (after logrotate renamed it): new lines go to a new file at the
/// configured path. When the new file cannot be opened, lines go on to the file open before, and a line says why.
struct HangupHandler: Service {
    let signals: UnixSignalsSequence
    let audit: AuditBroker

    func run() async throws {
        for await _ in signals.cancelOnGracefulShutdown() {
            if audit.devices.isEmpty {
                announce("vhsmd: SIGHUP: no audit log to reopen")
                continue
            }
            for device in audit.devices {
                do {
                    try device.reopen()
                    announce("vhsmd: SIGHUP: reopened the audit log \(device.filePath)")
                } catch {
                    complain("vhsmd: SIGHUP: \(error) Audit lines go on to the file that was open before.")
                }
            }
        }
    }
}

/// Sends STOPPING=1 and says so when a graceful shutdown begins (SIGTERM, SIGINT).
struct ShutdownAnnouncer: Service {
    /// Set once the listener is bound: a start that fails says only why.
    final class Serving: Sendable {
        private let bound = Atomic<Bool>(false)
        var isBound: Bool { bound.load(ordering: .relaxed) }
        func set() { bound.store(true, ordering: .relaxed) }
    }
    let serving: Serving

    func run() async throws {
        try? await gracefulShutdown()
        guard serving.isBound else { return }
        announce("vhsmd: stopping: finishing in-flight requests")
        ServiceNotification.send("STOPPING=1")
    }
}

/// The config file, checked against an allow-list of keys.
struct ServerConfig {
    enum TLS: Equatable {
        case disabled
        case files(certificate: String, key: String)
        case selfSigned
    }

    var address: String
    var dataDirectory: String
    var seal: String
    var sealMode: SealMode = .measurement
    /// `min_tcb` and `allow_smt`: what a launch must meet before the barrier is sealed or unsealed.
    var sealing = SealingRequirements()
    var auditFile: String?
    var tls: TLS
    /// `operator_key`: root tokens leave vhsmd only sealed to it.
    var operatorKey: HPKEPublicKey?
    var limits = ListenerLimits()
    /// `attestation_certificates`: DER certificates (VCEK or VLEK first) that sys/attestation serves when the host
    /// supplies no certificate table with reports.
    var attestationCertificates: [[UInt8]] = []
    /// `api_addr`: the URL clients reach vhsmd at, the default issuer of identity tokens (nil: the listener's URL).
    var apiAddress: String?
    /// `storage.postgresql` with `node_id` and `cluster_name`: this vhsmd is one node of a cluster.
    var cluster: ClusterSettings?
    /// `join`: the URL of a node of the cluster that sponsors this one's attested join when it has no member entry.
    var join: String?
    /// `cluster_trusted_roots`: PEM ARKs trusted beyond AMD's for joins (an emulator's), from a file.
    var clusterTrustedRoots: [AMDCertificate] = []

    /// The configuration without its comments: a line whose first character other than a space or a tab is `#` is
    /// emptied (its line break kept, so a syntax error's line and column are the file's). A JSON string cannot span
    /// lines, so such a line is never inside one.
    static func uncommented(_ bytes: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (number, line) in lines.enumerated() {
            if number > 0 { result.append(UInt8(ascii: "\n")) }
            let first = line.first { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            if first != UInt8(ascii: "#") { result.append(contentsOf: line) }
        }
        return result
    }

    static func load(_ path: String) throws -> ServerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read \(path): \(unreadable(path))")
        }
        let text = uncommented(Array(data))
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch {
            throw ConfigError("\(path) is not JSON: \(VHSMD.syntaxProblem(text))")
        }
        guard case .object(let top) = root else { throw ConfigError("\(path) must hold a JSON object") }
        try allow(
            top,
            [
                "listener", "storage", "seal", "seal_mode", "min_tcb", "allow_smt", "audit_file", "operator_key",
                "attestation_certificates", "api_addr", "cluster_name", "node_id", "join", "cluster_trusted_roots",
            ], in: path)
        guard case .object(let listener)? = top["listener"], case .object(let storage)? = top["storage"] else {
            throw ConfigError("\(path) needs \"listener\" and \"storage\" objects")
        }
        try allow(
            listener,
            [
                "address", "tls_disable", "tls_cert_file", "tls_key_file", "max_request_size", "max_sys_request_size",
                "max_connections", "http_read_header_timeout", "http_read_timeout", "http_idle_timeout",
            ], in: path + " listener")
        try allow(storage, ["path", "postgresql"], in: path + " storage")
        var tls = ServerConfig.TLS.selfSigned
        switch (listener["tls_disable"], listener["tls_cert_file"], listener["tls_key_file"]) {
        case (.bool(true)?, nil, nil): tls = .disabled
        case (.bool(true)?, _, _):
            throw ConfigError(
                "\(path) listener: tls_disable is true, so tls_cert_file and tls_key_file must not be set")
        case (.bool(false)?, nil, nil), (nil, nil, nil): tls = .selfSigned
        case (.bool(false)?, .string(let certificate)?, .string(let key)?),
            (nil, .string(let certificate)?, .string(let key)?):
            tls = .files(certificate: certificate, key: key)
        case (let disable, _, _) where disable != nil && disable != .bool(false):
            throw ConfigError("\(path) listener: tls_disable must be true or false")
        default:
            throw ConfigError(
                "\(path) listener: give both tls_cert_file and tls_key_file as paths, or neither (a self-signed "
                    + "certificate is made in the data directory)")
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
        var sealMode = SealMode.measurement
        if let value = top["seal_mode"] {
            guard case .string(let text) = value, let mode = SealMode(rawValue: text) else {
                throw ConfigError("\(path): seal_mode must be \"measurement\", \"platform\" or \"image\"")
            }
            sealMode = mode
        }
        var sealing = SealingRequirements()
        switch top["min_tcb"] {
        case nil, .null?: break
        case .string(let text)?:
            do { sealing.minimumTCB = try TCBVersion(hex: text) } catch {
                throw ConfigError(
                    "\(path): min_tcb must be a TCB_VERSION, 16 hex digits in report order, not '\(text)'")
            }
        default: throw ConfigError("\(path): min_tcb must be a string (16 hex digits) or null")
        }
        switch top["allow_smt"] {
        case nil: break
        case .bool(let allow)?: sealing.allowSMT = allow
        default: throw ConfigError("\(path): allow_smt must be true or false")
        }
        var operatorKey: HPKEPublicKey?
        switch top["operator_key"] {
        case nil, .null?: break
        case .string(let pem)?:
            guard let key = HPKEPublicKey(pem: pem) else {
                throw ConfigError(
                    "\(path): operator_key must be a PEM P-384 or X25519 public key (\"-----BEGIN PUBLIC KEY-----\" "
                        + "… with its newlines written \\n), e.g. the output of 'openssl pkey -in operator.pem -pubout'"
                )
            }
            operatorKey = key
        default: throw ConfigError("\(path): operator_key must be a string holding a PEM public key, or null")
        }
        var apiAddress: String?
        switch top["api_addr"] {
        case nil, .null?: break
        case .string(let text)? where IdentityOIDC.isOrigin(text.hasSuffix("/") ? String(text.dropLast()) : text):
            apiAddress = text
        default:
            throw ConfigError(
                "\(path): api_addr must be the URL clients reach vhsmd at, a scheme, host and optional port such as "
                    + "\"https://vhsm.example.com:8200\" (the identity tokens' issuer)")
        }
        var attestationCertificates: [[UInt8]] = []
        switch top["attestation_certificates"] {
        case nil, .null?: break
        case .string(let file)?: attestationCertificates = try EvidenceSource.certificates(file: file)
        default:
            throw ConfigError(
                "\(path): attestation_certificates must be the path of a PEM file (VCEK or VLEK first, then ASK or "
                    + "ASVK, then ARK), or null")
        }
        var cluster: ClusterSettings?
        switch storage["postgresql"] {
        case nil: break
        case .object(let object)?:
            let postgresql = try PostgreSQLSettings.parse(object, in: path + " storage.postgresql")
            guard let apiAddress else {
                throw ConfigError(
                    "\(path): a node of a cluster (storage.postgresql) needs api_addr, the URL standbys send clients "
                        + "to when this node is active, e.g. \"https://10.0.0.5:8200\"")
            }
            var nodeID = ""
            switch top["node_id"] {
            case .string(let text)? where ClusterDrivers.isNodeID(text): nodeID = text
            case nil:
                throw ConfigError(
                    "\(path): a node of a cluster needs node_id, unique in the cluster (letters, digits, '.', '_', "
                        + "'-'; at most 64), e.g. \"vhsm-1\"")
            default:
                throw ConfigError(
                    "\(path): node_id must be 1 to 64 letters, digits, '.', '_' or '-', e.g. \"vhsm-1\"")
            }
            var clusterName = "vhsm"
            switch top["cluster_name"] {
            case nil: break
            case .string(let text)? where ClusterDrivers.isNodeID(text): clusterName = text
            default:
                throw ConfigError("\(path): cluster_name must be 1 to 64 letters, digits, '.', '_' or '-'")
            }
            cluster = ClusterSettings(
                postgresql: postgresql, nodeID: nodeID, clusterName: clusterName, apiAddress: apiAddress)
        default:
            throw ConfigError("\(path) storage: postgresql must be an object with connection_url")
        }
        if cluster == nil,
            top["node_id"] != nil || top["cluster_name"] != nil || top["join"] != nil
                || top["cluster_trusted_roots"] != nil
        {
            throw ConfigError(
                "\(path): node_id, cluster_name, join and cluster_trusted_roots apply to a cluster only "
                    + "(storage.postgresql)")
        }
        var join: String?
        switch top["join"] {
        case nil, .null?: break
        case .string(let text)? where text.hasPrefix("https://") || text.hasPrefix("http://"):
            if text.hasPrefix("http://"), tls != .disabled {
                throw ConfigError(
                    "\(path): join is plain HTTP (\(text)) but this node serves HTTPS: a sponsor is reached over "
                        + "https:// (attested TLS); http:// is for tests with tls_disable")
            }
            join = text
        default:
            throw ConfigError(
                "\(path): join must be the URL of a node of the cluster, \"https://HOST:PORT\" (http:// only with "
                    + "tls_disable, for tests)")
        }
        var clusterTrustedRoots: [AMDCertificate] = []
        switch top["cluster_trusted_roots"] {
        case nil, .null?: break
        case .string(let file)?:
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigError("\(path): cannot read cluster_trusted_roots \(file): \(unreadable(file))")
            }
            do { clusterTrustedRoots = try AMDCertificate.all(pemEncoded: String(decoding: data, as: UTF8.self)) } catch
            {
                throw ConfigError("\(path): cluster_trusted_roots \(file) is not a PEM file of certificates: \(error)")
            }
            guard !clusterTrustedRoots.isEmpty, clusterTrustedRoots.allSatisfy({ $0.issuer == $0.subject }) else {
                throw ConfigError(
                    "\(path): cluster_trusted_roots \(file) must hold one or more self-issued PEM root certificates "
                        + "(ARKs)")
            }
        default:
            throw ConfigError("\(path): cluster_trusted_roots must be the path of a PEM file of ARKs, or null")
        }
        return ServerConfig(
            address: address, dataDirectory: directory, seal: seal, sealMode: sealMode, sealing: sealing,
            auditFile: auditFile, tls: tls, operatorKey: operatorKey,
            limits: try limits(listener, in: path + " listener"), attestationCertificates: attestationCertificates,
            apiAddress: apiAddress, cluster: cluster, join: join, clusterTrustedRoots: clusterTrustedRoots)
    }

    /// Why a file that could not be read is unreadable, as the system says it ("No such file or directory").
    static func unreadable(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return String(cString: strerror(errno)) }
        if info.st_mode & S_IFMT == S_IFDIR { return String(cString: strerror(EISDIR)) }
        guard access(path, R_OK) == 0 else { return String(cString: strerror(errno)) }
        return "it changed or vanished while it was read"
    }

    /// The listener's limits: positive whole numbers (sizes, a count) and positive durations.
    static func limits(_ listener: [String: JSONValue], in place: String) throws -> ListenerLimits {
        var limits = ListenerLimits()
        func count(_ key: String) throws -> Int? {
            guard let value = listener[key] else { return nil }
            guard case .int(let number) = value, number > 0, number <= Int64(Int32.max) else {
                throw ConfigError("\(place): \(key) must be a positive whole number, not \(value)")
            }
            return Int(number)
        }
        func seconds(_ key: String) throws -> TimeAmount? {
            guard let value = listener[key] else { return nil }
            let parsed: Int64?
            switch value {
            case .int(let number): parsed = number
            case .string(let text): parsed = JSONValue.parseDuration(text)
            default: parsed = nil
            }
            guard let parsed, parsed > 0 else {
                throw ConfigError(
                    "\(place): \(key) must be a positive number of seconds or a duration such as \"30s\", not \(value)")
            }
            return .seconds(parsed)
        }
        if let value = try count("max_request_size") { limits.maxRequestSize = value }
        if let value = try count("max_sys_request_size") { limits.maxSysRequestSize = value }
        if let value = try count("max_connections") { limits.maxConnections = value }
        if let value = try seconds("http_read_header_timeout") { limits.readHeaderTimeout = value }
        if let value = try seconds("http_read_timeout") { limits.readTimeout = value }
        if let value = try seconds("http_idle_timeout") { limits.idleTimeout = value }
        return limits
    }

    private static func allow(_ object: [String: JSONValue], _ keys: Set<String>, in place: String) throws {
        if let unknown = object.keys.first(where: { !keys.contains($0) }) {
            throw ConfigError("\(place): unknown key \"\(unknown)\" (known: \(keys.sorted().joined(separator: ", ")))")
        }
    }
}

/// Writes a console line at once, also into a file or pipe: the start lines (address, fingerprint, readiness) are
/// what supervisors and scripts wait for.
package func announce(_ text: String) {
    writeLine(text, to: STDOUT_FILENO)
}

/// Writes a line to standard error at once (problems that do not stop the service).
package func complain(_ text: String) {
    writeLine(text, to: STDERR_FILENO)
}

private func writeLine(_ text: String, to descriptor: Int32) {
    let bytes = Array((text + "\n").utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return }
        written += count
    }
}

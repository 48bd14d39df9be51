import FoundationEssentials
import HTTPTypes
import SNP

/// `sys/…`: health, seal status, init status, the mount table.
struct SysBackend: Backend {
    let state: ServerState
    /// nil for the unauthenticated paths, which never touch the mount table.
    let mounts: MountTable?
    /// nil for the unauthenticated paths.
    var services: Services? = nil
    var audit = AuditBroker()
    var metrics: ServiceMetrics? = nil

    func handle(_ request: VaultRequest, path: String) async throws(VaultError) -> VaultReply {
        try respond(request, path: path)
    }

    /// Everything `sys/` serves is answered without waiting (storage writes included).
    func respond(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply {
        switch (request.operation, path) {
        case (.read, "health"): return try health(request)
        case (.read, "seal-status"): return VaultReply(bare: .object(sealStatus))
        case (.read, "metrics"):
            guard request.query["format"] == "prometheus" else {
                throw .badRequest("vhsmd serves metrics in the Prometheus format only: add ?format=prometheus")
            }
            guard let metrics else { throw .unsupportedPath("sys/metrics") }
            metrics.setSealed(state.sealed || !state.initialized)
            return VaultReply(
                raw: .init(contentType: "text/plain; version=0.0.4; charset=utf-8", bytes: metrics.exposition()))
        case (.read, "init"): return VaultReply(bare: .object(["initialized": .bool(state.initialized)]))
        case (.read, "leader"):
            guard let ha = state.ha else {
                return VaultReply(
                    bare: .object([
                        "ha_enabled": .bool(false), "is_self": .bool(false), "leader_address": .string(""),
                        "leader_cluster_address": .string(""), "performance_standby": .bool(false),
                    ]))
            }
            // Only a leader whose lease is unexpired is named (the lease's view never keeps an expired one).
            var answer: [String: JSONValue] = [
                "ha_enabled": .bool(true), "is_self": .bool(ha.isActive),
                "leader_address": .string(ha.leader?.apiAddress ?? ""),
                "leader_cluster_address": .string(ha.leader?.apiAddress ?? ""), "performance_standby": .bool(false),
                "leader_node_id": .string(ha.leader?.nodeID ?? ""),
            ]
            if let time = ha.leader?.activeTime { answer["active_time"] = .string(time) }
            return VaultReply(bare: .object(answer))
        case (.read, "mounts"):
            guard let mounts else { throw .permissionDenied }
            let listing = mounts.list()
            return VaultReply(data: .object(listing), topLevel: listing)
        case (.read, _) where path.hasPrefix("mounts/"):
            // `mounts/<path>` is the mount's entry, `mounts/<path>/tune` its tuning; both repeated at the top level.
            guard let mounts else { throw .permissionDenied }
            let mountPath = String(path.dropFirst("mounts/".count))
            let answer =
                mountPath.hasSuffix("/tune")
                ? try mounts.tuning(path: String(mountPath.dropLast("/tune".count)))
                : try mounts.entry(path: mountPath)
            return VaultReply(data: .object(answer), topLevel: answer)
        case (.update, _) where path.hasPrefix("mounts/") && path.hasSuffix("/tune"):
            guard let mounts else { throw .permissionDenied }
            let body = request.body
            var options: [String: JSONValue]?
            if case .object(let object)? = body["options"] { options = object }
            let warning = try mounts.tune(
                path: String(path.dropFirst("mounts/".count).dropLast("/tune".count)),
                description: try body.string("description"),
                defaultLeaseTTL: try Self.leaseTTL(body, "default_lease_ttl"),
                maxLeaseTTL: try Self.leaseTTL(body, "max_lease_ttl"), options: options)
            return warning.map { .warning($0) } ?? .noContent
        case (.update, _) where path.hasPrefix("mounts/"):
            let mountPath = String(path.dropFirst("mounts/".count))
            guard !mountPath.isEmpty else { throw .unsupportedPath("sys/" + path) }
            guard let type = try request.body.string("type") else { throw .badRequest("missing type") }
            // Everything is checked before the mount exists: a refused request leaves nothing behind.
            var options: [String: JSONValue] = [:]
            switch request.body["options"] {
            case nil, .null?: break
            case .object(let object)?: options = object
            default:
                throw .badRequest(
                    "Field validation failed: error converting input for field \"options\": invalid key pair at index 0 in field \"options\""
                )
            }
            var defaultTTL: Int64 = 0
            var maxTTL: Int64 = 0
            switch request.body["config"] {
            case nil, .null?: break
            case .object(let members)?:
                defaultTTL = try Self.leaseTTL(.object(members), "default_lease_ttl") ?? 0
                maxTTL = try Self.leaseTTL(.object(members), "max_lease_ttl") ?? 0
            default: throw .badRequest("'config' must be an object")
            }
            guard let mounts else { throw .permissionDenied }
            try mounts.enable(
                path: mountPath, type: type, description: try request.body.string("description") ?? "",
                options: options, defaultLeaseTTL: defaultTTL, maxLeaseTTL: maxTTL)
            return .noContent
        case (.delete, _) where path.hasPrefix("mounts/"):
            let mountPath = MountTable.normalise(String(path.dropFirst("mounts/".count)))
            guard !MountTable.reserved.contains(mountPath) else { throw .badRequest("cannot unmount \"\(mountPath)\"") }
            try mounts?.disable(path: mountPath)
            return .noContent
        case (.read, "key-status"):
            let status = try Self.barrierStatus(services) { barrier in try barrier.keyStatus() }
            let data: [String: JSONValue] = [
                "term": .int(Int64(status.term)), "install_time": .string(TransitTime.rfc3339(status.installed)),
                "encryptions": .int(Int64(status.encryptions)),
            ]
            return VaultReply(data: .object(data), topLevel: data)
        case (.update, "rotate"):
            _ = try Self.barrierStatus(services) { barrier in try barrier.rotate() }
            return .noContent
        case (.read, "auth/token/tune"):
            guard let tokens = services?.tokens else { throw .permissionDenied }
            let tuning = tokens.tuning
            let answer: [String: JSONValue] = [
                "default_lease_ttl": .int(tuning.effectiveDefault),
                "max_lease_ttl": .int(tuning.maximum), "description": .string(tuning.description),
                "force_no_cache": .bool(false), "token_type": .string("default-service"),
            ]
            return VaultReply(data: .object(answer), topLevel: answer)
        case (.update, "auth/token/tune"):
            guard let tokens = services?.tokens else { throw .permissionDenied }
            if request.body["token_type"] != nil {
                throw .badRequest("'token_type' cannot be set for 'token' or 'ns_token' auth mounts")
            }
            try tokens.tune(
                defaultLeaseTTL: try Self.leaseTTL(request.body, "default_lease_ttl"),
                maxLeaseTTL: try Self.leaseTTL(request.body, "max_lease_ttl"),
                description: try request.body.string("description"))
            return .noContent
        case (.delete, "auth/token"), (.delete, "auth/token/"):
            throw .badRequest("token credential backend cannot be disabled")
        case (.delete, _) where path.hasPrefix("auth/"):
            // Disables the auth method and destroys its roles and configuration; nothing mounted: a no-op, as in
            // Vault.
            guard let mounts else { throw .permissionDenied }
            try mounts.disable(path: String(path.dropFirst("auth/".count)), auth: true)
            return .noContent
        case (.read, "auth/token"):
            guard let tokens = services?.tokens else { throw .permissionDenied }
            let entry = Self.tokenAuthEntry(tokens.tuning)
            return VaultReply(data: .object(entry), topLevel: entry)
        case (.read, _) where path.hasPrefix("auth/") && path.hasSuffix("/tune"):
            let authPath = String(path.dropFirst("auth/".count).dropLast("/tune".count))
            if let mount = mounts?.authMount(path: authPath) {
                var tuning = mount.tuning
                tuning["token_type"] = .string("default-service")
                return VaultReply(data: .object(tuning), topLevel: tuning)
            }
            throw .badRequest(
                "cannot fetch sysview for path \"\(MountTable.normalise(String(path.dropLast("/tune".count))))\"")
        case (.read, _) where path.hasPrefix("auth/"):
            let authPath = String(path.dropFirst("auth/".count))
            guard let mount = mounts?.authMount(path: authPath), case .object(let entry) = Self.authEntry(mount)
            else {
                throw .badRequest("No auth engine at \(MountTable.normalise(authPath))")
            }
            return VaultReply(data: .object(entry), topLevel: entry)
        case (.update, _) where path.hasPrefix("auth/") && path.hasSuffix("/tune"):
            // An auth method's lease TTLs (its tokens' default and maximum TTL) and description.
            guard let mounts else { throw .permissionDenied }
            if request.body["token_type"] != nil {
                throw .badRequest("vhsmd's sev-snp roles set token_type (token_type on the role), not the mount")
            }
            try mounts.tune(
                path: String(path.dropFirst("auth/".count).dropLast("/tune".count)),
                description: try request.body.string("description"),
                defaultLeaseTTL: try Self.leaseTTL(request.body, "default_lease_ttl"),
                maxLeaseTTL: try Self.leaseTTL(request.body, "max_lease_ttl"), options: nil, auth: true)
            return .noContent
        case (.update, _) where path.hasPrefix("auth/"):
            // sys/auth/<path>: Vault's request shape (hvac's sys.enable_auth_method): type, description, config.
            guard let mounts else { throw .permissionDenied }
            let authPath = String(path.dropFirst("auth/".count))
            guard let type = try request.body.string("type"), !type.isEmpty else {
                throw .badRequest("missing type")
            }
            var defaultTTL: Int64 = 0
            var maxTTL: Int64 = 0
            switch request.body["config"] {
            case nil, .null?: break
            case .object(let members)?:
                defaultTTL = try Self.leaseTTL(.object(members), "default_lease_ttl") ?? 0
                maxTTL = try Self.leaseTTL(.object(members), "max_lease_ttl") ?? 0
            default: throw .badRequest("'config' must be an object")
            }
            try mounts.enable(
                path: authPath, type: type, description: try request.body.string("description") ?? "", options: [:],
                defaultLeaseTTL: defaultTTL, maxLeaseTTL: maxTTL, auth: true)
            return .noContent
        case (.update, "remount"):
            guard let mounts else { throw .permissionDenied }
            guard let from = try request.body.string("from"), let to = try request.body.string("to") else {
                throw .badRequest("both 'from' and 'to' must be set")
            }
            try mounts.move(from: from, to: to)
            // Done before answering (Vault queues it): the same shape, with an id that names this move.
            let id: JSONValue = .string(RequestID.make())
            return VaultReply(data: .object(["migration_id": id]), topLevel: ["migration_id": id])
        case (.update, "leases/lookup"):
            // vhsmd issues no leases (tokens are not leases here, and no engine returns leased secrets).
            throw .badRequest("invalid lease")
        case (.update, "leases/renew"):
            throw .badRequest("lease not found")
        case (.update, "leases/revoke"):
            return .noContent
        case (.update, _) where path.hasPrefix("audit/"):
            throw .badRequest(
                "cannot enable audit device via API; use declarative, config-based audit device management instead")
        case (.delete, _) where path.hasPrefix("audit/"):
            let name = String(path.dropFirst("audit/".count))
            guard audit.device(named: name) == nil else {
                throw .badRequest(
                    "cannot disable audit device '\(name)' via API: it is configured in vhsmd's configuration file")
            }
            return .noContent
        case (.read, "auth"):
            // The token store is the one auth method, mounted at auth/token/ as in every Vault.
            guard let tokens = services?.tokens else { throw .permissionDenied }
            var listing: [String: JSONValue] = ["token/": .object(Self.tokenAuthEntry(tokens.tuning))]
            for mount in mounts?.mounted ?? [] where MountTable.isAuth(mount.path) {
                listing[String(mount.path.dropFirst("auth/".count))] = Self.authEntry(mount)
            }
            return VaultReply(data: .object(listing), topLevel: listing)
        case (.update, _) where path == "tools/random" || path.hasPrefix("tools/random/"):
            // sys/tools/random[/source][/bytes][/format], as transit's random.
            let words = path.split(separator: "/").dropFirst(2).map(String.init)
            return try TransitBackend.answering { try TransitBackend.random(request.body, pathWords: words) }
        case (.update, _) where path == "tools/hash" || path.hasPrefix("tools/hash/"):
            let parts = path.split(separator: "/")
            let algorithm = parts.count > 2 ? String(parts[2]) : nil
            return try TransitBackend.answering { try TransitBackend.hash(request.body, pathAlgorithm: algorithm) }
        case _ where Self.policyPrefix(path) != nil:
            return try policies(request, path: path)
        case (.read, "audit"):
            return .data(audit.listing.objectMembers)
        case (.update, _) where path.hasPrefix("audit-hash/"):
            let name = String(path.dropFirst("audit-hash/".count))
            guard let device = audit.device(named: name) else { throw .badRequest("unknown audit backend \(name)") }
            guard let input = try request.body.string("input") else {
                throw .badRequest("the \"input\" parameter is required")
            }
            return .data(["hash": .string(device.hash(input))])
        case (.update, _) where path.hasPrefix("wrapping/"):
            return try wrapping(request, path: String(path.dropFirst("wrapping/".count)))
        case (.update, "capabilities-self"):
            guard let acl = request.acl else { throw .permissionDenied }
            return try Self.capabilities(acl, request.body)
        case (.update, "capabilities"), (.update, "capabilities-accessor"):
            // Another token's capabilities, named by the token itself or by its accessor.
            guard let services else { throw .permissionDenied }
            let entry: TokenStore.Entry
            if path == "capabilities" {
                guard let token = try request.body.string("token") else { throw .badRequest("missing token") }
                guard let found = try services.tokens.entry(token: token) else { throw .badRequest("invalid token") }
                entry = found
            } else {
                guard let accessor = try request.body.string("accessor") else { throw .badRequest("missing accessor") }
                guard let found = try services.tokens.entry(accessor: accessor) else {
                    throw .badRequest("invalid accessor")
                }
                entry = found
            }
            return try Self.capabilities(services.policies.acl(for: entry.policies), request.body)
        case (.read, "wrapping/lookup"):
            return try wrapping(request, path: "lookup")
        default:
            // A path that exists, asked with a verb it does not take.
            if ["health", "seal-status", "leader", "init"].contains(path) { throw .unsupportedOperation(path) }
            throw .unsupportedPath("sys/" + path)
        }
    }

    /// The capabilities `acl` grants on the body's `paths` (or `path`): per path, and as `capabilities` when there is
    /// one path; in `data` and at the top level, as Vault answers.
    static func capabilities(_ acl: ACL, _ body: JSONValue) throws(VaultError) -> VaultReply {
        var paths: [String] = []
        if case .array(let list)? = body["paths"] {
            paths = list.compactMap { if case .string(let text) = $0 { text } else { nil } }
        } else if let joined = try body.string("paths") {
            paths = joined.split(separator: ",").map { $0.trimmedWhitespace }.filter { !$0.isEmpty }
        } else if let single = try body.string("path") {
            paths = [single]
        }
        guard !paths.isEmpty else { throw .badRequest("paths must be supplied") }
        var data: [String: JSONValue] = [:]
        for path in paths { data[path] = .array(acl.capabilityNames(for: path).map(JSONValue.string)) }
        if paths.count == 1 { data["capabilities"] = data[paths[0]] }
        return VaultReply(data: .object(data), topLevel: data)
    }

    /// Runs `work` on the barrier under the services' storage (`sys/key-status`, `sys/rotate`).
    static func barrierStatus(
        _ services: Services?, _ work: (Barrier) throws -> Barrier.KeyStatus
    ) throws(VaultError) -> Barrier.KeyStatus {
        // In a cluster the services' storage is the barrier behind `HiddenPaths`.
        let backend = services?.storage.backend
        guard let barrier = backend as? Barrier ?? (backend as? HiddenPaths)?.inner as? Barrier else {
            throw .internalError("the store has no encryption barrier")
        }
        do { return try work(barrier) } catch { throw .internalError("the barrier's keyring: \(error)") }
    }

    /// A lease TTL given as seconds or a duration string; "" or "system" keep the system's.
    static func leaseTTL(_ body: JSONValue, _ key: String) throws(VaultError) -> Int64? {
        if let text = try? body.string(key), text == "system" || text.isEmpty { return 0 }
        return try body.duration(key)
    }

    /// Which policy endpoint `path` (below `sys/`) is: `policies/acl` or the legacy `policy`, the whole path or
    /// followed by `/` and a name; nil otherwise. Matched on segment boundaries: `policyX` is not policy `X`.
    static func policyPrefix(_ path: String) -> String? {
        for prefix in ["policies/acl", "policy"]
        where path == prefix || path.utf8.starts(with: (prefix + "/").utf8) {
            return prefix
        }
        return nil
    }

    /// `sys/policies/acl[/:name]` and the legacy `sys/policy[/:name]` (whose read answers `rules`).
    private func policies(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply {
        guard let services, let prefix = Self.policyPrefix(path) else { throw .permissionDenied }
        let legacy = prefix == "policy"
        let name = String(path.dropFirst(min(path.count, prefix.count + 1)))
        let store = services.policies
        do {
            switch (request.operation, name.isEmpty) {
            case (.list, true), (.read, true):
                let names = store.list()
                if legacy {
                    let list = JSONValue.array(names.map(JSONValue.string))
                    return VaultReply(
                        data: .object(["policies": list, "keys": list]), topLevel: ["policies": list, "keys": list])
                }
                return .data(["keys": .array(names.map(JSONValue.string))])
            case (.read, false):
                guard let entry = store.entry(name) else { throw VaultError.notFound }
                var fields: [String: JSONValue] = [
                    "name": .string(entry.name), "version": .int(Int64(entry.version)),
                    "cas_required": .bool(entry.casRequired),
                    // vhsmd has no identity templating; the flags read as Vault's defaults.
                    "allow_slashes_in_identity_templates": .bool(false),
                    "allow_wildcards_in_identity_templates": .bool(false),
                ]
                guard legacy else {
                    fields["policy"] = .string(entry.raw)
                    return .data(fields)
                }
                // The legacy path repeats its fields at the top level (older clients read `rules` there).
                fields["rules"] = .string(entry.raw)
                return VaultReply(data: .object(fields), topLevel: fields)
            case (.update, false):
                var text = try request.body.string("policy") ?? request.body.string("rules")
                if text == nil, case .object? = request.body["policy"], let policy = request.body["policy"] {
                    text = String(decoding: policy.serialized, as: UTF8.self)
                }
                // Kept in the sealed store before it is served: a failed write changes nothing.
                try store.put(
                    name: name, policy: text ?? "", cas: (try request.body.int("cas")).map(Int.init),
                    casRequired: try request.body.bool("cas_required") ?? false, persist: services.savePolicies)
                // Vault's legacy field still works, with a warning.
                if request.body["policy"] == nil, request.body["rules"] != nil {
                    return .warning("'rules' is deprecated, please use 'policy' instead")
                }
                return .noContent
            case (.delete, false):
                try store.delete(name, persist: services.savePolicies)
                return .noContent
            default:
                throw VaultError.unsupportedPath("sys/" + path)
            }
        } catch let error as PolicyError {
            throw .badRequest(error.message)
        } catch let error as VaultError {
            throw error
        } catch {
            throw .internalError("\(error)")
        }
    }

    /// The query parameters that replace `sys/health`'s status codes (Vault's names).
    static let healthCodeParameters = [
        "activecode", "standbycode", "drsecondarycode", "haunhealthycode", "performancestandbycode", "removedcode",
        "sealedcode", "uninitcode",
    ]

    /// The codes those parameters may ask for: Vault (Go's net/http) writes 100 to 999 and drops the connection
    /// for others; a 1xx is an interim answer, not a final one, so vhsmd takes 200 to 999.
    static let healthCodes = 200...999

    /// `sys/health`: 200 active, 429 standby, 501 not initialised, 503 sealed; query parameters override codes.
    private func health(_ request: VaultRequest) throws(VaultError) -> VaultReply {
        var codes: [String: Int] = [:]
        for name in Self.healthCodeParameters {
            guard let text = request.query[name] else { continue }
            guard let code = Int(text), Self.healthCodes.contains(code) else {
                throw .badRequest(
                    "bad code for \(name): '\(text)' is not an HTTP status code from \(Self.healthCodes.lowerBound) "
                        + "to \(Self.healthCodes.upperBound)")
            }
            codes[name] = code
        }
        let status: Int
        if !state.initialized {
            status = codes["uninitcode"] ?? 501
        } else if state.sealed {
            status = codes["sealedcode"] ?? 503
        } else if state.standby {
            // Vault: standbyok=true turns a standby's 429 into the active code.
            status =
                request.query["standbyok"].map { $0 == "true" || $0 == "1" } == true
                ? (codes["activecode"] ?? 200) : (codes["standbycode"] ?? 429)
        } else {
            status = codes["activecode"] ?? 200
        }
        let body: JSONValue = .object([
            "initialized": .bool(state.initialized), "sealed": .bool(state.sealed), "standby": .bool(state.standby),
            "performance_standby": .bool(false), "replication_performance_mode": .string("disabled"),
            "replication_dr_mode": .string("disabled"), "server_time_utc": .int(Int64(Date().timeIntervalSince1970)),
            "version": .string(ServerState.version), "cluster_name": .string(state.clusterName),
            "cluster_id": .string(state.clusterID),
        ])
        return VaultReply(status: HTTPResponse.Status(code: status), bare: body)
    }

    private var sealStatus: [String: JSONValue] {
        [
            "type": .string(state.sealType), "initialized": .bool(state.initialized), "sealed": .bool(state.sealed),
            "t": .int(1), "n": .int(1), "progress": .int(0), "nonce": .string(""),
            "version": .string(ServerState.version),
            "build_date": .string(""), "migration": .bool(false), "cluster_name": .string(state.clusterName),
            "cluster_id": .string(state.clusterID), "recovery_seal": .bool(false),
            "storage_type": .string(state.storageType),
        ]
    }
}

/// What `sys/health` and `sys/seal-status` report about the server.
struct ServerState: Sendable {
    static let version = Release.version
    var initialized: Bool
    var sealed: Bool
    var sealType: String
    var storageType: String
    var clusterName = "vhsm-cluster-" + MountTable.randomHex(4)
    var clusterID = UUID().uuidString.lowercased()
    /// Set on a node of a cluster (HA on a shared database): its role now.
    var ha: HA? = nil

    struct HA: Sendable, Equatable {
        /// This node's id.
        var nodeID: String
        var isActive: Bool
        var leader: LeaderAdvertisement?
        var activeSince: Date?
    }

    /// A standby: a node of a cluster that does not hold the lease.
    var standby: Bool { ha.map { !$0.isActive } ?? false }
}

extension SysBackend {
    /// `sys/wrapping/*`: wrap any data, look up, unwrap or rewrap a wrapping token (see `TokenStore.wrap`).
    func wrapping(_ request: VaultRequest, path: String) throws(VaultError) -> VaultReply {
        guard let tokens = services?.tokens else { throw .unsupportedPath("sys/wrapping/" + path) }
        var bodyToken: String? = request.operation == .read ? request.query["token"] : nil
        switch request.body.objectMembers["token"] {
        case nil, .null?: break
        case .string(let token)?: bodyToken = token.isEmpty ? nil : token
        default: throw .badRequest("field 'token' must be a string")
        }
        switch path {
        case "wrap":
            // The answer is the data itself, which the router then wraps.
            guard request.wrapTTL != nil else { throw .badRequest("endpoint requires response wrapping to be used") }
            return VaultReply(data: request.body == .null ? .object([:]) : request.body)
        case "lookup":
            guard let token = bodyToken ?? request.token, !token.isEmpty else {
                throw VaultError(status: .forbidden, messages: ["error validating wrapping token: token is empty"])
            }
            return .data(try tokens.wrapped(token: token).description)
        case "unwrap":
            return try tokens.unwrap(token: bodyToken ?? request.token ?? "").reply
        case "rewrap":
            // A new token for the same answer, with the original's path and TTL; the old token is spent.
            var wrapped = try tokens.unwrap(token: bodyToken ?? "")
            wrapped.creationTime = Date()
            return try tokens.wrap(wrapped)
        default:
            throw .unsupportedPath("sys/wrapping/" + path)
        }
    }
}

extension SysBackend {
    /// An auth method's entry in `sys/auth`: its mount's, with the token type its logins issue.
    static func authEntry(_ mount: Mount) -> JSONValue {
        guard case .object(var entry) = mount.listing else { return mount.listing }
        if case .object(var config)? = entry["config"] {
            config["token_type"] = .string("default-service")
            entry["config"] = .object(config)
        }
        return .object(entry)
    }

    /// The token auth method's entry in `sys/auth` (and `sys/auth/token`).
    static func tokenAuthEntry(_ tuning: TokenStore.Tuning) -> [String: JSONValue] {
        [
            "type": .string("token"), "description": .string(tuning.description),
            "accessor": .string("auth_token_vhsmd"), "local": .bool(false), "seal_wrap": .bool(false),
            "external_entropy_access": .bool(false), "options": .null,
            "config": .object([
                "default_lease_ttl": .int(tuning.defaultLeaseTTL), "max_lease_ttl": .int(tuning.maxLeaseTTL),
                "force_no_cache": .bool(false), "token_type": .string("default-service"),
            ]),
        ]
    }
}

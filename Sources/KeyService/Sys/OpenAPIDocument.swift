/// `GET /v1/sys/internal/specs/openapi`: an OpenAPI 3.0 document of the API this server serves, as Vault builds
/// it — paths under the actual mount points (a transit engine at `keys-a/` appears as `/keys-a/encrypt/{name}`),
/// only those the caller's token can reach (none but the unauthenticated ones without a token), Vault's
/// `x-vault-*` extensions, LIST as a GET with a required `list=true` query parameter.
enum OpenAPIDocument {
    /// One path of an engine, relative to its mount.
    struct Route {
        enum Verb: String { case read, update, patch, delete, list }

        var path: String
        var summary: String
        var verbs: [Verb]
        var fields: [Field] = []
        var sudo = false
        var unauthenticated = false
        var createSupported = false
        /// Query parameters of a read (name, description, pattern), all required.
        var query: [(name: String, description: String, pattern: String)] = []
        /// Answers by status beyond the common ones: a read's replace its "200 OK", others are added.
        var responses: [(status: String, description: String)] = []
        /// The fields of a 200 answer (of a read, or of an update that answers one) under each top-level key
        /// (`data`; `auth` for a login); none: "200 OK" without a schema.
        var answers: [(key: String, fields: [Field])] = []
        /// What a write (update, delete) answers when it succeeds.
        var written: Written = .either
        /// The fields of a 200 answer outside Vault's envelope (`sys/health`, `sys/leader`).
        var bare: [Field] = []
        /// Statuses answered with the same body as the 200 (`sys/health`: 429 on a standby, 501, 503; "2XX" for
        /// any success code a query parameter asks for).
        var sameBody: [(status: String, description: String)] = []
        /// Optional query parameters of a read (name, type, description, pattern or "").
        var optionalQuery: [(name: String, type: String, description: String, pattern: String)] = []

        /// A write's success: "200" with a body, "204" without, or either (the common case: the document lists both).
        enum Written { case either, body, empty }
    }

    struct Field {
        var name: String
        var type: String
        var description: String
        init(_ name: String, _ type: String, _ description: String) {
            self.name = name
            self.type = type
            self.description = description
        }
    }

    /// `authMounts`: the auth methods mounted besides the token store, `auth/<path>/` to their type.
    static func build(mounts: [String: JSONValue], authMounts: [String: String] = [:], acl: ACL?) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        func add(_ prefix: String, _ routes: [Route], tag: String) {
            for route in routes {
                let full = prefix + route.path
                if !route.unauthenticated {
                    guard let acl, visible(full, acl: acl) else { continue }
                }
                for (key, value) in item(route, full: full, tag: tag) { paths[key] = value }
            }
        }
        add("sys/", system + cluster, tag: "system")
        add("auth/token/", token, tag: "auth")
        addAuthMethods(authMounts, add)
        add("identity/", identity, tag: "identity")
        for (mount, listing) in mounts.sorted(by: { $0.key < $1.key }) {
            guard case .object(let fields) = listing, case .string(let type)? = fields["type"] else { continue }
            switch type {
            case "transit": add(mount, transit, tag: "secrets")
            case "kv":
                let isVersion2: Bool
                if case .object(let options)? = fields["options"], options["version"] == .string("2") {
                    isVersion2 = true
                } else {
                    isVersion2 = false
                }
                add(mount, isVersion2 ? kv : kvVersion1, tag: "secrets")
            default: continue
            }
        }
        return .object([
            "openapi": .string("3.0.2"),
            "info": .object([
                "title": .string("vhsm key service API"),
                "description": .string(
                    "A Vault-compatible API served by vhsmd inside an SEV-SNP confidential VM. All API routes are "
                        + "prefixed with `/v1/`."),
                "version": .string(ServerState.version),
                "license": .object([
                    "name": .string("Apache License 2.0"),
                    "url": .string("https://www.apache.org/licenses/LICENSE-2.0"),
                ]),
            ]),
            "paths": .object(paths),
            "components": .object([
                "securitySchemes": .object([
                    "token": .object([
                        "type": .string("apiKey"), "in": .string("header"), "name": .string("X-Vault-Token"),
                    ])
                ])
            ]),
            "security": .array([.object(["token": .array([])])]),
        ])
    }

    /// A path is listed when the token holds any capability on it (parameters stand for any value).
    private static func visible(_ path: String, acl: ACL) -> Bool {
        if acl.isRoot { return true }
        var concrete = ""
        var inParameter = false
        for character in path {
            switch character {
            case "{":
                inParameter = true
                concrete += "x"
            case "}": inParameter = false
            default: if !inParameter { concrete.append(character) }
            }
        }
        return acl.capabilityNames(for: concrete) != ["deny"] || acl.capabilityNames(for: concrete + "/") != ["deny"]
    }

    private static func item(_ route: Route, full: String, tag: String) -> [String: JSONValue] {
        var result: [String: JSONValue] = [:]
        let parameters: [JSONValue] = full.split(separator: "/").compactMap { segment in
            guard segment.hasPrefix("{"), segment.hasSuffix("}") else { return nil }
            return .object([
                "name": .string(String(segment.dropFirst().dropLast())), "in": .string("path"),
                "required": .bool(true), "schema": .object(["type": .string("string")]),
            ])
        }
        let identifier = full.map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
            .split(separator: "-").joined(separator: "-")
        var plain: [String: JSONValue] = ["description": .string(route.summary)]
        if !parameters.isEmpty { plain["parameters"] = .array(parameters) }
        if route.sudo { plain["x-vault-sudo"] = .bool(true) }
        if route.unauthenticated { plain["x-vault-unauthenticated"] = .bool(true) }
        if route.createSupported { plain["x-vault-createSupported"] = .bool(true) }
        var listing = plain
        for verb in route.verbs {
            var operation: [String: JSONValue] = [
                "summary": .string(route.summary), "tags": .array([.string(tag)]),
                "operationId": .string("\(verb.rawValue)-\(identifier)"),
                "responses": .object(["200": envelopeAnswer]),
            ]
            // An unauthenticated path needs no token (the document's default is the token scheme).
            if route.unauthenticated { operation["security"] = .array([]) }
            switch verb {
            case .read:
                if !route.query.isEmpty || !route.optionalQuery.isEmpty {
                    // Required ones are strings with a pattern; optional ones have a type and maybe a pattern.
                    let required = route.query.map {
                        queryParameter($0.name, type: "string", $0.description, pattern: $0.pattern, required: true)
                    }
                    let optional = route.optionalQuery.map {
                        queryParameter($0.name, type: $0.type, $0.description, pattern: $0.pattern, required: false)
                    }
                    operation["parameters"] = .array(required + optional)
                }
                if !route.answers.isEmpty || !route.bare.isEmpty {
                    operation["responses"] = answerSchema(route)
                } else if !route.responses.isEmpty {
                    operation["responses"] = .object(
                        Dictionary(
                            route.responses.map { response in
                                (
                                    response.status,
                                    response.status.hasPrefix("2")
                                        ? JSONValue.object(["description": .string(response.description)])
                                        : errorAnswer(response.description)
                                )
                            },
                            uniquingKeysWith: { first, _ in first }))
                }
                plain["get"] = .object(finished(operation, verb, route))
            case .delete:
                operation["responses"] =
                    route.answers.isEmpty
                    ? .object(["204": .object(["description": .string("empty body")])]) : answerSchema(route)
                plain["delete"] = .object(finished(operation, verb, route))
            case .update:
                if !route.fields.isEmpty {
                    var properties: [String: JSONValue] = [:]
                    for field in route.fields { properties[field.name] = schema(field) }
                    operation["requestBody"] = .object([
                        "content": .object([
                            "application/json": .object([
                                "schema": .object(["type": .string("object"), "properties": .object(properties)])
                            ])
                        ])
                    ])
                }
                if !route.answers.isEmpty { operation["responses"] = answerSchema(route) }
                plain["post"] = .object(finished(operation, verb, route))
            case .patch:
                operation["requestBody"] = .object([
                    "content": .object([
                        "application/merge-patch+json": .object(["schema": .object(["type": .string("object")])])
                    ])
                ])
                plain["patch"] = .object(finished(operation, verb, route))
            case .list:
                operation["parameters"] = .array([
                    .object([
                        "name": .string("list"), "in": .string("query"), "required": .bool(true),
                        "schema": .object(["type": .string("string"), "enum": .array([.string("true")])]),
                    ])
                ])
                if !route.answers.isEmpty { operation["responses"] = answerSchema(route) }
                listing["get"] = .object(finished(operation, verb, route))
            }
        }
        if plain.keys.contains(where: { ["get", "post", "patch", "delete"].contains($0) }) {
            result["/" + full] = .object(plain)
        }
        if listing["get"] != nil { result["/" + full + "/"] = .object(listing) }
        return result
    }

    /// A 200 answer in Vault's envelope (a JSON object), its members not described further.
    static let envelopeAnswer: JSONValue = .object([
        "description": .string("OK"),
        "content": .object(["application/json": .object(["schema": .object(["type": .string("object")])])]),
    ])

    /// An error answer: Vault's `{"errors": [sentences]}` (KV v2's deleted version adds `data`, transit's batch
    /// refusals have only `data`).
    static func errorAnswer(_ description: String) -> JSONValue {
        .object([
            "description": .string(description),
            "content": .object([
                "application/json": .object([
                    "schema": .object([
                        "type": .string("object"),
                        "properties": .object([
                            "errors": .object([
                                "type": .string("array"), "items": .object(["type": .string("string")]),
                            ]),
                            "data": .object(["nullable": .bool(true)]),
                        ]),
                        // Transit's batch refusals carry each item's error in `data` and no `errors`.
                        "anyOf": .array([
                            .object(["required": .array([.string("errors")])]),
                            .object(["required": .array([.string("data")])]),
                        ]),
                    ])
                ])
            ]),
        ])
    }

    /// The refusals every operation may answer, in Vault's error shape: what vhsmd answers besides success.
    static func errorAnswers(_ verb: Route.Verb) -> [(status: String, description: String)] {
        var answers = [
            (status: "400", description: "The request is malformed: a field, a path parameter or the JSON body."),
            (status: "403", description: "Permission denied: no token, an unknown or revoked one, or the ACL."),
            (status: "404", description: "Nothing at this path, or no handler for it."),
            (status: "405", description: "The path does not support this operation."),
            (status: "503", description: "Sealed, or the storage under the barrier is unavailable."),
        ]
        if verb == .update || verb == .patch {
            answers.append((status: "413", description: "The body is larger than this path's limit."))
        }
        if verb == .patch { answers.append((status: "415", description: "Not application/merge-patch+json.")) }
        return answers
    }

    /// An operation with the answers every one may give: a write's 204 (no body) beside its 200, and the refusals.
    private static func finished(
        _ operation: [String: JSONValue], _ verb: Route.Verb, _ route: Route
    ) -> [String:
        JSONValue]
    {
        var operation = operation
        guard case .object(var responses)? = operation["responses"] else { return operation }
        if verb == .update || verb == .patch || verb == .delete {
            switch route.written {
            case .either: responses["204"] = responses["204"] ?? .object(["description": .string("Done; no body.")])
            case .body: responses["204"] = nil
            case .empty:
                responses["200"] = nil
                responses["204"] = responses["204"] ?? .object(["description": .string("Done; no body.")])
            }
        }
        for (status, description) in route.responses where responses[status] == nil {
            responses[status] =
                status.hasPrefix("2")
                ? .object(["description": .string(description)]) : errorAnswer(description)
        }
        for (status, description) in errorAnswers(verb) where responses[status] == nil {
            responses[status] = errorAnswer(description)
        }
        operation["responses"] = .object(responses)
        return operation
    }

    /// A query parameter of a read ("" pattern: none).
    static func queryParameter(
        _ name: String, type: String, _ description: String, pattern: String, required: Bool
    ) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string(type)]
        if !pattern.isEmpty { schema["pattern"] = .string(pattern) }
        return .object([
            "name": .string(name), "in": .string("query"), "required": .bool(required),
            "description": .string(description), "schema": .object(schema),
        ])
    }

    /// A field's JSON schema; a list is a list of strings. A `duration` is sent as seconds or a Go duration
    /// string and answered as whole seconds; any answered field may be null (unset).
    static func schema(_ field: Field, answered: Bool = false) -> JSONValue {
        // "array|string": either (anyOf), e.g. a join's certificates (a list, or one PEM chain or table).
        if field.type.contains("|") {
            var schema: [String: JSONValue] = [
                "description": .string(field.description),
                "anyOf": .array(
                    field.type.split(separator: "|").map { type in
                        type == "array"
                            ? .object(["type": .string("array"), "items": .object(["type": .string("string")])])
                            : .object(["type": .string(String(type))])
                    }),
            ]
            if answered { schema["nullable"] = .bool(true) }
            return .object(schema)
        }
        var schema: [String: JSONValue] = ["type": .string(field.type), "description": .string(field.description)]
        if field.type == "duration" { schema["type"] = .string(answered ? "integer" : "string") }
        if field.type == "array" { schema["items"] = .object(["type": .string("string")]) }
        if answered { schema["nullable"] = .bool(true) }
        return .object(schema)
    }

    /// The 200 answer of a route with `answers`: Vault's envelope with each key's fields; of a route with `bare`
    /// fields: those fields at the top level, also for its `sameBody` statuses.
    static func answerSchema(_ route: Route) -> JSONValue {
        if !route.bare.isEmpty {
            let content: JSONValue = .object([
                "application/json": .object([
                    "schema": .object([
                        "type": .string("object"),
                        "properties": .object(
                            Dictionary(
                                route.bare.map { ($0.name, schema($0, answered: true)) },
                                uniquingKeysWith: { first, _ in first })),
                    ])
                ])
            ])
            var answers: [String: JSONValue] = [
                "200": .object(["description": .string("OK"), "content": content])
            ]
            for (status, description) in route.sameBody {
                answers[status] = .object(["description": .string(description), "content": content])
            }
            return .object(answers)
        }
        var envelope: [String: JSONValue] = [:]
        for (key, fields) in route.answers {
            envelope[key] = .object([
                "type": .string("object"), "nullable": .bool(true),
                "properties": .object(
                    Dictionary(
                        fields.map { ($0.name, schema($0, answered: true)) }, uniquingKeysWith: { first, _ in first })),
            ])
        }
        return .object([
            "200": .object([
                "description": .string("OK"),
                "content": .object([
                    "application/json": .object([
                        "schema": .object(["type": .string("object"), "properties": .object(envelope)])
                    ])
                ]),
            ])
        ])
    }

    // MARK: The routes

    static let system: [Route] = [
        Route(
            path: "health",
            summary:
                "Health and seal state, with Vault's status codes: 200 active (or alone), 429 a standby of a cluster, "
                + "501 not initialised, 503 sealed; standbyok=true answers a standby as active. The query parameters "
                + "activecode, standbycode, sealedcode, uninitcode, drsecondarycode, haunhealthycode, "
                + "performancestandbycode and removedcode (a status from 200 to 999; 400 otherwise) replace the "
                + "code of their state, with the same body.",
            verbs: [.read], unauthenticated: true,
            responses: [(status: "400", description: "A code parameter is not a status code from 200 to 999.")],
            bare: healthFields,
            sameBody: [
                (status: "2XX", description: "The success code a code parameter asked for."),
                (status: "429", description: "A standby of a cluster (standbycode; standbyok=true answers 200)."),
                (status: "472", description: "Asked for by a code parameter (Vault's DR secondary code)."),
                (status: "473", description: "Asked for by a code parameter (Vault's performance standby code)."),
                (status: "501", description: "Not initialised (uninitcode)."),
                (status: "503", description: "Sealed (sealedcode)."),
            ],
            optionalQuery: healthQuery),
        Route(path: "seal-status", summary: "Seal state.", verbs: [.read], unauthenticated: true),
        Route(
            path: "init",
            summary:
                "Initialisation state; PUT initialises once and returns the root token (only sealed to the "
                + "operator key when operator_key is configured).",
            verbs: [.read, .update], unauthenticated: true),
        Route(
            path: "generate-root/operator",
            summary:
                "Mints a root token returned only sealed to the configured operator key; revokes the previous "
                + "operator-generated root token if it was never used.",
            verbs: [.update], unauthenticated: true),
        Route(
            path: "unseal/operator",
            summary:
                "Operator recovery of a store this launch's seal does not open: GET the recovery request (an X25519 "
                + "key bound to this launch by an attestation report) and the root key escrowed to the operator key; "
                + "PUT the grant (the escrowed key sealed to the request's key) to rekey the store and unseal.",
            verbs: [.read, .update], fields: [Field("grant", "string", "An armored VHSM RECOVERY GRANT.")],
            unauthenticated: true),
        Route(
            path: "leader",
            summary:
                "High-availability status: ha_enabled is false on a node alone (SQLite, dev); on a node of a cluster "
                + "(storage.postgresql), is_self says whether it is the active node and leader_address names the "
                + "active node's api_addr, only while its lease is unexpired and its advertisement verifies (empty "
                + "otherwise).",
            verbs: [.read], unauthenticated: true,
            bare: [
                Field("ha_enabled", "boolean", "True on a node of a cluster."),
                Field("is_self", "boolean", "This node is the active node."),
                Field("leader_address", "string", "The active node's api_addr (empty: none known, or alone)."),
                Field("leader_cluster_address", "string", "The same address (vhsmd has no separate cluster port)."),
                Field("performance_standby", "boolean", "Always false."),
                Field("leader_node_id", "string", "The active node's node_id (cluster only; empty: none known)."),
                Field("active_time", "string", "When the active node became active, RFC 3339 (cluster only)."),
            ]),
        Route(
            path: "attestation",
            summary:
                "Attested TLS: a fresh SEV-SNP attestation report whose REPORT_DATA is SHA-512(\"vhsm-attested-tls-v1\" "
                + "|| nonce || SHA-256(SPKI of the served TLS certificate)), with the certificates that endorse it "
                + "(data.format, data.nonce, data.report, data.certificates, data.spki_sha256). At most 10 reports "
                + "per second (bursts of 10, 4 waiting).",
            verbs: [.read], unauthenticated: true,
            query: [
                (
                    name: "nonce", description: "32 fresh random bytes as 64 hex digits.",
                    pattern: "^[0-9a-fA-F]{64}$"
                )
            ],
            responses: [
                (status: "200", description: "The evidence, in Vault's envelope."),
                (status: "400", description: "The nonce is missing or not 64 hex digits."),
                (
                    status: "429",
                    description: "Over the rate limit or the queue is full; Retry-After says when to retry."
                ),
                (
                    status: "501",
                    description: "Not served: dev mode, plain HTTP (tls_disable) or no SEV-SNP seal."
                ),
                (
                    status: "503",
                    description: "The Secure Processor or the report broker failed or did not answer in time."
                ),
            ]),
        Route(path: "mounts", summary: "The mounted secrets engines.", verbs: [.read]),
        Route(
            path: "mounts/{path}", summary: "Enable, read or disable a secrets engine (transit, kv version 2).",
            verbs: [.read, .update, .delete],
            fields: [
                Field("type", "string", "transit or kv"), Field("description", "string", "Free text."),
                Field("options", "object", "{\"version\": \"2\"} for kv"),
            ], sudo: true),
        Route(
            path: "mounts/{path}/tune", summary: "A secrets engine's lease TTLs, description and options.",
            verbs: [.read, .update],
            fields: [
                Field("default_lease_ttl", "string", "Seconds or a duration; \"system\" for the system's."),
                Field("max_lease_ttl", "string", "Seconds or a duration."),
                Field("description", "string", "Free text."),
                Field("options", "object", "Engine options (kv: version \"2\" upgrades a version 1 mount in place)."),
            ], sudo: true),
        Route(path: "auth", summary: "The enabled auth methods (the token store).", verbs: [.read]),
        Route(
            path: "key-status",
            summary: "The barrier's active key term, when it was installed, and values sealed under it since start.",
            verbs: [.read]),
        Route(path: "rotate", summary: "Add a barrier key term; new writes use it.", verbs: [.update], sudo: true),
        Route(
            path: "auth/token/tune",
            summary: "The token auth method's lease TTLs (of the tokens it issues) and token type.",
            verbs: [.read, .update],
            fields: [
                Field("default_lease_ttl", "string", "Seconds or a duration; \"system\" for the system's."),
                Field("max_lease_ttl", "string", "Seconds or a duration."),
                Field("description", "string", "Free text."),
            ]),
        Route(
            path: "remount", summary: "Move a secrets engine, with its data, to another path.", verbs: [.update],
            fields: [Field("from", "string", "The mount's path."), Field("to", "string", "The new path.")], sudo: true),
        Route(
            path: "leases/lookup", summary: "Lease lookup (vhsmd issues no leases: always 'invalid lease').",
            verbs: [.update], fields: [Field("lease_id", "string", "The lease.")]),
        Route(
            path: "leases/renew", summary: "Lease renewal (vhsmd issues no leases).", verbs: [.update],
            fields: [Field("lease_id", "string", "The lease.")]),
        Route(
            path: "leases/revoke", summary: "Lease revocation (vhsmd issues no leases).", verbs: [.update],
            fields: [Field("lease_id", "string", "The lease.")]),
        Route(
            path: "capabilities", summary: "Another token's capabilities on paths.", verbs: [.update],
            fields: [Field("token", "string", "The token."), Field("paths", "array", "Paths to check.")]),
        Route(
            path: "capabilities-accessor", summary: "A token's capabilities on paths, by its accessor.",
            verbs: [.update],
            fields: [Field("accessor", "string", "The token's accessor."), Field("paths", "array", "Paths to check.")]),
        Route(
            path: "tools/random/{bytes}", summary: "Random bytes from the service's generator.", verbs: [.update],
            fields: [Field("bytes", "integer", "How many (1 to 131072)."), Field("format", "string", "base64 or hex.")]),
        Route(
            path: "tools/hash/{algorithm}", summary: "A digest of the input.", verbs: [.update],
            fields: [
                Field("input", "string", "Base64 input."), Field("format", "string", "hex or base64."),
            ]),
        Route(path: "policies/acl", summary: "ACL policy names.", verbs: [.list]),
        Route(
            path: "policies/acl/{name}", summary: "An ACL policy (HCL or JSON).", verbs: [.read, .update, .delete],
            fields: [Field("policy", "string", "The policy document.")]),
        Route(path: "policy", summary: "ACL policy names (legacy).", verbs: [.read]),
        Route(
            path: "policy/{name}", summary: "An ACL policy (legacy path).", verbs: [.read, .update, .delete],
            fields: [Field("policy", "string", "The policy document.")]),
        Route(
            path: "capabilities-self", summary: "The caller's capabilities on paths.", verbs: [.update],
            fields: [Field("paths", "array", "Paths to check.")]),
        Route(
            path: "wrapping/wrap", summary: "Wrap the given data in a single-use token (needs X-Vault-Wrap-TTL).",
            verbs: [.update]),
        Route(
            path: "wrapping/lookup", summary: "A wrapping token's creation path, time and TTL (no token needed).",
            verbs: [.update], fields: [Field("token", "string", "The wrapping token.")], unauthenticated: true),
        Route(
            path: "wrapping/unwrap",
            summary: "The wrapped answer, once (the wrapping token as X-Vault-Token, or in the body).",
            verbs: [.update], fields: [Field("token", "string", "The wrapping token.")]),
        Route(
            path: "wrapping/rewrap", summary: "A new wrapping token for the same answer; the old one is spent.",
            verbs: [.update], fields: [Field("token", "string", "The wrapping token.")]),
        Route(path: "audit", summary: "The enabled audit devices.", verbs: [.read], sudo: true),
        Route(
            path: "audit-hash/{path}", summary: "HMAC a value with an audit device's salt.", verbs: [.update],
            fields: [Field("input", "string", "The value to hash.")]),
        Route(path: "metrics", summary: "Metrics in the Prometheus text format (?format=prometheus).", verbs: [.read]),
        Route(path: "internal/specs/openapi", summary: "This document.", verbs: [.read], unauthenticated: true),
    ]

    static let token: [Route] = [
        Route(
            path: "create", summary: "Create a child token.", verbs: [.update],
            fields: [
                Field("id", "string", "Token ID (root only)."), Field("policies", "array", "Policies."),
                Field("ttl", "string", "TTL."), Field("explicit_max_ttl", "string", "Hard limit."),
                Field("renewable", "boolean", "Renewable."), Field("num_uses", "integer", "Use limit."),
                Field("no_parent", "boolean", "Create an orphan."), Field("meta", "object", "Metadata."),
                Field("display_name", "string", "Display name."),
                Field("period", "string", "Renewal period (root only): each renewal goes back to it."),
                Field("type", "string", "service (default) or batch."),
            ]),
        Route(path: "create-orphan", summary: "Create an orphan token.", verbs: [.update]),
        Route(
            path: "renew-accessor", summary: "Renew a token by accessor.", verbs: [.update],
            fields: [Field("accessor", "string", "Accessor."), Field("increment", "string", "Requested TTL.")]),
        Route(
            path: "tidy", summary: "Remove expired tokens now.", verbs: [.update], sudo: true,
            responses: [(status: "202", description: "Done: a warning says how many were removed.")]),
        Route(path: "create/{role_name}", summary: "Create a token through a token role.", verbs: [.update]),
        Route(path: "roles", summary: "Token role names.", verbs: [.list]),
        Route(
            path: "roles/{role_name}", summary: "A token role.", verbs: [.read, .update, .delete],
            fields: [
                Field("allowed_policies", "array", "Policies its tokens may have (\"default\" is added)."),
                Field("disallowed_policies", "array", "Policies its tokens may not have."),
                Field("orphan", "boolean", "Its tokens have no parent."),
                Field("renewable", "boolean", "Its tokens may be renewed."),
                Field("path_suffix", "string", "Added to its tokens' path."),
                Field("token_period", "string", "Its tokens' period."),
                Field("token_explicit_max_ttl", "string", "Its tokens' hard limit."),
                Field("token_type", "string", "default-service, default-batch, service or batch."),
            ]),
        Route(
            path: "lookup", summary: "Look up a token.", verbs: [.update], fields: [Field("token", "string", "Token.")]),
        Route(path: "lookup-self", summary: "Look up the calling token.", verbs: [.read]),
        Route(
            path: "lookup-accessor", summary: "Look up a token by accessor.", verbs: [.update],
            fields: [Field("accessor", "string", "Accessor.")]),
        Route(
            path: "renew", summary: "Renew a token.", verbs: [.update],
            fields: [Field("token", "string", "Token."), Field("increment", "string", "Requested TTL.")]),
        Route(
            path: "renew-self", summary: "Renew the calling token.", verbs: [.update],
            fields: [Field("increment", "string", "Requested TTL.")]),
        Route(
            path: "revoke", summary: "Revoke a token and its children.", verbs: [.update],
            fields: [Field("token", "string", "Token.")]),
        Route(path: "revoke-self", summary: "Revoke the calling token.", verbs: [.update]),
        Route(
            path: "revoke-orphan", summary: "Revoke a token, orphaning its children.", verbs: [.update],
            fields: [Field("token", "string", "Token.")], sudo: true),
        Route(
            path: "revoke-accessor", summary: "Revoke a token by accessor.", verbs: [.update],
            fields: [Field("accessor", "string", "Accessor.")]),
        Route(path: "accessors", summary: "Token accessors.", verbs: [.list], sudo: true),
    ]

    private static let encryptionFields = [
        Field("plaintext", "string", "Base64 plaintext."), Field("ciphertext", "string", "vault:vN:… ciphertext."),
        Field("context", "string", "Base64 derivation context."), Field("associated_data", "string", "Base64 AAD."),
        Field("key_version", "integer", "Key version."), Field("batch_input", "array", "Batch items."),
        Field("type", "string", "Key type when creating on first use."),
    ]

    static let transit: [Route] = [
        Route(path: "keys", summary: "Transit key names.", verbs: [.list]),
        Route(
            path: "cache-config", summary: "The key cache's size (0: unlimited).", verbs: [.read, .update],
            fields: [Field("size", "integer", "0, or at least 10.")]),
        Route(
            path: "config/keys", summary: "Whether encrypt may create keys (upsert).", verbs: [.read, .update],
            fields: [Field("disable_upsert", "boolean", "Refuse to encrypt with a missing key.")]),
        Route(
            path: "keys/{name}", summary: "Create, read or delete a transit key.", verbs: [.read, .update, .delete],
            fields: [
                Field(
                    "type", "string",
                    "aes128-gcm96, aes256-gcm96, chacha20-poly1305, ed25519, ecdsa-p256/p384/p521, rsa-2048/3072/4096, hmac"
                ),
                Field("derived", "boolean", "Derive keys from a context."),
                Field("convergent_encryption", "boolean", "Convergent."),
                Field("exportable", "boolean", "Exportable."), Field("allow_plaintext_backup", "boolean", "Backups."),
                Field("auto_rotate_period", "string", "Rotation period."),
                Field("key_size", "integer", "HMAC key size."),
            ]),
        Route(
            path: "keys/{name}/config", summary: "Configure a transit key.", verbs: [.update],
            fields: [
                Field("min_decryption_version", "integer", "Oldest version that decrypts."),
                Field("min_encryption_version", "integer", "Oldest version that encrypts."),
                Field("deletion_allowed", "boolean", "Allow deletion."), Field("exportable", "boolean", "Exportable."),
                Field("allow_plaintext_backup", "boolean", "Backups."),
                Field("auto_rotate_period", "string", "Rotation."),
            ]),
        Route(path: "keys/{name}/rotate", summary: "Rotate a transit key.", verbs: [.update]),
        Route(
            path: "keys/{name}/trim", summary: "Trim old key versions.", verbs: [.update],
            fields: [Field("min_available_version", "integer", "Oldest version kept.")]),
        Route(
            path: "keys/{name}/import", summary: "Import (BYOK) a key wrapped for this server.", verbs: [.update],
            fields: [
                Field("ciphertext", "string", "RSA-OAEP + AES-KWP wrapped key."), Field("type", "string", "Key type."),
                Field("hash_function", "string", "OAEP hash."),
            ]),
        Route(
            path: "keys/{name}/import_version", summary: "Import a new version of a key.", verbs: [.update],
            fields: [Field("ciphertext", "string", "Wrapped key.")]),
        Route(
            path: "encrypt/{name}", summary: "Encrypt.", verbs: [.update], fields: encryptionFields,
            createSupported: true),
        Route(path: "decrypt/{name}", summary: "Decrypt.", verbs: [.update], fields: encryptionFields),
        Route(
            path: "rewrap/{name}", summary: "Re-encrypt under the latest version.", verbs: [.update],
            fields: encryptionFields),
        Route(
            path: "datakey/{plaintext}/{name}", summary: "Generate a data key (plaintext or wrapped).",
            verbs: [.update],
            fields: [Field("bits", "integer", "128, 256 or 512."), Field("context", "string", "Base64 context.")]),
        Route(
            path: "random", summary: "Random bytes.", verbs: [.update],
            fields: [Field("bytes", "integer", "Count."), Field("format", "string", "base64 or hex.")]),
        Route(path: "random/{urlbytes}", summary: "Random bytes.", verbs: [.update]),
        Route(
            path: "hash", summary: "Hash data.", verbs: [.update],
            fields: [Field("input", "string", "Base64 input."), Field("algorithm", "string", "sha2-256 …")]),
        Route(path: "hash/{urlalgorithm}", summary: "Hash data.", verbs: [.update]),
        Route(
            path: "hmac/{name}", summary: "HMAC data.", verbs: [.update],
            fields: [Field("input", "string", "Base64 input."), Field("algorithm", "string", "sha2-256 …")]),
        Route(path: "hmac/{name}/{urlalgorithm}", summary: "HMAC data.", verbs: [.update]),
        Route(
            path: "sign/{name}", summary: "Sign data.", verbs: [.update],
            fields: [
                Field("input", "string", "Base64 input."), Field("hash_algorithm", "string", "sha2-256 …"),
                Field("prehashed", "boolean", "Input is a digest."),
                Field("marshaling_algorithm", "string", "asn1 or jws"),
                Field("signature_algorithm", "string", "pss or pkcs1v15"),
            ]),
        Route(path: "sign/{name}/{urlalgorithm}", summary: "Sign data.", verbs: [.update]),
        Route(
            path: "verify/{name}", summary: "Verify a signature or HMAC.", verbs: [.update],
            fields: [
                Field("input", "string", "Base64 input."), Field("signature", "string", "vault:vN:…"),
                Field("hmac", "string", "vault:vN:…"),
            ]),
        Route(path: "verify/{name}/{urlalgorithm}", summary: "Verify a signature or HMAC.", verbs: [.update]),
        Route(path: "export/{type}/{name}", summary: "Export a key (exportable keys).", verbs: [.read]),
        Route(path: "export/{type}/{name}/{version}", summary: "Export a key version.", verbs: [.read]),
        Route(path: "backup/{name}", summary: "Back up a key (allow_plaintext_backup).", verbs: [.read]),
        Route(
            path: "restore", summary: "Restore a key backup.", verbs: [.update],
            fields: [Field("backup", "string", "Backup."), Field("name", "string", "New name.")]),
        Route(path: "restore/{name}", summary: "Restore a key backup under a name.", verbs: [.update]),
        Route(path: "wrapping_key", summary: "The RSA-4096 public key for BYOK imports.", verbs: [.read]),
    ]

    static let kvVersion1: [Route] = [
        Route(
            path: "{path}", summary: "A secret (KV version 1): read, write, delete, or list below it.",
            verbs: [.read, .update, .delete, .list],
            fields: [Field("ttl", "string", "Optional: the lease duration reads report.")])
    ]

    static let kv: [Route] = [
        Route(
            path: "config", summary: "Engine configuration.", verbs: [.read, .update],
            fields: [
                Field("max_versions", "integer", "Versions kept."), Field("cas_required", "boolean", "Require cas."),
                Field("delete_version_after", "string", "Deletion delay."),
            ]),
        Route(
            path: "subkeys/{path}", summary: "A secret version's keys, without the values (?depth=, ?version=).",
            verbs: [.read]),
        Route(
            path: "data/{path}", summary: "Read, write or merge-patch a secret version.",
            verbs: [.read, .update, .patch, .delete],
            fields: [Field("data", "object", "The secret."), Field("options", "object", "{\"cas\": N}")],
            createSupported: true),
        Route(
            path: "delete/{path}", summary: "Soft-delete versions.", verbs: [.update],
            fields: [Field("versions", "array", "Versions.")]),
        Route(
            path: "undelete/{path}", summary: "Restore soft-deleted versions.", verbs: [.update],
            fields: [Field("versions", "array", "Versions.")]),
        Route(
            path: "destroy/{path}", summary: "Destroy versions.", verbs: [.update],
            fields: [Field("versions", "array", "Versions.")]),
        Route(path: "metadata", summary: "Secret names at the root.", verbs: [.list]),
        Route(
            path: "metadata/{path}", summary: "A secret's metadata; LIST lists below it.",
            verbs: [.read, .update, .patch, .delete, .list],
            fields: [
                Field("max_versions", "integer", "Versions kept."), Field("cas_required", "boolean", "Require cas."),
                Field("custom_metadata", "object", "Metadata."),
            ]),
    ]
}

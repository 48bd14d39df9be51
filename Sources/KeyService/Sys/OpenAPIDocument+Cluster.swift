/// `sys/health`'s answer and parameters, and the paths of a cluster (issue 17: `storage.postgresql`) under `sys/`:
/// membership, the root key, the attested join and its policy, step-down. A node alone (SQLite, `--dev`) lists them
/// too and answers each with a 400 that says it is alone.
extension OpenAPIDocument {
    static let healthFields = [
        Field("initialized", "boolean", "The store is initialised."), Field("sealed", "boolean", "It is sealed."),
        Field("standby", "boolean", "This node is a standby of a cluster."),
        Field("performance_standby", "boolean", "Always false."),
        Field("replication_performance_mode", "string", "Always disabled."),
        Field("replication_dr_mode", "string", "Always disabled."),
        Field("server_time_utc", "integer", "The server's time, Unix seconds."),
        Field("version", "string", "vhsmd's version."), Field("cluster_name", "string", "cluster_name."),
        Field("cluster_id", "string", "The cluster's id."),
    ]

    /// `standbyok`. The `*code` parameters (`activecode`, `standbycode`, `sealedcode`, `uninitcode`, …; any status
    /// from 200 to 999) are described in the summary, not as parameters: the server answers whatever status the
    /// client asks for, 5xx included, which a generator of requests (schemathesis) would report as server errors.
    static let healthQuery: [(name: String, type: String, description: String, pattern: String)] = [
        (
            name: "standbyok", type: "boolean",
            description: "true: a standby answers the active code (200) instead of 429.", pattern: ""
        )
    ]

    /// What a node alone answers on every cluster path, and a standby on those it does not serve itself.
    private static let alone = (
        status: "400",
        description: "This vhsmd is alone (not a node of a cluster: SQLite storage or --dev), or the "
            + "request is malformed."
    )
    private static let toActive = (
        status: "307",
        description:
            "A standby that does not forward (X-Vault-No-Request-Forwarding, or forwarding failed): Location is "
            + "the same request on the active node's api_addr."
    )
    private static let unavailable = (
        status: "503",
        description: "Sealed, no active node (a standby whose leader's lease has expired), this node is "
            + "not the active one any more, or the database did not answer; Retry-After says when to retry."
    )

    static let cluster: [Route] = [
        Route(
            path: "cluster/members",
            summary: "The cluster's members (active node): each node's chip, measurement, join time and root-key "
                + "generation.",
            verbs: [.read, .list],
            responses: [alone, toActive, unavailable],
            answers: [
                (
                    "data",
                    [
                        Field("keys", "array", "The members' node ids."),
                        Field(
                            "members", "object",
                            "Per node id: chip_id, measurement (hex), joined (RFC 3339), generation (of the root key "
                                + "sealed to it), self (this node)."),
                        Field("cluster", "string", "cluster_name."),
                    ]
                )
            ]),
        Route(
            path: "cluster/members/{node_id}",
            summary: "Remove a member (active node): its entry is deleted and the cluster root key rotated in the same "
                + "transaction, so the removed node cannot unseal again. The active node itself is refused (step it "
                + "down first).",
            verbs: [.delete], sudo: true,
            responses: [
                (
                    status: "400",
                    description: "This vhsmd is alone (not a node of a cluster), or node_id is the active node itself."
                ),
                (status: "404", description: "No member with this node_id."), toActive, unavailable,
            ],
            answers: [
                (
                    "data",
                    [
                        Field("removed", "string", "The removed node_id."),
                        Field("generation", "integer", "The new root key's generation."),
                    ]
                )
            ],
            written: .body),
        Route(
            path: "cluster/rotate-root",
            summary: "A new cluster root key (active node), sealed to every member (none needs to be online); the "
                + "keyring is sealed under it.",
            verbs: [.update], sudo: true, responses: [alone, toActive, unavailable],
            answers: [("data", [Field("generation", "integer", "The new root key's generation.")])],
            written: .body),
        Route(
            path: "cluster/join/nonce",
            summary: "A single-use join nonce for a new node's attestation (any unsealed member; no token): valid "
                + "60 s, 429 past the bound of outstanding nonces.",
            verbs: [.update], unauthenticated: true,
            responses: [
                alone,
                (
                    status: "429",
                    description: "Too many unspent nonces are outstanding; Retry-After says when the oldest expires."
                ),
                unavailable,
            ],
            answers: [
                (
                    "data",
                    [
                        Field("nonce", "string", "32 bytes, 64 hex digits."),
                        Field("expires_at", "string", "RFC 3339 time after which it is refused."),
                        Field("ttl", "integer", "Seconds it is valid."),
                    ]
                )
            ],
            written: .body),
        Route(
            path: "cluster/join",
            summary: "A new node's attested join (any unsealed member; no token): a fresh SEV-SNP report whose "
                + "REPORT_DATA is SHA-512(\"vhsm-cluster-join-v1\" || nonce || SHA-256(public_key SPKI) || SHA-256 of "
                + "the SPKI of this node's TLS certificate, or 32 zero bytes over plain HTTP). Checked in order: the "
                + "nonce (spent first, whatever follows), the report's signature and chain, REPORT_DATA, DEBUG and "
                + "MIGRATE_MA, the join policy. Every attempt is audited; the answer is the cluster root key sealed "
                + "with HPKE to public_key.",
            verbs: [.update],
            fields: [
                Field("node_id", "string", "The joiner's node_id: 1 to 64 letters, digits, '.', '_' or '-'."),
                Field("nonce", "string", "A nonce from sys/cluster/join/nonce (64 hex digits)."),
                Field("report", "string", "The 1184-byte attestation report, base64."),
                Field(
                    "certificates", "array|string",
                    "Base64 DER certificates (the VCEK or VLEK first), or one PEM chain, or the base64 of the "
                        + "extended report's certificate table."),
                Field("public_key", "string", "A PEM SubjectPublicKeyInfo of an X25519 or P-384 key (the recipient)."),
            ], unauthenticated: true,
            responses: [
                (
                    status: "400",
                    description: "This vhsmd is alone, or the request is malformed (unknown field, bad nonce, report, "
                        + "certificates or public_key); each message starts \"join refused: malformed request:\"."
                ),
                (
                    status: "403",
                    description: "Join refused, the message naming the reason: an unknown, spent or expired nonce (a "
                        + "replay), a report that is not genuine, REPORT_DATA binding another key or nonce, DEBUG or "
                        + "MIGRATE_MA allowed, or a launch the join policy does not admit."
                ),
                unavailable,
            ],
            answers: [
                (
                    "data",
                    [
                        Field("cluster", "string", "cluster_name."),
                        Field("generation", "integer", "The root key's generation."),
                        Field("suite", "string", "X25519-SHA256-ChaCha20Poly1305 or P384-SHA384-AES256GCM."),
                        Field(
                            "sealed_root_key", "string", "base64(enc || ciphertext): the root key, HPKE to public_key."),
                        Field("info", "string", "The HPKE info (the AAD is the nonce)."),
                    ]
                )
            ],
            written: .body),
        Route(
            path: "cluster/join-policy",
            summary: "The cluster's join policy (active node), in the sev-snp role vocabulary: GET the policy in force "
                + "(default true: the sponsor's own MEASUREMENT, or its ID key digest when it launched with an ID "
                + "block), PUT a new one (it must name an identity; DEBUG is never admitted), DELETE it (back to the "
                + "default).",
            verbs: [.read, .update, .delete], fields: joinPolicyFields, sudo: true,
            responses: [alone, toActive, unavailable],
            answers: [
                ("data", [Field("default", "boolean", "No policy is stored: the default applies.")] + joinPolicyFields)
            ],
            written: .empty),
        Route(
            path: "step-down",
            summary: "The active node gives its lease up at once and stays out of elections for 10 s; a standby takes "
                + "over at its next retry.",
            verbs: [.update], sudo: true,
            responses: [
                alone, toActive, unavailable,
            ],
            written: .empty),
    ]

    /// The fields of `sys/cluster/join-policy` (`ClusterJoinSponsor.policyFields`): a `sev-snp` role's constraints,
    /// described as the role's are.
    static let joinPolicyFields = roleFields.filter { ClusterJoinSponsor.policyFields.contains($0.name) }
}

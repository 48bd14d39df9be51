/// The auth methods in the OpenAPI document: `sys/auth/{path}` (enable, read, disable) and its tuning, and each
/// mounted method's paths under its actual mount (a `sev-snp` method at `auth/vms/` appears as `/auth/vms/login`).
extension OpenAPIDocument {
    static func addAuthMethods(_ authMounts: [String: String], _ add: (String, [Route], String) -> Void) {
        add("sys/", sysAuth, "system")
        for (mount, type) in authMounts.sorted(by: { $0.key < $1.key }) {
            switch type {
            case SevSNPAuthBackend.type: add(mount, sevSNP, "auth")
            default: continue
            }
        }
    }

    private static let tuning = [
        Field("default_lease_ttl", "duration", "Seconds or a duration: the default TTL of the tokens it issues."),
        Field("max_lease_ttl", "duration", "Seconds or a duration: their maximum TTL."),
        Field("description", "string", "Free text."),
    ]

    static let sysAuth: [Route] = [
        Route(
            path: "auth/{path}",
            summary: "Enable (POST), read or disable (DELETE, its roles and config destroyed) an auth method at "
                + "auth/{path}/; types: sev-snp (the token store is always at auth/token/).",
            verbs: [.read, .update, .delete],
            fields: [
                Field("type", "string", "The method's type: sev-snp."),
                Field("description", "string", "Free text."),
                Field("config", "object", "default_lease_ttl and max_lease_ttl of the tokens it issues."),
            ], sudo: true,
            answers: [
                (
                    "data",
                    [
                        Field("type", "string", "The method's type."), Field("description", "string", "Free text."),
                        Field("accessor", "string", "The mount's accessor."),
                        Field("config", "object", "Its lease TTLs and token type."),
                        Field("local", "boolean", "Always false."), Field("seal_wrap", "boolean", "Always false."),
                    ]
                )
            ]),
        Route(
            path: "auth/{path}/tune", summary: "An auth method's lease TTLs (of the tokens it issues) and description.",
            verbs: [.read, .update], fields: tuning, sudo: true,
            answers: [
                (
                    "data",
                    tuning + [Field("token_type", "string", "default-service (a sev-snp role sets its token_type).")]
                )
            ]),
    ]

    private static let configFields = [
        Field(
            "trusted_roots", "array",
            "PEM ARK certificates trusted beyond AMD's pinned ones (an emulator's root only when named here)."),
        Field("nonce_ttl", "duration", "Seconds or a duration a nonce stays valid (default 60 s, at most 5 minutes)."),
        Field(
            "audience_spki_sha256", "array",
            "Hex SHA-256s of SPKIs a login may bind besides vhsmd's own (TLS-terminating proxies)."),
        Field("clock_skew", "duration", "Seconds or a duration excused on certificate validity times (at most 1 h)."),
    ]

    static let roleFields = [
        Field("bound_measurements", "array", "MEASUREMENTs (96 hex digits), any of."),
        Field("bound_host_data", "string", "HOST_DATA (64 hex digits)."),
        Field("bound_id_key_digests", "array", "ID_KEY_DIGESTs (96 hex digits) of signed images, any of."),
        Field("bound_author_key_digests", "array", "AUTHOR_KEY_DIGESTs (96 hex digits), any of."),
        Field("bound_family_ids", "array", "FAMILY_IDs (32 hex digits), any of."),
        Field("bound_image_ids", "array", "IMAGE_IDs (32 hex digits), any of."),
        Field("min_guest_svn", "integer", "The lowest GUEST_SVN accepted."),
        Field("min_tcb", "string", "The lowest REPORTED_TCB (16 hex digits, report order), per component."),
        Field("bound_products", "array", "Product lines: milan, genoa, turin."),
        Field("bound_chip_ids", "array", "CHIP_IDs (128 hex digits; VCEK-signed reports only), any of."),
        Field("bound_vmpl", "integer", "The VMPL the report must be for (0-3; -1: any)."),
        Field("allow_debug", "boolean", "Accept a guest POLICY that allows DEBUG (default false)."),
        Field("allow_vlek", "boolean", "Accept VLEK-signed reports (default true)."),
        Field(
            "permit_provisional_firmware", "boolean",
            "Accept COMMITTED_TCB below CURRENT_TCB (default false)."),
        Field("minimum_launch_tcb", "string", "The lowest LAUNCH_TCB (16 hex digits), per component."),
        Field("token_policies", "array", "The policies of the tokens it issues (they must exist)."),
        Field("token_ttl", "duration", "Their TTL."), Field("token_max_ttl", "duration", "Their maximum TTL."),
        Field("token_period", "duration", "Their period."), Field("token_num_uses", "integer", "Their use limit."),
        Field("token_type", "string", "default, service or batch."),
        Field("token_no_default_policy", "boolean", "Leave out the default policy."),
    ]

    /// The paths of a `sev-snp` auth method, relative to its mount (`SevSNPAuthBackend`).
    static let sevSNP: [Route] = [
        Route(
            path: "config", summary: "The method's trusted roots, nonce TTL, audiences and clock skew.",
            verbs: [.read, .update], fields: configFields, answers: [("data", configFields)]),
        Route(path: "role", summary: "The names of the method's roles.", verbs: [.list]),
        Route(
            path: "role/{name}",
            summary: "A role: its constraints on the report (all that are set must hold; lists are any of) and the "
                + "tokens it issues. A role with no measurement, ID key or author key constraint is refused.",
            verbs: [.read, .update, .delete], fields: roleFields, createSupported: true,
            answers: [("data", roleFields)]),
        Route(
            path: "nonce", summary: "A single-use login nonce (no token; 429 past the bound of outstanding nonces).",
            verbs: [.update], unauthenticated: true,
            answers: [
                (
                    "data",
                    [
                        Field("nonce", "string", "32 bytes, 64 hex digits."),
                        Field("expires_at", "string", "RFC 3339 time after which it is refused."),
                        Field("ttl", "integer", "Seconds it is valid."),
                    ]
                )
            ]),
        Route(
            path: "login",
            summary: "Log in with an SEV-SNP report whose REPORT_DATA is SHA-512(\"vhsm-login-v1\" || nonce || "
                + "SHA-256(public_key SPKI) or 32 zero bytes || SHA-256 of the SPKI of vhsmd's TLS certificate, or 32 "
                + "zero bytes over plain HTTP). 400 malformed, 403 not acceptable, every reason listed. With "
                + "wrap_to_public_key, auth is null and data.sealed_auth is the auth block sealed with HPKE to "
                + "public_key.",
            verbs: [.update],
            fields: [
                Field("role", "string", "The role to log in with."),
                Field("nonce", "string", "A nonce from the nonce path (64 hex digits)."),
                Field("report", "string", "The 1184-byte attestation report, base64."),
                Field("certificates", "array", "Base64 DER certificates, the VCEK or VLEK first."),
                Field("public_key", "string", "A PEM SubjectPublicKeyInfo bound into REPORT_DATA."),
                Field("wrap_to_public_key", "boolean", "Seal the auth block to public_key (X25519 or P-384)."),
            ], unauthenticated: true,
            answers: [
                (
                    "auth",
                    [
                        Field("client_token", "string", "The token."),
                        Field("accessor", "string", "Its accessor."),
                        Field("policies", "array", "Its policies."),
                        Field("token_policies", "array", "Its policies."),
                        Field(
                            "metadata", "object",
                            "role, measurement, product, chip_id, reported_tcb, host_data, policy, vmpl, report_id, "
                                + "signer; for signed images id_key_digest, family_id, image_id, guest_svn."),
                        Field("lease_duration", "integer", "Its TTL in seconds."),
                        Field("renewable", "boolean", "Whether it renews."),
                    ]
                ),
                (
                    "data",
                    [
                        Field("sealed_auth", "string", "base64(enc || ciphertext) (wrap_to_public_key)."),
                        Field("suite", "string", "X25519-SHA256-ChaCha20Poly1305 or P384-SHA384-AES256GCM."),
                        Field("info", "string", "vhsm/login/auth/v1 (the HPKE info; the AAD is the nonce)."),
                    ]
                ),
            ]),
    ]
}

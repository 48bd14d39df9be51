extension OpenAPIDocument {
    /// `identity/oidc/` (IdentityOIDC): identity tokens, Vault's paths.
    static let identity: [Route] = [
        Route(
            path: "oidc/config", summary: "The issuer of identity tokens.", verbs: [.read, .update],
            fields: [
                Field(
                    "issuer", "string",
                    "Scheme, host and optional port; the tokens' iss is it + /v1/identity/oidc (\"\": api_addr).")
            ]),
        Route(path: "oidc/key", summary: "Identity token key names.", verbs: [.list]),
        Route(
            path: "oidc/key/{name}", summary: "An identity token signing key (no private material is answered).",
            verbs: [.read, .update, .delete],
            fields: [
                Field("algorithm", "string", "ES256 (default), RS256, RS384, RS512, ES384, ES512 or EdDSA."),
                Field("rotation_period", "string", "How often a new key pair signs (default 24h, at least 1m)."),
                Field(
                    "verification_ttl", "string",
                    "How long a rotated-out public key stays in the JWKS (default 24h, at most 10 rotation periods)."),
                Field(
                    "allowed_client_ids", "array", "Client IDs of the roles that may sign with it (\"*\": all)."),
            ], createSupported: true),
        Route(
            path: "oidc/key/{name}/rotate", summary: "Rotate an identity token key now.", verbs: [.update],
            fields: [Field("verification_ttl", "string", "This rotation's verification TTL.")]),
        Route(path: "oidc/role", summary: "Identity token role names.", verbs: [.list]),
        Route(
            path: "oidc/role/{name}", summary: "An identity token role.", verbs: [.read, .update, .delete],
            fields: [
                Field("key", "string", "The key that signs its tokens (required, must exist)."),
                Field("ttl", "string", "Its tokens' lifetime (default 24h, at most the key's verification_ttl)."),
                Field("client_id", "string", "Its tokens' aud (generated when not given)."),
            ], createSupported: true),
        Route(
            path: "oidc/token/{name}", summary: "A signed identity token (JWT) for the calling token.",
            verbs: [.read]),
        Route(
            path: "oidc/.well-known/openid-configuration", summary: "The OpenID discovery document.",
            verbs: [.read], unauthenticated: true),
        Route(
            path: "oidc/.well-known/keys", summary: "The JWKS: every public key an identity token may be signed with.",
            verbs: [.read], unauthenticated: true),
    ]
}

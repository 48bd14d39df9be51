#!/usr/bin/env python3
"""Identity tokens (identity/oidc) as a relying party sees them: a `vhsmd --dev` is started on loopback, a key and a
role are written, a token is fetched with hvac, and PyJWT verifies it with nothing but the discovery document (its
issuer, its jwks_uri, its algorithms). The hvac suite (Tests/hvac) checks the shapes and one ES256 token on vhsmd and
OpenBao alike; this script checks what is vhsmd's own: every algorithm, nbf, sub = the calling token's accessor (vhsmd
has no entities), and a token signed before a rotation verifying after it.

Usage: VHSMD=path/to/vhsmd scripts/oidc-test.py
Closing line: 'oidc-test: N passed, M failed'.
"""
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import hvac
import jwt
import requests

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


class Server:
    def __init__(self, binary):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.token = "root-" + secrets.token_hex(8)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [binary, "--dev", "--dev-root-token-id", self.token, "--dev-listen-address", f"127.0.0.1:{port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                requests.get(f"{self.url}/v1/sys/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"vhsmd did not answer at {self.url}")
        self.client = hvac.Client(url=self.url, token=self.token)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def relying_party(issuer):
    """What a relying party configured with only the issuer learns: the discovery document and a JWKS client."""
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    expect(discovery["issuer"] == issuer, discovery)
    return discovery, jwt.PyJWKClient(discovery["jwks_uri"], cache_jwk_set=False)


def verify(issuer, token, audience):
    discovery, keys = relying_party(issuer)
    signing_key = keys.get_signing_key_from_jwt(token)
    return jwt.decode(
        token, signing_key.key, algorithms=discovery["id_token_signing_alg_values_supported"], audience=audience,
        issuer=discovery["issuer"], options={"require": ["iss", "sub", "aud", "iat", "nbf", "exp"]})


def key_and_role(server, algorithm, key=None, role=None):
    key = key or "k-" + secrets.token_hex(4)
    role = role or "r-" + secrets.token_hex(4)
    identity = server.client.secrets.identity
    identity.create_named_key(name=key, algorithm=algorithm, allowed_client_ids=["*"], rotation_period="1h",
                              verification_ttl="2h")
    identity.create_or_update_role(name=role, key=key, ttl="15m")
    return key, role, identity.read_role(name=role)["data"]["client_id"]


def child_token(server, role):
    server.client.sys.create_or_update_policy(
        name=f"oidc-{role}", policy=f'path "identity/oidc/token/{role}" {{ capabilities = ["read"] }}')
    created = server.client.auth.token.create(policies=[f"oidc-{role}"], ttl="1h")
    return created["auth"]["client_token"], created["auth"]["accessor"]


@check
def a_relying_party_verifies_every_algorithm_with_the_discovery_document_alone(server):
    issuer = f"{server.url}/v1/identity/oidc"
    for algorithm in ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "EdDSA"]:
        _, role, client_id = key_and_role(server, algorithm)
        token, accessor = child_token(server, role)
        answer = hvac.Client(url=server.url, token=token).secrets.identity.generate_signed_id_token(name=role)
        expect(answer["data"]["client_id"] == client_id and answer["data"]["ttl"] == 900, answer["data"])
        signed = answer["data"]["token"]
        expect(jwt.get_unverified_header(signed)["alg"] == algorithm, jwt.get_unverified_header(signed))
        claims = verify(issuer, signed, client_id)
        expect(claims["iss"] == issuer and claims["aud"] == client_id, claims)
        expect(claims["sub"] == accessor, f"sub {claims['sub']} is not the calling token's accessor {accessor}")
        expect(claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"], claims)
        expect(abs(claims["iat"] - time.time()) < 60, claims)
        expect("snp" not in claims, claims)


@check
def a_tampered_token_or_another_audience_is_refused(server):
    issuer = f"{server.url}/v1/identity/oidc"
    _, role, client_id = key_and_role(server, "ES256")
    signed = server.client.secrets.identity.generate_signed_id_token(name=role)["data"]["token"]
    header, payload, signature = signed.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    try:
        verify(issuer, f"{header}.{forged}.{signature}", client_id)
        raise AssertionError("a token with a changed sub verified")
    except jwt.InvalidSignatureError:
        pass
    try:
        verify(issuer, signed, "another-client")
        raise AssertionError("a token for another audience verified")
    except jwt.InvalidAudienceError:
        pass


@check
def a_token_signed_before_a_rotation_still_verifies_after_it(server):
    issuer = f"{server.url}/v1/identity/oidc"
    key, role, client_id = key_and_role(server, "RS256")
    before = server.client.secrets.identity.generate_signed_id_token(name=role)["data"]["token"]
    requests.post(f"{server.url}/v1/identity/oidc/key/{key}/rotate", json={},
                  headers={"X-Vault-Token": server.token}, timeout=30).raise_for_status()
    after = server.client.secrets.identity.generate_signed_id_token(name=role)["data"]["token"]
    expect(jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"], "same kid")
    verify(issuer, before, client_id)
    verify(issuer, after, client_id)


@check
def a_token_without_the_policy_gets_no_identity_token(server):
    _, role, _ = key_and_role(server, "ES256")
    _, other_role, _ = key_and_role(server, "ES256")
    token, _ = child_token(server, role)
    response = requests.get(f"{server.url}/v1/identity/oidc/token/{other_role}", headers={"X-Vault-Token": token},
                            timeout=5)
    expect(response.status_code == 403, response.status_code)
    response = requests.get(f"{server.url}/v1/identity/oidc/token/{role}", timeout=5)
    expect(response.status_code == 403, response.status_code)


def main():
    binary = os.environ.get("VHSMD") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not binary:
        print("usage: VHSMD=path/to/vhsmd scripts/oidc-test.py", file=sys.stderr)
        return 2
    server = Server(binary)
    passed = failed = 0
    try:
        for function in CHECKS:
            try:
                function(server)
                passed += 1
            except Exception as error:  # noqa: BLE001 - every failure is reported and counted
                failed += 1
                print(f"FAIL {function.__name__}: {type(error).__name__}: {error}")
                traceback.print_exc()
    finally:
        server.stop()
    print(f"oidc-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""hvac 2.4.0 compatibility checks, run unchanged against vhsmd and against OpenBao 2.7.2 (which proves they
encode Vault's behaviour, not ours). Follows the test plan of shared/reference/vault-api.md §5, for the parts
vhsmd serves today; each check is a function, and the closing line is 'hvac-compat (<server>): N passed, M failed'.

Usage: vault_compat.py URL TOKEN [--name SERVER]
"""
import argparse
import base64
import hashlib
import hmac as hmac_module
import secrets
import sys
import time
import traceback
import warnings

import hvac
import jwt
import requests
from hvac import exceptions

warnings.simplefilter("ignore", DeprecationWarning)
CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


SKIPPED = {}  # check name -> why it does not run on this server; printed and counted, never silent


def vhsmd_only(reason):
    """A check of something only vhsmd serves (its own auth method, say): on OpenBao it is not run, and the run says
    so ("SKIP <check> on <server>: <reason>") and counts it; on vhsmd it is a check like any other."""
    def mark(function):
        function.vhsmd_only = reason
        return function
    return mark


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def raises(kind, function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except kind as error:
        return error
    raise AssertionError(f"expected {kind.__name__}")


class Context:
    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.client = hvac.Client(url=url, token=token)
        self.kv = "kv-" + secrets.token_hex(4)
        self.transit = "transit-" + secrets.token_hex(4)


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


# sys ---------------------------------------------------------------------------------------------------------

@check
def health_get_unauthenticated(c):
    client = hvac.Client(url=c.url)
    client.token = None
    health = client.sys.read_health_status(method="GET")
    expect(isinstance(health, dict), f"GET health returned {health!r}")
    expect(health["initialized"] is True and health["sealed"] is False and health["standby"] is False, health)


@check
def health_head(c):
    response = c.client.sys.read_health_status()
    expect(response.status_code == 200, response.status_code)


@check
def health_status_codes_follow_the_query(c):
    response = requests.get(f"{c.url}/v1/sys/health?activecode=299")
    expect(response.status_code == 299, response.status_code)


@check
def seal_status_unauthenticated(c):
    client = hvac.Client(url=c.url)
    client.token = None
    status = client.sys.read_seal_status()
    expect(status["sealed"] is False and "t" in status and "n" in status and "progress" in status and "type" in status,
           status)
    expect(client.sys.is_initialized() is True, "is_initialized")
    expect(client.sys.is_sealed() is False, "is_sealed")


@check
def kv_mount_enable_list_and_conflict(c):
    c.client.sys.enable_secrets_engine("kv", path=c.kv, options={"version": "2"})
    mounts = c.client.sys.list_mounted_secrets_engines()["data"]
    expect(f"{c.kv}/" in mounts and mounts[f"{c.kv}/"]["type"] == "kv", mounts.keys())
    expect(c.client.sys.retrieve_mount_option(c.kv, "version") == "2", "kv option version")
    raises(exceptions.InvalidRequest, c.client.sys.enable_secrets_engine, "kv", path=c.kv, options={"version": "2"})


# auth and envelope -------------------------------------------------------------------------------------------

@check
def lookup_self_and_is_authenticated(c):
    me = c.client.auth.token.lookup_self()
    expect(me["data"]["id"] == c.token, me["data"].get("id"))
    expect(c.client.is_authenticated() is True, "is_authenticated")
    expect(hvac.Client(url=c.url, token="s.bogus" + secrets.token_hex(8)).is_authenticated() is False, "bogus token")


@check
def bogus_or_missing_token_is_forbidden(c):
    bogus = hvac.Client(url=c.url, token="s.bogus" + secrets.token_hex(8))
    raises(exceptions.Forbidden, bogus.auth.token.lookup_self)
    raises(exceptions.Forbidden, bogus.secrets.kv.v2.list_secrets, path="", mount_point=c.kv)
    none = hvac.Client(url=c.url)
    none.token = None
    raises(exceptions.Forbidden, none.auth.token.lookup_self)


@check
def bearer_token_works(c):
    response = requests.get(f"{c.url}/v1/auth/token/lookup-self", headers={"Authorization": f"Bearer {c.token}"})
    expect(response.status_code == 200, response.status_code)


@check
def envelope_and_error_shape(c):
    body = c.client.auth.token.lookup_self()
    for key in ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"]:
        expect(key in body, f"envelope lacks {key}")
    error = raises(exceptions.InvalidRequest, c.client.secrets.kv.v2.create_or_update_secret, path="x",
                   secret={"a": 1}, cas=7, mount_point=c.kv)
    expect(isinstance(error.errors, list) and error.errors and all(isinstance(e, str) for e in error.errors),
           error.errors)
    response = requests.get(f"{c.url}/v1/{c.kv}/data/missing-{secrets.token_hex(4)}",
                            headers={"X-Vault-Token": c.token})
    expect(response.status_code == 404 and response.headers["Content-Type"] == "application/json", response.headers)
    expect(response.json().get("errors") == [], response.text)


@check
def token_create_lookup_renew_revoke(c):
    created = c.client.auth.token.create(policies=["default"], ttl="1h")["auth"]
    expect(created["lease_duration"] == 3600 and created["renewable"] is True, created)
    expect("default" in created["policies"], created["policies"])
    child = hvac.Client(url=c.url, token=created["client_token"])
    looked = child.auth.token.lookup_self()["data"]
    expect(0 < looked["ttl"] <= 3600, looked["ttl"])
    renewed = child.auth.token.renew_self(increment="2h")["auth"]
    expect(3600 < renewed["lease_duration"] <= 7200, renewed["lease_duration"])
    by_accessor = c.client.auth.token.lookup_accessor(created["accessor"])["data"]
    expect(by_accessor["accessor"] == created["accessor"], by_accessor)
    child.auth.token.revoke_self()
    raises(exceptions.Forbidden, child.auth.token.lookup_self)


@check
def revoking_a_parent_revokes_its_children(c):
    # The built-in default policy does not allow auth/token/create, so the parent holds root.
    parent = c.client.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    parent_client = hvac.Client(url=c.url, token=parent)
    child = parent_client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    c.client.auth.token.revoke(parent)
    raises(exceptions.Forbidden, hvac.Client(url=c.url, token=child).auth.token.lookup_self)


@check
def a_default_token_cannot_read_secrets(c):
    token = c.client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    limited = hvac.Client(url=c.url, token=token)
    raises(exceptions.Forbidden, limited.secrets.kv.v2.list_secrets, path="", mount_point=c.kv)
    raises(exceptions.Forbidden, limited.sys.list_mounted_secrets_engines)


# policies and tokens -----------------------------------------------------------------------------------------

@check
def policy_write_read_list_and_legacy_rules(c):
    name = "p-" + secrets.token_hex(3)
    text = 'path "secret/data/x" {\n  capabilities = ["read"]\n}\n'
    c.client.sys.create_or_update_acl_policy(name, text)
    read = c.client.sys.read_acl_policy(name)["data"]
    expect(read["name"] == name and read["policy"] == text, read)
    expect(name in c.client.sys.list_acl_policies()["data"]["keys"], "listed")
    expect(c.client.get_policy(name) == text, "legacy rules")
    expect(name in c.client.sys.list_policies()["data"]["policies"], "legacy list")
    raises(exceptions.InvalidRequest, c.client.sys.create_or_update_acl_policy, name + "x",
           'path "a" { capabilities = ["fly"] }')
    c.client.sys.delete_acl_policy(name)
    raises(exceptions.InvalidPath, c.client.sys.read_acl_policy, name)


@check
def policy_enforcement_on_transit_and_kv(c):
    c.client.sys.enable_secrets_engine("transit", path=c.transit + "p")
    c.client.sys.enable_secrets_engine("kv", path=c.kv + "p", options={"version": "2"})
    transit, kv = c.transit + "p", c.kv + "p"
    c.client.secrets.transit.create_key("app", mount_point=transit)
    c.client.secrets.transit.create_key("secret-key", mount_point=transit)
    name = "app-" + secrets.token_hex(3)
    c.client.sys.create_or_update_acl_policy(name, f"""
path "{transit}/encrypt/*" {{ capabilities = ["update"] }}
path "{transit}/decrypt/*" {{ capabilities = ["update"] }}
path "{transit}/keys/*" {{ capabilities = ["read"] }}
path "{transit}/keys/secret-key" {{ capabilities = ["deny"] }}
path "{kv}/data/+/cfg" {{ capabilities = ["read", "create", "update"] }}
""")
    token = c.client.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"]
    child = hvac.Client(url=c.url, token=token)
    t = child.secrets.transit
    ciphertext = t.encrypt_data("app", b64(b"ok"), mount_point=transit)["data"]["ciphertext"]
    expect(unb64(t.decrypt_data("app", ciphertext, mount_point=transit)["data"]["plaintext"]) == b"ok", "update ok")
    raises(exceptions.Forbidden, t.encrypt_data, "brand-new", b64(b"x"), mount_point=transit)
    raises(exceptions.Forbidden, t.rotate_key, "app", mount_point=transit)
    expect(t.read_key("app", mount_point=transit)["data"]["name"] == "app", "keys/* read")
    raises(exceptions.Forbidden, t.read_key, "secret-key", mount_point=transit)
    raises(exceptions.Forbidden, t.list_keys, mount_point=transit)
    raises(exceptions.Forbidden, child.sys.list_mounted_secrets_engines)
    child.secrets.kv.v2.create_or_update_secret(path="app1/cfg", secret={"a": "1"}, mount_point=kv)
    raises(exceptions.Forbidden, child.secrets.kv.v2.create_or_update_secret, path="app1/other", secret={"a": "1"},
           mount_point=kv)
    raises(exceptions.Forbidden, child.secrets.kv.v2.create_or_update_secret, path="a/b/cfg", secret={"a": "1"},
           mount_point=kv)
    response = requests.post(f"{c.url}/v1/sys/capabilities-self", headers={"X-Vault-Token": token},
                             json={"paths": [f"{transit}/keys/app", f"{transit}/keys/secret-key"]})
    body = response.json()["data"]
    expect(body[f"{transit}/keys/app"] == ["read"] and body[f"{transit}/keys/secret-key"] == ["deny"], body)
    c.client.sys.disable_secrets_engine(path=transit)
    c.client.sys.disable_secrets_engine(path=kv)
    c.client.sys.delete_acl_policy(name)


@check
def kv_writes_need_create_for_new_and_update_for_existing_secrets(c):
    kv = c.kv + "cu"
    c.client.sys.enable_secrets_engine("kv", path=kv, options={"version": "2"})
    tokens = {}
    for capability in ["create", "update"]:
        name = f"{capability}-" + secrets.token_hex(3)
        c.client.sys.create_or_update_acl_policy(name, f'path "{kv}/data/*" {{ capabilities = ["{capability}"] }}')
        tokens[capability] = hvac.Client(url=c.url, token=c.client.auth.token.create(policies=[name])["auth"]["client_token"])
    write = lambda client: client.secrets.kv.v2.create_or_update_secret(path="s", secret={"k": "v"}, mount_point=kv)
    raises(exceptions.Forbidden, write, tokens["update"])
    write(tokens["create"])
    raises(exceptions.Forbidden, write, tokens["create"])
    write(tokens["update"])
    c.client.sys.disable_secrets_engine(path=kv)


@check
def policy_parameter_constraints(c):
    transit = c.transit + "pc"
    c.client.sys.enable_secrets_engine("transit", path=transit)
    name = "params-" + secrets.token_hex(3)
    c.client.sys.create_or_update_acl_policy(name, f"""
path "{transit}/keys/*" {{
  capabilities = ["create", "update"]
  allowed_parameters = {{ "type" = ["ed25519", "aes256-gcm96"] }}
}}
path "{transit}/encrypt/*" {{
  capabilities = ["update"]
  required_parameters = ["context"]
  denied_parameters = {{ "key_version" = [] }}
}}
""")
    child = hvac.Client(url=c.url, token=c.client.auth.token.create(policies=[name])["auth"]["client_token"])
    headers = {"X-Vault-Token": child.token}
    ok = requests.post(f"{c.url}/v1/{transit}/keys/signing", headers=headers, json={"type": "ed25519"})
    expect(ok.status_code in (200, 204), ok.status_code)
    refused = requests.post(f"{c.url}/v1/{transit}/keys/other", headers=headers, json={"type": "rsa-2048"})
    expect(refused.status_code == 403, refused.status_code)
    refused = requests.post(f"{c.url}/v1/{transit}/keys/other", headers=headers, json={"type": "ed25519", "exportable": True})
    expect(refused.status_code == 403, refused.status_code)
    c.client.secrets.transit.create_key("derived", derived=True, mount_point=transit)
    body = {"plaintext": b64(b"x"), "context": b64(b"ctx")}
    ok = requests.post(f"{c.url}/v1/{transit}/encrypt/derived", headers=headers, json=body)
    expect(ok.status_code == 200, ok.status_code)
    missing = requests.post(f"{c.url}/v1/{transit}/encrypt/derived", headers=headers, json={"plaintext": b64(b"x")})
    expect(missing.status_code == 403, missing.status_code)
    denied = requests.post(f"{c.url}/v1/{transit}/encrypt/derived", headers=headers, json=dict(body, key_version=1))
    expect(denied.status_code == 403, denied.status_code)
    c.client.sys.disable_secrets_engine(path=transit)
    c.client.sys.delete_acl_policy(name)


# KV v2 -------------------------------------------------------------------------------------------------------

@check
def kv_versions_and_cas(c):
    kv = c.client.secrets.kv.v2
    first = kv.create_or_update_secret(path="app/db", secret={"user": "a"}, mount_point=c.kv)["data"]
    expect(first["version"] == 1, first)
    second = kv.create_or_update_secret(path="app/db", secret={"user": "b"}, cas=1, mount_point=c.kv)["data"]
    expect(second["version"] == 2, second)
    raises(exceptions.InvalidRequest, kv.create_or_update_secret, path="app/db", secret={"user": "c"}, cas=1,
           mount_point=c.kv)
    latest = kv.read_secret_version(path="app/db", mount_point=c.kv, raise_on_deleted_version=True)["data"]
    expect(latest["data"] == {"user": "b"} and latest["metadata"]["version"] == 2, latest)
    old = kv.read_secret_version(path="app/db", version=1, mount_point=c.kv, raise_on_deleted_version=True)["data"]
    expect(old["data"] == {"user": "a"}, old)
    raises(exceptions.InvalidPath, kv.read_secret_version, path="app/none", mount_point=c.kv,
           raise_on_deleted_version=True)


@check
def kv_list_and_metadata(c):
    kv = c.client.secrets.kv.v2
    kv.create_or_update_secret(path="app/sub/x", secret={"k": "v"}, mount_point=c.kv)
    keys = kv.list_secrets(path="app", mount_point=c.kv)["data"]["keys"]
    expect("db" in keys and "sub/" in keys, keys)
    kv.update_metadata(path="app/db", max_versions=5, custom_metadata={"owner": "ops"}, mount_point=c.kv)
    metadata = kv.read_secret_metadata(path="app/db", mount_point=c.kv)["data"]
    expect(metadata["max_versions"] == 5 and metadata["custom_metadata"] == {"owner": "ops"}, metadata)
    expect(metadata["current_version"] == 2 and "1" in metadata["versions"], metadata)


@check
def kv_soft_delete_undelete(c):
    kv = c.client.secrets.kv.v2
    kv.create_or_update_secret(path="gone", secret={"a": "1"}, mount_point=c.kv)
    kv.delete_latest_version_of_secret(path="gone", mount_point=c.kv)
    raises(exceptions.InvalidPath, kv.read_secret_version, path="gone", mount_point=c.kv,
           raise_on_deleted_version=True)
    body = kv.read_secret_version(path="gone", mount_point=c.kv, raise_on_deleted_version=False)
    expect(body["data"]["data"] is None and body["data"]["metadata"]["deletion_time"], body)
    kv.undelete_secret_versions(path="gone", versions=[1], mount_point=c.kv)
    expect(kv.read_secret_version(path="gone", mount_point=c.kv, raise_on_deleted_version=True)["data"]["data"]
           == {"a": "1"}, "undelete")


@check
def kv_destroy_and_patch(c):
    kv = c.client.secrets.kv.v2
    kv.create_or_update_secret(path="p", secret={"a": "1"}, mount_point=c.kv)
    kv.create_or_update_secret(path="p", secret={"a": "2"}, mount_point=c.kv)
    kv.destroy_secret_versions(path="p", versions=[1], mount_point=c.kv)
    metadata = kv.read_secret_metadata(path="p", mount_point=c.kv)["data"]
    expect(metadata["versions"]["1"]["destroyed"] is True, metadata["versions"])
    raises(exceptions.InvalidPath, kv.read_secret_version, path="p", version=1, mount_point=c.kv,
           raise_on_deleted_version=True)
    patched = kv.patch(path="p", secret={"b": "3"}, mount_point=c.kv)["data"]
    expect(patched["version"] == 3, patched)
    expect(kv.read_secret_version(path="p", mount_point=c.kv, raise_on_deleted_version=True)["data"]["data"]
           == {"a": "2", "b": "3"}, "patch merged")


@check
def kv_delete_metadata_and_all_versions(c):
    kv = c.client.secrets.kv.v2
    kv.create_or_update_secret(path="all", secret={"a": "1"}, mount_point=c.kv)
    kv.delete_metadata_and_all_versions(path="all", mount_point=c.kv)
    raises(exceptions.InvalidPath, kv.read_secret_metadata, path="all", mount_point=c.kv)


# transit -----------------------------------------------------------------------------------------------------

@check
def transit_mount_and_key_lifecycle(c):
    c.client.sys.enable_secrets_engine("transit", path=c.transit)
    t = c.client.secrets.transit
    t.create_key("k1", mount_point=c.transit)
    key = t.read_key("k1", mount_point=c.transit)["data"]
    expect(key["type"] == "aes256-gcm96" and key["latest_version"] == 1 and key["min_decryption_version"] == 1, key)
    expect(key["supports_encryption"] is True and key["deletion_allowed"] is False and "1" in key["keys"], key)
    expect("k1" in t.list_keys(mount_point=c.transit)["data"]["keys"], "LIST keys")
    expect("k1" in c.client.list(f"{c.transit}/keys")["data"]["keys"], "GET ?list=True")
    raises(exceptions.InvalidPath, t.read_key, "missing", mount_point=c.transit)
    expect(c.client.read(f"{c.transit}/keys/missing") is None, "Client.read of a missing key")


@check
def transit_encrypt_decrypt_format(c):
    t = c.client.secrets.transit
    plaintext = bytes(range(256)) * 3
    result = t.encrypt_data("k1", b64(plaintext), mount_point=c.transit)["data"]
    expect(result["ciphertext"].startswith("vault:v1:") and result["key_version"] == 1, result)
    raw = unb64(result["ciphertext"].split(":", 2)[2])
    expect(len(raw) == 12 + len(plaintext) + 16, len(raw))
    again = t.encrypt_data("k1", b64(plaintext), mount_point=c.transit)["data"]["ciphertext"]
    expect(again != result["ciphertext"], "nonces are random")
    decrypted = t.decrypt_data("k1", result["ciphertext"], mount_point=c.transit)["data"]["plaintext"]
    expect(unb64(decrypted) == plaintext, "round trip")


@check
def transit_tampered_and_malformed_ciphertexts(c):
    t = c.client.secrets.transit
    ciphertext = t.encrypt_data("k1", b64(b"secret"), mount_point=c.transit)["data"]["ciphertext"]
    raw = bytearray(unb64(ciphertext.split(":", 2)[2]))
    raw[-1] ^= 1
    tampered = "vault:v1:" + b64(bytes(raw))
    error = raises(exceptions.InvalidRequest, t.decrypt_data, "k1", tampered, mount_point=c.transit)
    expect("message authentication failed" in str(error), str(error))
    for bad in ["garbage", "vault:v1:!!!", "vault:vX:AAAA", "vault:v1:AAAA", "vault:v99:" + ciphertext[9:]]:
        raises(exceptions.InvalidRequest, t.decrypt_data, "k1", bad, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.decrypt_data, "missing-key", ciphertext, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.encrypt_data, "k1", "not base64!", mount_point=c.transit)


@check
def transit_rotate_rewrap_and_min_versions(c):
    t = c.client.secrets.transit
    old = t.encrypt_data("k1", b64(b"v1 data"), mount_point=c.transit)["data"]["ciphertext"]
    t.rotate_key("k1", mount_point=c.transit)
    expect(t.read_key("k1", mount_point=c.transit)["data"]["latest_version"] == 2, "rotated")
    expect(unb64(t.decrypt_data("k1", old, mount_point=c.transit)["data"]["plaintext"]) == b"v1 data", "old decrypts")
    rewrapped = t.rewrap_data("k1", old, mount_point=c.transit)["data"]
    expect(rewrapped["ciphertext"].startswith("vault:v2:") and rewrapped["key_version"] == 2, rewrapped)
    t.update_key_configuration("k1", min_decryption_version=2, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.decrypt_data, "k1", old, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.rewrap_data, "k1", old, mount_point=c.transit)
    t.update_key_configuration("k1", min_encryption_version=2, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.encrypt_data, "k1", b64(b"x"), key_version=1, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.encrypt_data, "k1", b64(b"x"), key_version=9, mount_point=c.transit)
    t.trim_key("k1", min_version=2, mount_point=c.transit)
    expect(t.read_key("k1", mount_point=c.transit)["data"]["min_available_version"] == 2, "trimmed")
    raises(exceptions.InvalidRequest, t.update_key_configuration, "k1", min_decryption_version=1, mount_point=c.transit)


@check
def transit_delete_needs_deletion_allowed_and_upsert(c):
    t = c.client.secrets.transit
    t.create_key("doomed", mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.delete_key, "doomed", mount_point=c.transit)
    t.update_key_configuration("doomed", deletion_allowed=True, mount_point=c.transit)
    t.delete_key("doomed", mount_point=c.transit)
    raises(exceptions.InvalidPath, t.read_key, "doomed", mount_point=c.transit)
    t.encrypt_data("upserted", b64(b"x"), mount_point=c.transit)
    expect(t.read_key("upserted", mount_point=c.transit)["data"]["type"] == "aes256-gcm96", "upsert")
    t.create_key("rot", auto_rotate_period="24h", mount_point=c.transit)
    expect(t.read_key("rot", mount_point=c.transit)["data"]["auto_rotate_period"] == 86400, "24h")
    raises(exceptions.InvalidRequest, t.create_key, "rot2", auto_rotate_period="10m", mount_point=c.transit)


@check
def transit_batch_with_references_and_partial_failure(c):
    t = c.client.secrets.transit
    t.create_key("batch", mount_point=c.transit)
    items = [{"plaintext": b64(bytes([i]) * 5), "reference": f"r{i}"} for i in range(3)]
    results = t.encrypt_data("batch", plaintext=None, batch_input=items, mount_point=c.transit)["data"]["batch_results"]
    expect([r["reference"] for r in results] == ["r0", "r1", "r2"], results)
    decrypted = t.decrypt_data("batch", ciphertext=None, batch_input=[{"ciphertext": r["ciphertext"]} for r in results],
                               mount_point=c.transit)["data"]["batch_results"]
    expect([unb64(r["plaintext"]) for r in decrypted] == [bytes([i]) * 5 for i in range(3)], decrypted)
    error = raises(exceptions.InvalidRequest, t.encrypt_data, "batch", plaintext=None,
                   batch_input=[{"plaintext": b64(b"a")}, {"plaintext": "!!"}], mount_point=c.transit)
    batch = error.json["data"]["batch_results"]
    expect("ciphertext" in batch[0] and "error" in batch[1], batch)


@check
def transit_associated_data_derived_and_convergent(c):
    t = c.client.secrets.transit
    t.create_key("aad", mount_point=c.transit)
    aad = b64(b"bound")
    ciphertext = c.client.write_data(f"{c.transit}/encrypt/aad", data={"plaintext": b64(b"x"), "associated_data": aad})[
        "data"]["ciphertext"]
    raises(exceptions.InvalidRequest, t.decrypt_data, "aad", ciphertext, mount_point=c.transit)
    ok = c.client.write_data(f"{c.transit}/decrypt/aad", data={"ciphertext": ciphertext, "associated_data": aad})
    expect(unb64(ok["data"]["plaintext"]) == b"x", "aad round trip")
    t.create_key("derived", derived=True, mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.encrypt_data, "derived", b64(b"x"), mount_point=c.transit)
    context = b64(b"tenant-1")
    sealed = t.encrypt_data("derived", b64(b"x"), context=context, mount_point=c.transit)["data"]["ciphertext"]
    raises(exceptions.InvalidRequest, t.decrypt_data, "derived", sealed, context=b64(b"tenant-2"), mount_point=c.transit)
    t.create_key("conv", derived=True, convergent_encryption=True, mount_point=c.transit)
    one = t.encrypt_data("conv", b64(b"same"), context=context, mount_point=c.transit)["data"]["ciphertext"]
    two = t.encrypt_data("conv", b64(b"same"), context=context, mount_point=c.transit)["data"]["ciphertext"]
    expect(one == two, "convergent encryption is deterministic")


@check
def transit_other_key_types_datakey_random_hash(c):
    t = c.client.secrets.transit
    c.client.write_data(f"{c.transit}/keys/a128", data={"type": "aes128-gcm96"})
    t.create_key("cha", key_type="chacha20-poly1305", mount_point=c.transit)
    for name in ["a128", "cha"]:
        ct = t.encrypt_data(name, b64(b"12345"), mount_point=c.transit)["data"]["ciphertext"]
        expect(len(unb64(ct.split(":", 2)[2])) == 12 + 5 + 16, name)
        expect(unb64(t.decrypt_data(name, ct, mount_point=c.transit)["data"]["plaintext"]) == b"12345", name)
    t.create_key("dk", mount_point=c.transit)
    plain = t.generate_data_key("dk", "plaintext", mount_point=c.transit)["data"]
    expect(len(unb64(plain["plaintext"])) == 32, "datakey size")
    expect(t.decrypt_data("dk", plain["ciphertext"], mount_point=c.transit)["data"]["plaintext"] == plain["plaintext"], "")
    wrapped = t.generate_data_key("dk", "wrapped", bits=512, mount_point=c.transit)["data"]
    expect("plaintext" not in wrapped or wrapped.get("plaintext") is None, wrapped)
    expect(len(unb64(t.decrypt_data("dk", wrapped["ciphertext"], mount_point=c.transit)["data"]["plaintext"])) == 64, "")
    expect(len(unb64(t.generate_random_bytes(n_bytes=24, mount_point=c.transit)["data"]["random_bytes"])) == 24, "rnd")
    hexed = t.generate_random_bytes(n_bytes=8, output_format="hex", mount_point=c.transit)["data"]["random_bytes"]
    expect(len(hexed) == 16, hexed)
    digest = t.hash_data(b64(b"abc"), mount_point=c.transit)["data"]["sum"]
    expect(digest == hashlib.sha256(b"abc").hexdigest(), digest)
    digest = t.hash_data(b64(b"abc"), algorithm="sha2-512", output_format="base64", mount_point=c.transit)["data"]["sum"]
    expect(unb64(digest) == hashlib.sha512(b"abc").digest(), digest)


@check
def transit_export_and_hmac(c):
    t = c.client.secrets.transit
    t.create_key("exp", exportable=True, mount_point=c.transit)
    exported = t.export_key("exp", "encryption-key", mount_point=c.transit)["data"]["keys"]["1"]
    expect(len(unb64(exported)) == 32, "exported key")
    latest = t.export_key("exp", "encryption-key", version="latest", mount_point=c.transit)["data"]["keys"]
    expect(list(latest.values()) == [exported], latest)
    raises(exceptions.InvalidRequest, t.export_key, "k1", "encryption-key", mount_point=c.transit)
    hmac_key = unb64(t.export_key("exp", "hmac-key", mount_point=c.transit)["data"]["keys"]["1"])
    mac = t.generate_hmac("exp", b64(b"message"), mount_point=c.transit)["data"]["hmac"]
    expect(unb64(mac.split(":", 2)[2]) == hmac_module.new(hmac_key, b"message", hashlib.sha256).digest(), mac)
    expect(t.verify_signed_data("exp", b64(b"message"), hmac=mac, mount_point=c.transit)["data"]["valid"] is True, "")
    expect(t.verify_signed_data("exp", b64(b"other"), hmac=mac, mount_point=c.transit)["data"]["valid"] is False, "")


@check
def transit_sha3_hashes_hmacs_and_signatures(c):
    # hvac's typed methods refuse sha3 names client-side, so these go through its adapter; the results are checked
    # with hashlib and Python's cryptography package.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    post = c.client.adapter.post
    for name, reference in (("sha3-256", hashlib.sha3_256), ("sha3-512", hashlib.sha3_512)):
        digest = post(f"/v1/{c.transit}/hash/{name}", json={"input": b64(b"abc")})["data"]["sum"]
        expect(digest == reference(b"abc").hexdigest(), (name, digest))
    key = "sha3-" + secrets.token_hex(4)
    c.client.secrets.transit.create_key(key, exportable=True, mount_point=c.transit)
    raw = unb64(c.client.secrets.transit.export_key(key, "hmac-key", mount_point=c.transit)["data"]["keys"]["1"])
    mac = post(f"/v1/{c.transit}/hmac/{key}/sha3-384", json={"input": b64(b"message")})["data"]["hmac"]
    expect(unb64(mac.split(":", 2)[2]) == hmac_module.new(raw, b"message", hashlib.sha3_384).digest(), mac)
    for key_type, algorithms in (("ecdsa-p256", [None]), ("rsa-2048", ["pkcs1v15", "pss"])):
        name = f"sha3-{key_type}-" + secrets.token_hex(4)
        c.client.secrets.transit.create_key(name, key_type=key_type, mount_point=c.transit)
        pem = c.client.secrets.transit.read_key(name, mount_point=c.transit)["data"]["keys"]["1"]["public_key"]
        public = serialization.load_pem_public_key(pem.encode())
        for algorithm in algorithms:
            body = {"input": b64(b"document"), "hash_algorithm": "sha3-256", "marshaling_algorithm": "asn1"}
            if algorithm:
                body["signature_algorithm"] = algorithm
            signature = post(f"/v1/{c.transit}/sign/{name}", json=body)["data"]["signature"]
            raw_signature = unb64(signature.split(":", 2)[2])
            if key_type.startswith("ecdsa"):
                public.verify(raw_signature, b"document", ec.ECDSA(hashes.SHA3_256()))
            elif algorithm == "pkcs1v15":
                public.verify(raw_signature, b"document", padding.PKCS1v15(), hashes.SHA3_256())
            else:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA3_256()), salt_length=padding.PSS.AUTO)
                public.verify(raw_signature, b"document", pss, hashes.SHA3_256())
            body["signature"] = signature
            expect(post(f"/v1/{c.transit}/verify/{name}", json=body)["data"]["valid"] is True, (name, algorithm))


@check
def transit_signing(c):
    t = c.client.secrets.transit
    for key_type in ["ecdsa-p256", "ed25519", "rsa-2048"]:
        name = "sig-" + key_type
        t.create_key(name, key_type=key_type, mount_point=c.transit)
        signature = t.sign_data(name, b64(b"document"), mount_point=c.transit)["data"]["signature"]
        expect(signature.startswith("vault:v1:"), signature)
        valid = t.verify_signed_data(name, b64(b"document"), signature=signature, mount_point=c.transit)["data"]
        expect(valid["valid"] is True, key_type)
        other = t.verify_signed_data(name, b64(b"tampered"), signature=signature, mount_point=c.transit)["data"]
        expect(other["valid"] is False, key_type)
    jws = t.sign_data("sig-ecdsa-p256", b64(b"x"), marshaling_algorithm="jws", mount_point=c.transit)["data"]["signature"]
    payload = jws.split(":", 2)[2]
    expect("=" not in payload and len(base64.urlsafe_b64decode(payload + "==")) == 64, jws)
    expect(t.verify_signed_data("sig-ecdsa-p256", b64(b"x"), signature=jws, marshaling_algorithm="jws",
                                mount_point=c.transit)["data"]["valid"] is True, "jws verify")
    pkcs = t.sign_data("sig-rsa-2048", b64(b"x"), hash_algorithm="sha2-512", signature_algorithm="pkcs1v15",
                       mount_point=c.transit)["data"]["signature"]
    expect(t.verify_signed_data("sig-rsa-2048", b64(b"x"), signature=pkcs, hash_algorithm="sha2-512",
                                signature_algorithm="pkcs1v15", mount_point=c.transit)["data"]["valid"] is True, "")
    raises(exceptions.InvalidRequest, t.sign_data, "k1", b64(b"x"), mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.sign_data, "missing", b64(b"x"), mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.encrypt_data, "sig-ecdsa-p256", b64(b"x"), mount_point=c.transit)


@check
def transit_wrapping_key_is_rsa_4096(c):
    pem = c.client.read(f"{c.transit}/wrapping_key")["data"]["public_key"]
    expect(pem.startswith("-----BEGIN PUBLIC KEY-----"), pem[:40])
    der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    expect(len(der) > 540, len(der))  # an RSA-4096 SubjectPublicKeyInfo is 550 bytes


@check
def openapi_document_lists_the_mounted_engines(c):
    response = requests.get(f"{c.url}/v1/sys/internal/specs/openapi", headers={"X-Vault-Token": c.token})
    expect(response.status_code == 200, response.status_code)
    document = response.json()
    expect(document["openapi"].startswith("3."), document.get("openapi"))
    paths = document["paths"]
    for path in [f"/{c.transit}/encrypt/{{name}}", f"/{c.transit}/keys/{{name}}", f"/{c.kv}/data/{{path}}",
                 "/sys/health", "/auth/token/create"]:
        expect(path in paths, f"{path} missing")
    expect("post" in paths[f"/{c.transit}/encrypt/{{name}}"], "encrypt has no POST")
    # (OpenBao's own document fails openapi-spec-validator on duplicate operation IDs, so hvac-test.sh validates
    # vhsmd's document separately.)


@check
def metrics_in_the_prometheus_format(c):
    url = f"{c.url}/v1/sys/metrics"
    response = requests.get(url, params={"format": "prometheus"}, headers={"X-Vault-Token": c.token})
    expect(response.status_code == 200, response.status_code)
    expect(response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"])
    expect("# TYPE " in response.text, response.text[:200])


# behaviours found by a differential probe of hvac's API against OpenBao ------------------------------------------

@check
def child_tokens_inherit_their_parents_policies(c):
    tokens = c.client.auth.token
    timed = tokens.create(ttl="1h")["auth"]
    expect(timed["policies"] == ["root"] and timed["lease_duration"] == 3600, timed)
    # A root child without a TTL never expires, so it cannot be renewed.
    lasting = tokens.create()["auth"]
    expect(lasting["lease_duration"] == 0 and lasting["renewable"] is False, lasting)
    raises(exceptions.InvalidRequest, tokens.renew, lasting["client_token"])
    expect(tokens.create(no_default_policy=True)["auth"]["policies"] == ["root"], "no_default_policy")


@check
def token_ids_types_periods_and_display_names(c):
    tokens = c.client.auth.token
    raises(exceptions.Forbidden, tokens.lookup, "no-such-token")
    custom = "custom-" + secrets.token_hex(4)
    tokens.create(id=custom, policies=["default"], ttl="1h")
    raises(exceptions.InvalidRequest, tokens.create, id=custom, policies=["default"], ttl="1h")
    raises(exceptions.InvalidRequest, tokens.create, type="weird", policies=["default"])
    periodic = tokens.create(period="30m", policies=["default"])["auth"]["client_token"]
    expect(tokens.lookup(periodic)["data"]["period"] == 1800, "period")
    batch = tokens.create(type="batch", policies=["default"], ttl="1h")["auth"]["client_token"]
    expect(tokens.lookup(batch)["data"]["type"] == "batch", "batch type")
    raises(exceptions.InvalidRequest, tokens.renew, batch)
    named = tokens.create(display_name="My Name!", policies=["default"], ttl="1h")["auth"]["client_token"]
    expect(tokens.lookup(named)["data"]["display_name"] == "token-My-Name", "display name")


@check
def transit_hmac_verify_reads_hash_algorithm(c):
    t = c.client.secrets.transit
    t.create_key("probe-hmac", mount_point=c.transit)
    result = t.generate_hmac("probe-hmac", b64(b"hi"), algorithm="sha2-512", mount_point=c.transit)["data"]
    expect(set(result) == {"hmac"}, result)
    verified = t.verify_signed_data(
        "probe-hmac", b64(b"hi"), hmac=result["hmac"], hash_algorithm="sha2-512", mount_point=c.transit)
    expect(verified["data"]["valid"] is True, verified)


@check
def transit_edges_match_openbao(c):
    t = c.client.secrets.transit
    raises(exceptions.InvalidRequest, t.delete_key, "no-such-key", mount_point=c.transit)
    raises(exceptions.InvalidPath, t.export_key, "no-such-key", "encryption-key", mount_point=c.transit)
    t.create_key("probe-aes", mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.encrypt_data, "probe-aes", batch_input=[], mount_point=c.transit)
    raises(exceptions.InvalidRequest, t.generate_random_bytes, n_bytes=200000, mount_point=c.transit)
    # A nonce is ignored (it only served Vault's legacy convergent keys).
    sealed = t.encrypt_data("probe-aes", b64(b"x"), nonce=b64(b"123456789012"), mount_point=c.transit)
    expect(sealed["data"]["ciphertext"].startswith("vault:v1:"), sealed)


@check
def transit_sign_and_verify_batches_report_failed_items(c):
    t = c.client.secrets.transit
    t.create_key("probe-ed", key_type="ed25519", mount_point=c.transit)
    signed = t.sign_data(
        "probe-ed", batch_input=[{"input": b64(b"a")}, {"input": "!!"}], mount_point=c.transit)["data"]
    results = signed["batch_results"]
    expect(results[0]["signature"].startswith("vault:v1:") and results[1].get("error"), results)
    body = {"batch_input": [{"input": b64(b"a"), "signature": results[0]["signature"]},
                            {"input": b64(b"b"), "signature": results[0]["signature"]}]}
    verified = c.client.adapter.post(f"/v1/{c.transit}/verify/probe-ed", json=body)["data"]["batch_results"]
    expect([item["valid"] for item in verified] == [True, False], verified)


@check
def kv_configuration_and_metadata_in_vaults_forms(c):
    kv = c.client.secrets.kv.v2
    mount = "kvprobe-" + secrets.token_hex(4)
    c.client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    expect(kv.read_configuration(mount_point=mount)["data"]["max_versions"] == 0, "default max_versions")
    kv.configure(delete_version_after="2h", mount_point=mount)
    expect(kv.read_configuration(mount_point=mount)["data"]["delete_version_after"] == "2h0m0s", "duration")
    kv.create_or_update_secret("p", secret={"a": "1"}, mount_point=mount)
    kv.update_metadata("p", custom_metadata={"n": 1}, mount_point=mount)
    metadata = kv.read_secret_metadata("p", mount_point=mount)["data"]
    expect(metadata["oldest_version"] == 0 and metadata["custom_metadata"] == {"n": "1"}, metadata)
    c.client.sys.disable_secrets_engine(path=mount)


@check
def mount_tuning_auth_methods_capabilities_and_tools(c):
    sys_ = c.client.sys
    tuned = sys_.read_mount_configuration(c.kv)["data"]
    expect(tuned["default_lease_ttl"] == 2764800 and tuned["options"] == {"version": "2"}, tuned)
    sys_.tune_mount_configuration(c.kv, default_lease_ttl="1h", description="tuned")
    tuned = sys_.read_mount_configuration(c.kv)["data"]
    expect(tuned["default_lease_ttl"] == 3600 and tuned["description"] == "tuned", tuned)
    expect("token/" in sys_.list_auth_methods()["data"], "token auth method")
    limited = c.client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    caps = sys_.get_capabilities(["secret/data/x"], token=limited)["data"]
    expect(caps["capabilities"] == ["deny"], caps)
    raises(exceptions.InvalidRequest, sys_.get_capabilities, ["secret/data/x"], token="no-such-token")
    raises(exceptions.InvalidRequest, sys_.disable_secrets_engine, "sys")
    random = c.client.adapter.post("/v1/sys/tools/random/16", json={"format": "hex"})["data"]["random_bytes"]
    expect(len(random) == 32, random)
    digest = c.client.adapter.post("/v1/sys/tools/hash/sha2-256", json={"input": b64(b"abc")})["data"]["sum"]
    expect(digest == hashlib.sha256(b"abc").hexdigest(), digest)


@check
def accessor_renewal_missing_accessors_and_tidy(c):
    tokens = c.client.auth.token
    created = tokens.create(policies=["default"], ttl="1h")["auth"]
    renewed = tokens.renew_accessor(created["accessor"], increment="2h")["auth"]
    expect(3600 < renewed["lease_duration"] <= 7200, renewed)
    raises(exceptions.InvalidRequest, tokens.renew_accessor, "no-such-accessor")
    # A 200 with a body comes back parsed; the 202 of tidy as the response itself.
    missing = tokens.revoke_accessor("no-such-accessor")
    expect(missing["warnings"] and missing["data"] is None, missing)
    tidied = tokens.tidy()
    expect(tidied.status_code == 202 and tidied.json()["warnings"], tidied)


@check
def leases_audit_devices_and_auth_methods_say_what_they_refuse(c):
    sys_ = c.client.sys
    raises(exceptions.InvalidRequest, sys_.read_lease, "no/such/lease")
    raises(exceptions.InvalidRequest, sys_.renew_lease, "no/such/lease")
    sys_.revoke_lease("no/such/lease")
    raises(exceptions.InvalidRequest, sys_.enable_audit_device, "file", path="api-audit",
           options={"file_path": "/tmp/never-written.log"})
    tuning = sys_.read_auth_method_tuning("token")["data"]
    expect(tuning["token_type"] == "default-service" and tuning["max_lease_ttl"] > 0, tuning)
    raises(exceptions.InvalidRequest, sys_.disable_auth_method, "token")


@check
def tuning_the_token_auth_method_sets_token_ttls(c):
    sys_ = c.client.sys
    sys_.tune_auth_method("token", default_lease_ttl="1h", max_lease_ttl="2h", description="tuned tokens")
    try:
        tuning = sys_.read_auth_method_tuning("token")["data"]
        expect(tuning["default_lease_ttl"] == 3600 and tuning["max_lease_ttl"] == 7200, tuning)
        expect(sys_.list_auth_methods()["data"]["token/"]["description"] == "tuned tokens", "description")
        create = c.client.auth.token.create
        expect(create(policies=["default"])["auth"]["lease_duration"] == 3600, "default TTL")
        expect(create(policies=["default"], ttl="5h")["auth"]["lease_duration"] == 7200, "capped TTL")
        token = create(policies=["default"], ttl="90m")["auth"]["client_token"]
        renewed = c.client.auth.token.renew(token, increment="10h")["auth"]["lease_duration"]
        expect(renewed <= 7200, renewed)
        raises(exceptions.InvalidRequest, sys_.tune_auth_method, "token", default_lease_ttl="3h")
        raises(exceptions.InvalidRequest, sys_.tune_auth_method, "token", token_type="batch")
    finally:
        sys_.tune_auth_method("token", default_lease_ttl="system", max_lease_ttl="system",
                              description="token based credentials")
    tuning = sys_.read_auth_method_tuning("token")["data"]
    expect(tuning["default_lease_ttl"] == 2764800 and tuning["max_lease_ttl"] == 2764800, tuning)


@check
def remount_kv_v2_alias_subkeys_and_transit_config(c):
    sys_ = c.client.sys
    kv = c.client.secrets.kv.v2
    first, second = "mv-" + secrets.token_hex(4), "mv-" + secrets.token_hex(4)
    sys_.enable_secrets_engine("kv-v2", path=first)
    expect(sys_.retrieve_mount_option(first, "version") == "2", "kv-v2 is KV version 2")
    kv.create_or_update_secret("sk", secret={"a": {"b": {"c": 1}}, "d": 2}, mount_point=first)
    raises(exceptions.InvalidRequest, sys_.move_backend, "no-such-mount", second)
    sys_.move_backend(first, second)
    for _ in range(50):  # OpenBao moves in the background
        if f"{second}/" in sys_.list_mounted_secrets_engines()["data"]:
            break
        time.sleep(0.1)
    expect(kv.read_secret_version("sk", mount_point=second)["data"]["data"]["d"] == 2, "data moved with the mount")
    subkeys = c.client.adapter.get(f"/v1/{second}/subkeys/sk")["data"]["subkeys"]
    expect(subkeys == {"a": {"b": {"c": None}}, "d": None}, subkeys)
    shallow = c.client.adapter.get(f"/v1/{second}/subkeys/sk", params={"depth": 1})["data"]["subkeys"]
    expect(shallow == {"a": None, "d": None}, shallow)
    sys_.disable_secrets_engine(second)
    expect(c.client.adapter.get(f"/v1/{c.transit}/cache-config")["data"]["size"] == 0, "cache-config")
    expect(c.client.adapter.get(f"/v1/{c.transit}/config/keys")["data"]["disable_upsert"] is False, "config/keys")


@check
def barrier_key_status_and_rotation(c):
    sys_ = c.client.sys
    before = sys_.get_encryption_key_status()["data"]
    expect(before["term"] >= 1 and before["install_time"], before)
    sys_.rotate_encryption_key()
    after = sys_.get_encryption_key_status()["data"]
    expect(after["term"] == before["term"] + 1, (before, after))
    # Everything written before the rotation still reads back.
    expect(c.client.secrets.kv.v2.read_secret_version("app/db", mount_point=c.kv)["data"]["data"], "old values")


@check
def token_roles(c):
    tokens = c.client.auth.token
    name = "role-" + secrets.token_hex(4)
    tokens.create_or_update_role(name, allowed_policies=["default", "p1"], orphan=True, token_period="1h",
                                 path_suffix="sfx")
    role = tokens.read_role(name)["data"]
    expect(role["allowed_policies"] == ["default", "p1"] and role["orphan"] is True and role["token_period"] == 3600
           and role["path_suffix"] == "sfx" and role["token_type"] == "default-service", role)
    expect(name in tokens.list_roles()["data"]["keys"], "listed")
    created = tokens.create(role_name=name, policies=["p1"])["auth"]
    expect(created["policies"] == ["default", "p1"] and created["orphan"] is True, created)
    looked = tokens.lookup(created["client_token"])["data"]
    expect(looked["role"] == name and looked["path"] == f"auth/token/create/{name}/sfx", looked)
    # The role's period: a renewal goes back to it whatever the increment.
    renewed = tokens.renew(created["client_token"], increment="5h")["auth"]
    expect(0 < renewed["lease_duration"] <= 3600, renewed)
    raises(exceptions.InvalidRequest, tokens.create, role_name=name, policies=["p2"])
    raises(exceptions.InvalidRequest, tokens.create, role_name="no-such-role")
    tokens.delete_role(name)
    raises(exceptions.InvalidPath, tokens.read_role, name)
    tokens.delete_role(name)  # deleting a missing role is not an error


@check
def kv_version_1(c):
    mount = "kv1-" + secrets.token_hex(4)
    c.client.sys.enable_secrets_engine("kv", path=mount, description="v1",
                                       config={"default_lease_ttl": "1h", "max_lease_ttl": "2h"})
    # Without a version, kv is version 1 and the mount has no options.
    expect(c.client.sys.retrieve_mount_option(mount, "version") is None, "no version option")
    tuned = c.client.sys.read_mount_configuration(mount)["data"]
    expect(tuned["default_lease_ttl"] == 3600 and tuned["max_lease_ttl"] == 7200, tuned)
    v1 = c.client.secrets.kv.v1
    v1.create_or_update_secret("app/one", secret={"a": "b"}, mount_point=mount)
    v1.create_or_update_secret("app/two", secret={"n": 1, "ttl": "30m"}, mount_point=mount)
    read = v1.read_secret("app/one", mount_point=mount)
    expect(read["data"] == {"a": "b"} and read["lease_duration"] == 3600, read)
    timed = v1.read_secret("app/two", mount_point=mount)
    expect(timed["data"]["n"] == 1 and timed["lease_duration"] == 1800, timed)
    expect(sorted(v1.list_secrets("app", mount_point=mount)["data"]["keys"]) == ["one", "two"], "list")
    v1.delete_secret("app/one", mount_point=mount)
    raises(exceptions.InvalidPath, v1.read_secret, "app/one", mount_point=mount)
    c.client.sys.disable_secrets_engine(path=mount)


@check
def kv_version_1_upgrades_to_version_2_in_place(c):
    mount = "kvup-" + secrets.token_hex(4)
    c.client.sys.enable_secrets_engine("kv", path=mount)
    c.client.secrets.kv.v1.create_or_update_secret("app/one", secret={"a": "b"}, mount_point=mount)
    c.client.secrets.kv.v1.create_or_update_secret("top", secret={"n": 1}, mount_point=mount)
    c.client.sys.tune_mount_configuration(mount, options={"version": "2"})
    expect(c.client.sys.retrieve_mount_option(mount, "version") == "2", "version option")
    v2 = c.client.secrets.kv.v2
    deadline = time.time() + 10  # OpenBao upgrades in the background; vhsmd before it answers.
    while True:
        try:
            read = v2.read_secret_version("app/one", mount_point=mount, raise_on_deleted_version=True)
            break
        except exceptions.InvalidRequest:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    expect(read["data"]["data"] == {"a": "b"} and read["data"]["metadata"]["version"] == 1, read)
    expect(v2.read_secret_version("top", mount_point=mount, raise_on_deleted_version=True)["data"]["data"] == {"n": 1},
           "top")
    expect(sorted(v2.list_secrets("", mount_point=mount)["data"]["keys"]) == ["app/", "top"], "list")
    expect(v2.create_or_update_secret("top", secret={"n": 2}, mount_point=mount)["data"]["version"] == 2, "write")
    error = raises(exceptions.InvalidRequest, c.client.sys.tune_mount_configuration, mount, options={"version": "1"})
    expect("cannot downgrade" in str(error), error)
    c.client.sys.disable_secrets_engine(path=mount)


@check
def legacy_policy_reads_repeat_their_fields_at_the_top_level(c):
    name = "legacy-" + secrets.token_hex(4)
    rules = 'path "legacy/*" { capabilities = ["read"] }'
    c.client.sys.create_or_update_policy(name, rules)
    read = c.client.sys.read_policy(name)
    expect(read["rules"] == rules and read["name"] == name and read["data"]["rules"] == rules, read)
    acl = c.client.sys.read_acl_policy(name)["data"]
    expect(acl["policy"] == rules and acl["allow_wildcards_in_identity_templates"] is False, acl)
    c.client.sys.delete_policy(name)


@check
def response_wrapping_of_a_token_and_of_data(c):
    # auth/token/create with wrap_ttl: only wrap_info comes back; the holder unwraps it once with that token alone.
    wrapped = c.client.auth.token.create(policies=["default"], ttl="1h", wrap_ttl="5m")
    info = wrapped["wrap_info"]
    expect(wrapped["auth"] is None and wrapped["data"] is None, wrapped)
    expect(info["ttl"] == 300 and info["creation_path"] == "auth/token/create" and info["wrapped_accessor"], info)
    holder = hvac.Client(url=c.url, token=info["token"])
    auth = holder.sys.unwrap()["auth"]
    expect(auth["accessor"] == info["wrapped_accessor"] and auth["policies"] == ["default"], auth)
    expect(hvac.Client(url=c.url, token=auth["client_token"]).auth.token.lookup_self()["data"]["ttl"] > 0, auth)
    raises(hvac.exceptions.InvalidRequest, holder.sys.unwrap)
    # sys/wrapping/wrap needs a TTL; lookup is unauthenticated and does not spend the token; a token in the body is
    # unwrapped on the caller's authority.
    raises(hvac.exceptions.InvalidRequest, c.client.adapter.post, "/v1/sys/wrapping/wrap", json={"a": "b"})
    token = c.client.sys.wrap(payload={"a": "b", "n": 1}, ttl="90s")["wrap_info"]["token"]
    looked = requests.post(f"{c.url}/v1/sys/wrapping/lookup", json={"token": token}).json()["data"]
    expect(looked["creation_path"] == "sys/wrapping/wrap" and looked["creation_ttl"] == 90, looked)
    rewrapped = c.client.adapter.post("/v1/sys/wrapping/rewrap", json={"token": token})["wrap_info"]
    expect(rewrapped["ttl"] == 90 and rewrapped["token"] != token, rewrapped)
    raises(hvac.exceptions.InvalidRequest, c.client.sys.unwrap, token=token)
    expect(c.client.sys.unwrap(token=rewrapped["token"])["data"] == {"a": "b", "n": 1}, "rewrapped data")
    # Any read can be wrapped (here transit encrypt); a 204 stays a 204; a bad TTL header is a 400.
    key = "wrap-" + secrets.token_hex(4)
    c.client.secrets.transit.create_key(name=key, mount_point=c.transit)
    sealed = c.client.adapter.post(f"/v1/{c.transit}/encrypt/{key}", json={"plaintext": b64(b"hi")}, wrap_ttl="1m")
    plain = hvac.Client(url=c.url, token=sealed["wrap_info"]["token"]).sys.unwrap()["data"]
    expect(plain["ciphertext"].startswith("vault:v1:"), plain)
    response = requests.post(
        f"{c.url}/v1/sys/policies/acl/wrap-{key}", headers={"X-Vault-Token": c.token, "X-Vault-Wrap-TTL": "60"},
        json={"policy": 'path "x" { capabilities = ["read"] }'})
    expect(response.status_code == 204, response.status_code)
    response = requests.post(
        f"{c.url}/v1/sys/wrapping/wrap", headers={"X-Vault-Token": c.token, "X-Vault-Wrap-TTL": "abc"}, json={})
    expect(response.status_code == 400 and "X-Vault-Wrap-TTL" in response.json()["errors"][0], response.text)
    c.client.sys.delete_policy(f"wrap-{key}")


@check
def policies_with_wrapping_ttl_bounds_admit_only_wrapped_requests(c):
    name = "wrapbounds-" + secrets.token_hex(4)
    bad = 'path "sys/wrapping/wrap" { capabilities = ["update"]  min_wrapping_ttl = "2h"  max_wrapping_ttl = "1h" }'
    raises(hvac.exceptions.InvalidRequest, c.client.sys.create_or_update_acl_policy, name, bad)
    rules = 'path "sys/wrapping/wrap" { capabilities = ["update"]  min_wrapping_ttl = "1m"  max_wrapping_ttl = "1h" }'
    c.client.sys.create_or_update_acl_policy(name, rules)
    token = c.client.auth.token.create(policies=[name], no_default_policy=True)["auth"]["client_token"]
    limited = hvac.Client(url=c.url, token=token)
    raises(hvac.exceptions.Forbidden, limited.adapter.post, "/v1/sys/wrapping/wrap", json={"a": 1})
    for ttl, allowed in (("30s", False), ("60", True), ("1h", True), ("3601", False)):
        if allowed:
            expect(limited.sys.wrap(payload={"a": 1}, ttl=ttl)["wrap_info"]["ttl"] > 0, ttl)
        else:
            raises(hvac.exceptions.Forbidden, limited.sys.wrap, payload={"a": 1}, ttl=ttl)
    c.client.sys.delete_acl_policy(name)


def raw(c, method, path, token=True, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["X-Vault-Token"] = c.token
    return requests.request(method, f"{c.url}/v1/{path}", headers=headers, **kwargs)


@check
def sys_and_token_edges_found_by_the_differential_probe(c):
    # A refused enable leaves no mount behind.
    bad = "badcfg-" + secrets.token_hex(4)
    response = raw(c, "POST", f"sys/mounts/{bad}", json={"type": "kv", "config": {"default_lease_ttl": "abc"}})
    expect(response.status_code == 400, response.text)
    response = raw(c, "POST", f"sys/mounts/{bad}", json={"type": "kv", "options": "v2"})
    expect(response.status_code == 400, response.text)
    expect(f"{bad}/" not in c.client.sys.list_mounted_secrets_engines()["data"], "a refused mount exists")
    # Bodies are JSON objects; token fields are checked.
    expect(raw(c, "POST", "auth/token/create", data="[1,2]").status_code == 400, "array body")
    for body in ({"num_uses": -1}, {"type": "batch", "period": "1h", "policies": ["default"]},
                 {"entity_alias": "x"}, {"meta": {"a": {"b": 1}}}):
        response = raw(c, "POST", "auth/token/create", json=body)
        expect(response.status_code == 400, (body, response.text))
    expect(raw(c, "POST", "sys/capabilities-self", json={}).status_code == 400, "capabilities without paths")
    looked = raw(c, "GET", f"auth/token/lookup?token={c.token}").json()["data"]
    expect(looked["policies"] == ["root"], looked)
    # Mount entries, the token method's entry, unknown auth paths, namespaces, verbs, doubled slashes.
    entry = raw(c, "GET", f"sys/mounts/{c.kv}").json()
    expect(entry["data"]["type"] == "kv" and entry["type"] == "kv" and entry["data"]["accessor"], entry)
    tune = raw(c, "GET", f"sys/mounts/{c.kv}/tune").json()
    expect(tune["default_lease_ttl"] == tune["data"]["default_lease_ttl"], tune)
    expect(raw(c, "GET", "sys/auth/token").json()["data"]["type"] == "token", "sys/auth/token")
    expect(raw(c, "GET", "sys/auth/nosuch/tune").status_code == 400, "unknown auth tune")
    expect(raw(c, "DELETE", "sys/auth/nosuch").status_code == 204, "disable unknown auth")
    response = raw(c, "GET", "sys/mounts", headers={"X-Vault-Namespace": "ns-" + secrets.token_hex(3)})
    expect(response.status_code == 404 and response.json()["errors"] == ["namespace not found"], response.text)
    expect(raw(c, "DELETE", "sys/health").status_code == 405, "DELETE sys/health")
    expect(raw(c, "PUT", "sys/seal-status").status_code == 405, "PUT sys/seal-status")
    expect(raw(c, "GET", f"{c.transit}/encrypt/k1").status_code == 405, "GET encrypt")
    name = "legacy-rules-" + secrets.token_hex(4)
    response = raw(c, "PUT", f"sys/policy/{name}", json={"rules": 'path "x" { capabilities = ["read"] }'})
    expect(response.status_code == 200 and "deprecated" in response.json()["warnings"][0], response.text)
    c.client.sys.delete_policy(name)


@check
def kv_merge_patch_and_null_data(c):
    merge = {"Content-Type": "application/merge-patch+json"}
    c.client.secrets.kv.v2.create_or_update_secret("patched", secret={"a": 1, "b": 2}, mount_point=c.kv)
    response = raw(c, "PATCH", f"{c.kv}/data/patched", json={"data": {"b": None, "c": 3}}, headers=dict(merge))
    expect(response.status_code == 200 and response.json()["data"]["version"] == 2, response.text)
    read = c.client.secrets.kv.v2.read_secret_version("patched", mount_point=c.kv, raise_on_deleted_version=True)
    expect(read["data"]["data"] == {"a": 1, "c": 3}, read)
    response = raw(c, "PATCH", f"{c.kv}/data/patched", json={"data": {"d": 4}})
    expect(response.status_code == 415, response.text)
    response = raw(c, "PATCH", f"{c.kv}/data/patched", json={"data": {"d": 4}, "options": {"cas": 1}},
                   headers=dict(merge))
    expect(response.status_code == 400, response.text)
    expect(raw(c, "PATCH", f"{c.kv}/data/never-written", json={"data": {"d": 4}}, headers=dict(merge))
           .status_code == 404, "patch of a missing secret")
    c.client.secrets.kv.v2.update_metadata("patched", custom_metadata={"x": "1", "y": "2"}, mount_point=c.kv)
    response = raw(c, "PATCH", f"{c.kv}/metadata/patched", json={"custom_metadata": {"x": None, "z": "3"}},
                   headers=dict(merge))
    expect(response.status_code == 204, response.text)
    metadata = c.client.secrets.kv.v2.read_secret_metadata("patched", mount_point=c.kv)["data"]
    expect(metadata["custom_metadata"] == {"y": "2", "z": "3"}, metadata)
    expect(raw(c, "POST", f"{c.kv}/data/nulldata", json={"data": None}).status_code == 200, "data null")


@check
def transit_settings_and_batch_edges(c):
    t = c.client.secrets.transit
    response = raw(c, "POST", f"{c.transit}/cache-config", json={"size": 100})
    expect(response.status_code == 200 and response.json()["data"]["size"] == 100, response.text)
    expect(raw(c, "GET", f"{c.transit}/cache-config").json()["data"]["size"] == 100, "cache size kept")
    expect(raw(c, "POST", f"{c.transit}/cache-config", json={"size": 5}).status_code == 400, "cache size 5")
    raw(c, "POST", f"{c.transit}/cache-config", json={"size": 0})
    raw(c, "POST", f"{c.transit}/config/keys", json={"disable_upsert": True})
    try:
        expect(raw(c, "GET", f"{c.transit}/config/keys").json()["data"]["disable_upsert"] is True, "upsert off")
        raises(exceptions.InvalidRequest, t.encrypt_data, "no-upsert-" + secrets.token_hex(4), b64(b"x"),
               mount_point=c.transit)
    finally:
        raw(c, "POST", f"{c.transit}/config/keys", json={"disable_upsert": False})
    name = "edges-" + secrets.token_hex(4)
    t.create_key(name, mount_point=c.transit)
    response = raw(c, "POST", f"{c.transit}/hmac/{name}",
                   json={"batch_input": [{"input": b64(b"a")}, {"input": "%%%"}]})
    results = response.json()["data"]["batch_results"]
    expect(response.status_code == 200 and "hmac" in results[0] and "error" in results[1], response.text)
    signer = "edges-sig-" + secrets.token_hex(4)
    t.create_key(signer, key_type="ed25519", mount_point=c.transit)
    signature = t.sign_data(signer, b64(b"doc"), mount_point=c.transit)["data"]["signature"]
    response = raw(c, "POST", f"{c.transit}/verify/{signer}",
                   json={"input": b64(b"doc"), "signature": signature, "hmac": "vault:v1:AAAA"})
    expect(response.status_code == 200 and response.json()["data"]["valid"] is True, response.text)


@check
def transit_disable_mount(c):
    c.client.sys.disable_secrets_engine(path=c.transit)
    expect(f"{c.transit}/" not in c.client.sys.list_mounted_secrets_engines()["data"], "transit still mounted")


# token store and ACL guards (issue 13) ------------------------------------------------------------------------

def policy_token(c, name, text):
    """Writes the ACL policy `name` and returns a token holding it (and default)."""
    c.client.sys.create_or_update_acl_policy(name, text)
    return c.client.auth.token.create(policies=[name])["auth"]["client_token"]


def errors(response):
    return response.json().get("errors") if response.content else None


@check
def only_root_creates_root_whatever_a_role_allows(c):
    suffix = secrets.token_hex(3)
    role = "rootish-" + suffix
    ops = policy_token(c, "ops-" + suffix, f'path "auth/token/create/{role}" {{ capabilities = ["update"] }}')
    expect(raw(c, "POST", f"auth/token/roles/{role}", json={"allowed_policies": ["ROOT"]}).status_code == 204, role)
    expect(raw(c, "GET", f"auth/token/roles/{role}").json()["data"]["allowed_policies"] == ["root"], "sanitised")
    for body in ({}, {"policies": ["root"]}, {"policies": [" Root "]}):
        response = raw(c, "POST", f"auth/token/create/{role}", json=body, headers={"X-Vault-Token": ops}, token=False)
        expect(response.status_code == 400, response.text)
        expect(errors(response) == ["root tokens may not be created without parent token being root"], response.text)
    sudo = policy_token(c, "creator-" + suffix, 'path "auth/token/create" { capabilities = ["update", "sudo"] }')
    response = raw(c, "POST", "auth/token/create", json={"policies": ["ROOT"]}, headers={"X-Vault-Token": sudo},
                   token=False)
    expect(response.status_code == 400 and "parent token being root" in response.text, response.text)


@check
def no_parent_and_revoke_orphan_take_sudo(c):
    suffix = secrets.token_hex(3)
    plain_name, sudo_name = "plain-" + suffix, "sudo-" + suffix
    plain = policy_token(c, plain_name, 'path "auth/token/create" { capabilities = ["update"] }\n'
                         'path "auth/token/revoke-orphan" { capabilities = ["update"] }')
    sudo = policy_token(c, sudo_name, 'path "auth/token/create" { capabilities = ["update", "sudo"] }\n'
                        'path "auth/token/revoke-orphan" { capabilities = ["update", "sudo"] }')
    response = raw(c, "POST", "auth/token/create", json={"no_parent": True, "policies": [plain_name]},
                   headers={"X-Vault-Token": plain}, token=False)
    expect(response.status_code == 400, response.text)
    expect(errors(response) == ["root or sudo privileges required to create orphan token"], response.text)
    response = raw(c, "POST", "auth/token/create", json={"no_parent": True, "policies": [sudo_name]},
                   headers={"X-Vault-Token": sudo}, token=False)
    expect(response.status_code == 200 and response.json()["auth"]["orphan"] is True, response.text)
    parent = c.client.auth.token.create()["auth"]["client_token"]
    child = hvac.Client(url=c.url, token=parent).auth.token.create()["auth"]["client_token"]
    response = raw(c, "POST", "auth/token/revoke-orphan", json={"token": parent}, headers={"X-Vault-Token": plain},
                   token=False)
    expect(response.status_code == 400, response.text)
    expect(errors(response) == ["root or sudo privileges required to revoke and orphan"], response.text)
    expect(c.client.auth.token.lookup(parent)["data"]["id"] == parent, "parent revoked without sudo")
    response = raw(c, "POST", "auth/token/revoke-orphan", json={"token": parent}, headers={"X-Vault-Token": sudo},
                   token=False)
    expect(response.status_code == 204, response.text)
    expect(c.client.auth.token.lookup(child)["data"]["orphan"] is True, "child not orphaned")


@check
def an_expiring_root_cannot_mint_a_non_expiring_one(c):
    expiring = c.client.auth.token.create(ttl="1h")["auth"]
    expect(expiring["policies"] == ["root"] and expiring["lease_duration"] == 3600, expiring)
    headers = {"X-Vault-Token": expiring["client_token"]}
    for path, body in (("auth/token/create", {}), ("auth/token/create", {"ttl": "0"}),
                       ("auth/token/create-orphan", {})):
        response = raw(c, "POST", path, json=body, headers=dict(headers), token=False)
        expect(response.status_code == 400, f"{path} {body}: {response.text}")
        expect(errors(response) == ["expiring root tokens cannot create non-expiring root tokens"], response.text)
    response = raw(c, "POST", "auth/token/create", json={"ttl": "2h"}, headers=dict(headers), token=False)
    expect(response.status_code == 200 and response.json()["auth"]["lease_duration"] == 7200, response.text)
    response = raw(c, "POST", "auth/token/create", json={"explicit_max_ttl": "3h"}, headers=dict(headers), token=False)
    expect(response.status_code == 200 and response.json()["auth"]["lease_duration"] == 10800, response.text)


@check
def response_wrapping_is_reserved_like_root(c):
    for policies in (["response-wrapping"], [" Response-Wrapping"]):
        response = raw(c, "POST", "auth/token/create", json={"policies": policies})
        expect(response.status_code == 400, response.text)
        expect(errors(response) == ['cannot assign policy "response-wrapping"'], response.text)
    role = "rw-" + secrets.token_hex(3)
    raw(c, "POST", f"auth/token/roles/{role}", json={"allowed_policies": ["response-wrapping"]})
    response = raw(c, "POST", f"auth/token/create/{role}", json={})
    expect(response.status_code == 400 and "cannot assign policy" in response.text, response.text)
    for path in ("sys/policies/acl/response-wrapping", "sys/policy/Response-Wrapping"):
        response = raw(c, "PUT", path, json={"policy": 'path "x" { capabilities = ["read"] }'})
        expect(response.status_code == 400, response.text)
        expect(errors(response) == ['cannot update "response-wrapping" policy'], response.text)
    response = raw(c, "DELETE", "sys/policies/acl/response-wrapping")
    expect(errors(response) == ['cannot delete "response-wrapping" policy'], response.text)
    policy = c.client.sys.read_acl_policy("response-wrapping")["data"]["policy"]
    expect('path "sys/wrapping/unwrap"' in policy, policy)
    expect("response-wrapping" not in c.client.sys.list_acl_policies()["data"]["keys"], "listed")


@check
def policy_names_are_sanitised_on_every_path(c):
    upper = c.client.auth.token.create(policies=["ROOT", "x"])["auth"]
    expect(upper["policies"] == ["root"], upper["policies"])
    looked = hvac.Client(url=c.url, token=upper["client_token"]).auth.token.lookup_self()["data"]
    expect(looked["policies"] == ["root"], looked["policies"])
    name = "Creator-" + secrets.token_hex(3)
    c.client.sys.create_or_update_acl_policy(name, 'path "auth/token/create" { capabilities = ["update"] }')
    creator = c.client.auth.token.create(policies=[f" {name} ", name.lower()])["auth"]
    expect(creator["policies"] == sorted(["default", name.lower()]), creator["policies"])
    headers = {"X-Vault-Token": creator["client_token"]}
    response = raw(c, "POST", "auth/token/create", json={"policies": ["ROOT"]}, headers=dict(headers), token=False)
    expect(response.status_code == 400, response.text)
    expect(errors(response) == ["child policies must be subset of parent"], response.text)
    response = raw(c, "POST", "auth/token/create", json={"policies": [name.upper()]}, headers=dict(headers),
                   token=False)
    expect(response.status_code == 200 and response.json()["auth"]["policies"] == sorted(["default", name.lower()]),
           response.text)


@check
def patch_is_held_to_the_rules_parameter_constraints(c):
    for name in ("s", "r", "al"):
        c.client.secrets.kv.v2.create_or_update_secret(f"pc/{name}", secret={"a": "1"}, mount_point=c.kv)
    token = policy_token(c, "patcher-" + secrets.token_hex(3), f"""
path "{c.kv}/data/pc/*" {{
    capabilities = ["patch", "read"]
    denied_parameters = {{ "options" = [] }}
}}
path "{c.kv}/data/pc/r" {{
    capabilities = ["patch"]
    required_parameters = ["options"]
}}
path "{c.kv}/data/pc/al" {{
    capabilities = ["patch"]
    allowed_parameters = {{ "data" = [] }}
}}
""")
    headers = {"X-Vault-Token": token, "Content-Type": "application/merge-patch+json"}

    def patch(name, body):
        return raw(c, "PATCH", f"{c.kv}/data/pc/{name}", json=body, headers=dict(headers), token=False).status_code

    expect(patch("s", {"data": {"b": "2"}}) == 200, "patch allowed")
    expect(patch("s", {"data": {"b": "9"}, "options": {"cas": 2}}) == 403, "denied parameter")
    expect(patch("r", {"data": {"b": "2"}}) == 403, "required parameter missing")
    expect(patch("r", {"data": {"b": "2"}, "options": {}}) == 200, "required parameter present")
    expect(patch("al", {"data": {"b": "2"}, "options": {}}) == 403, "parameter not allowed")
    expect(patch("al", {"data": {"b": "3"}}) == 200, "allowed parameter")
    data = c.client.secrets.kv.v2.read_secret_version("pc/s", mount_point=c.kv, raise_on_deleted_version=True)
    expect(data["data"]["data"] == {"a": "1", "b": "2"}, data["data"]["data"])


@check
def policy_endpoints_are_matched_on_segment_boundaries(c):
    name = "near" + secrets.token_hex(3)
    token = policy_token(c, "near-" + secrets.token_hex(3),
                         f'path "sys/policy{name}" {{ capabilities = ["create", "update", "read"] }}')
    body = {"policy": 'path "x" { capabilities = ["read"] }'}
    for path, caller in ((f"sys/policy{name}", token), (f"sys/policy{name}", c.token),
                         (f"sys/policies/acl{name}", c.token)):
        response = raw(c, "PUT", path, json=body, headers={"X-Vault-Token": caller}, token=False)
        expect(response.status_code == 404, f"{path}: {response.status_code} {response.text}")
    expect(raw(c, "GET", f"sys/policies/acl/{name}").status_code == 404, "policy written through sys/policyX")


# auth methods: sys/auth, and vhsmd's sev-snp method through hvac ---------------------------------------------

@check
def auth_method_listing_and_refusals_have_vaults_shape(c):
    sys_ = c.client.sys
    listing = sys_.list_auth_methods()
    token = listing["data"]["token/"]
    expect(listing["token/"] == token, "the listing is repeated at the top level")
    expect(token["type"] == "token" and token["accessor"].startswith("auth_token_"), token)
    expect(token["local"] is False and token["seal_wrap"] is False, token)
    expect(token["config"]["token_type"] == "default-service", token["config"])
    expect({"default_lease_ttl", "max_lease_ttl", "force_no_cache"} <= set(token["config"]), token["config"])
    expect(sys_.read_auth_method_tuning("token")["data"]["token_type"] == "default-service", "token tuning")
    error = raises(exceptions.InvalidRequest, sys_.enable_auth_method, "no-such-method-type", path="nope")
    expect("no-such-method-type" in str(error), str(error))
    sys_.disable_auth_method("never-enabled-" + secrets.token_hex(3))  # nothing mounted: a no-op, 204
    raises(exceptions.InvalidRequest, sys_.read_auth_method_tuning, "never-enabled-" + secrets.token_hex(3))
    expect("nope/" not in sys_.list_auth_methods()["data"], "a refused enable left a mount")


@check
@vhsmd_only("auth/sev-snp is vhsmd's auth method (OpenBao has no sev-snp type)")
def sev_snp_auth_method_enable_list_tune_disable(c):
    sys_ = c.client.sys
    path = "snp-" + secrets.token_hex(3)
    sys_.enable_auth_method("sev-snp", path=path, description="workloads", config={"default_lease_ttl": "30m"})
    try:
        entry = sys_.list_auth_methods()["data"][f"{path}/"]
        expect(entry["type"] == "sev-snp" and entry["description"] == "workloads", entry)
        expect(entry["accessor"].startswith("auth_sev-snp_"), entry)
        expect(f"{path}/" not in sys_.list_mounted_secrets_engines()["data"], "listed as a secrets engine")
        expect(sys_.read_auth_method_tuning(path)["data"]["default_lease_ttl"] == 1800, "enable's config")
        sys_.tune_auth_method(path, default_lease_ttl="1h", max_lease_ttl="2h", description="tuned")
        tuning = sys_.read_auth_method_tuning(path)["data"]
        expect(tuning["default_lease_ttl"] == 3600 and tuning["max_lease_ttl"] == 7200, tuning)
        expect(sys_.list_auth_methods()["data"][f"{path}/"]["description"] == "tuned", "tuned description")
        error = raises(exceptions.InvalidRequest, sys_.enable_auth_method, "sev-snp", path=path)
        expect("in use" in str(error), str(error))
    finally:
        sys_.disable_auth_method(path)
    expect(f"{path}/" not in sys_.list_auth_methods()["data"], "still listed after disable")
    response = requests.post(f"{c.url}/v1/auth/{path}/nonce")
    expect(response.status_code in (403, 404, 405), (response.status_code, response.text))


@check
@vhsmd_only("a login with SEV-SNP evidence needs vhsmd's auth/sev-snp and the vhsm emulator ($VHSM)")
def sev_snp_login_through_the_hvac_adapter_and_the_token_through_hvac(c):
    import os
    import subprocess
    import tempfile
    vhsm = os.environ.get("VHSM")
    expect(vhsm and os.access(vhsm, os.X_OK), "set VHSM to the vhsm binary (hvac-test.sh passes it)")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import vhsm_login
    measurement = secrets.token_hex(48)
    path, kv = "snp-" + secrets.token_hex(3), "kv-login-" + secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="hvac-snp-") as work:
        subprocess.run([vhsm, "emulator", "init", "--state", f"{work}/chip", "--product", "genoa"], check=True,
                       capture_output=True)
        subprocess.run([vhsm, "emulator", "certs", "--state", f"{work}/chip", "--out", f"{work}/certs"], check=True,
                       capture_output=True)
        with open(f"{work}/certs/ark.pem") as handle:
            ark = handle.read()
        sys_ = c.client.sys
        sys_.enable_auth_method("sev-snp", path=path)
        sys_.enable_secrets_engine("kv", path=kv, options={"version": "2"})
        policy = "login-reader-" + secrets.token_hex(3)
        try:
            sys_.create_or_update_acl_policy(policy, f'path "{kv}/data/allowed" {{ capabilities = ["read"] }}')
            c.client.secrets.kv.v2.create_or_update_secret("allowed", secret={"v": "yes"}, mount_point=kv)
            c.client.secrets.kv.v2.create_or_update_secret("denied", secret={"v": "no"}, mount_point=kv)
            c.client.write(f"auth/{path}/config", trusted_roots=[ark])
            c.client.write(f"auth/{path}/role/workload", bound_measurements=[measurement], token_policies=[policy],
                           token_ttl="15m")
            roles = c.client.list(f"auth/{path}/role")["data"]["keys"]
            expect(roles == ["workload"], roles)

            workload = hvac.Client(url=c.url)  # no token: nonce and login are unauthenticated
            workload.token = None

            def body(nonce):
                report, certificates = vhsm_login.emulator_evidence(
                    vhsm, f"{work}/chip", vhsm_login.report_data(nonce), ["--measurement", measurement])
                return {"role": "workload", "nonce": nonce.hex(), "report": b64(report),
                        "certificates": [b64(der) for der in certificates]}

            nonce = bytes.fromhex(workload.adapter.post(f"/v1/auth/{path}/nonce")["data"]["nonce"])
            login = workload.adapter.login(f"/v1/auth/{path}/login", json=body(nonce))
            auth = login["auth"]
            expect(workload.token == auth["client_token"], "adapter.login set the client's token")
            expect(auth["policies"] == ["default", policy] and auth["lease_duration"] == 900, auth)
            expect(auth["metadata"]["measurement"] == measurement and auth["metadata"]["role"] == "workload",
                   auth["metadata"])
            looked = workload.auth.token.lookup_self()["data"]
            expect(looked["path"] == f"auth/{path}/login" and looked["meta"]["role"] == "workload", looked)
            expect(workload.is_authenticated(), "is_authenticated")
            secret = workload.secrets.kv.v2.read_secret_version("allowed", mount_point=kv,
                                                                 raise_on_deleted_version=True)
            expect(secret["data"]["data"] == {"v": "yes"}, secret)
            raises(exceptions.Forbidden, workload.secrets.kv.v2.read_secret_version, "denied", mount_point=kv,
                   raise_on_deleted_version=True)
            renewed = workload.auth.token.renew_self(increment="10m")["auth"]
            expect(0 < renewed["lease_duration"] <= 900, renewed)
            # The nonce was spent by the login: presenting it again is refused with the reason, through hvac.
            replay = hvac.Client(url=c.url)
            replay.token = None
            error = raises(exceptions.Forbidden, replay.adapter.post, f"/v1/auth/{path}/login", json=body(nonce))
            expect("already spent" in str(error), str(error))
            workload.auth.token.revoke_self()
            raises(exceptions.Forbidden, workload.auth.token.lookup_self)
        finally:
            sys_.disable_auth_method(path)
            sys_.disable_secrets_engine(kv)
            sys_.delete_acl_policy(policy)


# identity tokens (identity/oidc) ------------------------------------------------------------------------------
# Key and role CRUD, Vault's refusals, the unauthenticated documents' shapes, and a token that PyJWT verifies with
# nothing but the discovery document, on both servers. OpenBao signs only for a token with an entity (the root token
# has none): the token comes from a token role that allows an entity alias, which OpenBao binds to an entity and
# vhsmd (no entities; sub = the token's accessor) accepts and ignores. scripts/oidc-test.py (make oidc-test) checks
# what is vhsmd's own: every algorithm, nbf, sub = accessor.

@check
def identity_oidc_keys_roles_and_discovery(c):
    identity = c.client.secrets.identity
    key, role = "oidc-" + secrets.token_hex(4), "oidc-role-" + secrets.token_hex(4)
    identity.create_named_key(name=key, rotation_period="1h", verification_ttl="2h", algorithm="ES256")
    read = identity.read_named_key(name=key)["data"]
    expect(read == {"algorithm": "ES256", "rotation_period": 3600, "verification_ttl": 7200,
                    "allowed_client_ids": []}, read)
    expect(key in identity.list_named_keys()["data"]["keys"], "key not listed")
    error = raises(exceptions.InvalidRequest, identity.create_named_key, name=key, rotation_period="30s",
                   algorithm="ES256")
    expect("rotation_period must be at least one minute" in str(error), error)
    error = raises(exceptions.InvalidRequest, identity.create_named_key, name=key, rotation_period="1h",
                   verification_ttl="11h", algorithm="ES256")
    expect("verification_ttl cannot be longer than 10x rotation_period" in str(error), error)
    raises(exceptions.InvalidRequest, identity.create_named_key, name=key, algorithm="HS256")
    # A role needs an existing key and a ttl within the key's verification_ttl; its client_id is generated.
    error = raises(exceptions.InvalidRequest, identity.create_or_update_role, name=role, key="missing-" + key)
    expect("cannot find key" in str(error), error)
    error = raises(exceptions.InvalidRequest, identity.create_or_update_role, name=role, key=key, ttl="3h")
    expect("cannot be longer than the verification_ttl" in str(error), error)
    identity.create_or_update_role(name=role, key=key, ttl="1h")
    data = identity.read_role(name=role)["data"]
    expect(set(data) == {"client_id", "key", "template", "ttl"}, data)
    expect(data["key"] == key and data["ttl"] == 3600 and len(data["client_id"]) == 26, data)
    identity.create_or_update_role(name=role, key=key, ttl="30m")
    again = identity.read_role(name=role)["data"]
    expect(again["client_id"] == data["client_id"] and again["ttl"] == 1800, again)
    expect(role in identity.list_roles()["data"]["keys"], "role not listed")
    # A key in use cannot be deleted.
    error = raises(exceptions.InvalidRequest, identity.delete_named_key, name=key)
    expect(f'unable to delete key "{key}" because it is currently referenced by these roles: {role}' in str(error),
           error)
    # The documents, without a token: the issuer is the server's address; the JWKS holds the signing key and the
    # next one, then the rotated-out one too.
    discovery = requests.get(f"{c.url}/v1/identity/oidc/.well-known/openid-configuration").json()
    expect(discovery["issuer"] == f"{c.url}/v1/identity/oidc", discovery)
    expect(discovery["jwks_uri"] == f"{c.url}/v1/identity/oidc/.well-known/keys", discovery)
    expect(discovery["response_types_supported"] == ["id_token"], discovery)
    expect(discovery["subject_types_supported"] == ["public"], discovery)
    expect(set(discovery["id_token_signing_alg_values_supported"])
           == {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"}, discovery)

    def published():
        keys = requests.get(discovery["jwks_uri"]).json()["keys"]
        for jwk in keys:
            expect(jwk["use"] == "sig" and jwk["kty"] == "EC" and jwk["alg"] == "ES256" and jwk["crv"] == "P-256", jwk)
            expect("d" not in jwk and jwk["kid"], jwk)
        return {jwk["kid"] for jwk in keys}

    before = published()
    expect(len(before) == 2, before)
    requests.post(f"{c.url}/v1/identity/oidc/key/{key}/rotate", json={},
                  headers={"X-Vault-Token": c.token}).raise_for_status()
    after = published()
    expect(len(after) == 3 and before < after, (before, after))
    identity.delete_role(name=role)
    identity.delete_named_key(name=key)
    raises(exceptions.InvalidPath, identity.read_named_key, name=key)
    error = raises(exceptions.InvalidRequest, identity.configure_tokens_backend, issuer="https://example.com/path")
    expect("invalid issuer" in str(error), error)


@check
def identity_token_verified_by_a_relying_party_with_the_discovery_document_alone(c):
    identity = c.client.secrets.identity
    suffix = secrets.token_hex(4)
    key, role, policy, token_role = f"rp-{suffix}", f"rp-role-{suffix}", f"rp-policy-{suffix}", f"rp-token-{suffix}"
    headers = {"X-Vault-Token": c.token}
    identity.create_named_key(name=key, algorithm="ES256", allowed_client_ids=["*"], rotation_period="1h",
                              verification_ttl="2h")
    identity.create_or_update_role(name=role, key=key, ttl="15m")
    client_id = identity.read_role(name=role)["data"]["client_id"]
    c.client.sys.create_or_update_policy(
        name=policy, policy=f'path "identity/oidc/token/{role}" {{ capabilities = ["read"] }}')
    requests.post(f"{c.url}/v1/auth/token/roles/{token_role}", headers=headers,
                  json={"allowed_entity_aliases": [suffix], "allowed_policies": [policy], "orphan": True}
                  ).raise_for_status()
    created = requests.post(f"{c.url}/v1/auth/token/create/{token_role}", headers=headers,
                            json={"entity_alias": suffix, "policies": [policy]})
    created.raise_for_status()
    caller = hvac.Client(url=c.url, token=created.json()["auth"]["client_token"])
    answer = caller.secrets.identity.generate_signed_id_token(name=role)["data"]
    expect(answer["client_id"] == client_id and answer["ttl"] == 900, answer)
    token = answer["token"]
    # The relying party knows the issuer, nothing else.
    issuer = f"{c.url}/v1/identity/oidc"
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration").json()
    signing_key = jwt.PyJWKClient(discovery["jwks_uri"], cache_jwk_set=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=discovery["id_token_signing_alg_values_supported"],
                        audience=client_id, issuer=discovery["issuer"],
                        options={"require": ["iss", "sub", "aud", "iat", "exp"]})
    expect(claims["iss"] == issuer and claims["aud"] == client_id and claims["sub"], claims)
    expect(claims["exp"] - claims["iat"] == 900 and abs(claims["iat"] - time.time()) < 60, claims)
    expect(jwt.get_unverified_header(token)["alg"] == "ES256", jwt.get_unverified_header(token))
    try:
        jwt.decode(token, signing_key.key, algorithms=["ES256"], audience="another-client", issuer=issuer)
        raise AssertionError("a token for another audience verified")
    except jwt.InvalidAudienceError:
        pass
    # Without the policy: no token.
    other = hvac.Client(url=c.url, token=c.client.auth.token.create(policies=["default"])["auth"]["client_token"])
    raises(exceptions.Forbidden, other.secrets.identity.generate_signed_id_token, name=role)
    identity.delete_role(name=role)
    identity.delete_named_key(name=key)
    requests.delete(f"{c.url}/v1/auth/token/roles/{token_role}", headers=headers).raise_for_status()
    # Vault's built-in "default" key (RS256, every client ID) serves a role that names it, and is never deleted.
    # (Last: it stays, and the JWKS counts above assume only this suite's keys.)
    identity.create_or_update_role(name=f"default-{suffix}", key="default")
    default = identity.read_named_key(name="default")["data"]
    expect(default["algorithm"] == "RS256" and default["allowed_client_ids"] == ["*"], default)
    error = raises(exceptions.InvalidRequest, identity.delete_named_key, name="default")
    expect('deletion of key "default" not allowed' in str(error), error)
    identity.delete_role(name=f"default-{suffix}")


# cleanup -----------------------------------------------------------------------------------------------------

@check
def disable_mount(c):
    c.client.sys.disable_secrets_engine(path=c.kv)
    expect(f"{c.kv}/" not in c.client.sys.list_mounted_secrets_engines()["data"], "still mounted")
    response = requests.get(f"{c.url}/v1/{c.kv}/data/app/db", headers={"X-Vault-Token": c.token})
    expect(response.status_code == 404, response.status_code)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--name", default="server")
    parser.add_argument("--kind", choices=["vhsmd", "openbao"], required=True,
                        help="which server this is: checks marked @vhsmd_only are skipped, visibly, on openbao")
    options = parser.parse_args()
    context = Context(options.url, options.token)
    context.kind = options.kind
    passed = failed = 0
    for function in CHECKS:
        reason = getattr(function, "vhsmd_only", None)
        if reason and options.kind != "vhsmd":
            SKIPPED[function.__name__] = reason
            print(f"SKIP {function.__name__} on {options.name}: {reason}")
            continue
        try:
            function(context)
            passed += 1
        except Exception as error:  # noqa: BLE001 - every failure is reported and counted
            failed += 1
            print(f"FAIL {function.__name__}: {type(error).__name__}: {error}")
            if "-v" in sys.argv:
                traceback.print_exc()
    skipped = f", {len(SKIPPED)} skipped (vhsmd-only)" if SKIPPED else ""
    print(f"hvac-compat ({options.name}): {passed} passed, {failed} failed{skipped}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

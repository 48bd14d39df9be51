#!/usr/bin/env python3
"""hvac 2.4.0 compatibility checks, run unchanged against vhsmd and against OpenBao 2.7.2 (which proves they
encode Vault's behaviour, not ours). Follows the test plan of shared/reference/vault-api.md §5, for the parts
vhsmd serves today; each check is a function, and the closing line is 'hvac-compat (<server>): N passed, M failed'.

Usage: vault_compat.py URL TOKEN [--name SERVER]
"""
import argparse
import secrets
import sys
import traceback
import warnings

import hvac
import requests
from hvac import exceptions

warnings.simplefilter("ignore", DeprecationWarning)
CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


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
    options = parser.parse_args()
    context = Context(options.url, options.token)
    passed = failed = 0
    for function in CHECKS:
        try:
            function(context)
            passed += 1
        except Exception as error:  # noqa: BLE001 - every failure is reported and counted
            failed += 1
            print(f"FAIL {function.__name__}: {type(error).__name__}: {error}")
            if "-v" in sys.argv:
                traceback.print_exc()
    print(f"hvac-compat ({options.name}): {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

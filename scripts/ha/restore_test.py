#!/usr/bin/env python3
"""Backup and restore of a vhsmd cluster (issue 17): the backup is a pg_dump of ciphertext.

Two nodes on their own emulated chips write KV secrets, a transit key and a policy; the database is dumped (plain
pg_dump) while they run; then both nodes and that PostgreSQL are stopped and deleted. A NEW PostgreSQL server is
started, the dump loaded into it, and the same two nodes (same chips, same node directories) are pointed at it: they
must unseal from their own member entries without any join or operator, elect an active node, and serve every
secret, the transit key (a ciphertext made before the backup decrypts) and the policy as before. A write made after
the dump is absent (the dump is the backup's moment). Exit 0 when all checks pass.

Usage: VHSMD=… VHSM=… scripts/ha/restore_test.py
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ha_test import Cluster, HAFailure, call  # noqa: E402
from pg import Postgres, PostgresError  # noqa: E402

checks = 0


def expect(condition: bool, message: str) -> None:
    global checks
    if not condition:
        raise HAFailure(message)
    checks += 1


def main() -> int:
    args = argparse.Namespace(
        vhsmd=os.environ.get("VHSMD", ".build/debug/vhsmd"), vhsm=os.environ.get("VHSM", ".build/debug/vhsm"),
        fake=False, fake_bug=[], keep=False, table="vhsm_kv_store", ha_table="vhsm_ha_locks", lease_ttl=3.0,
        renew_interval=0.5, retry_interval=0.25)
    try:
        cluster = Cluster(args)
        cluster.setup()
        active = cluster.active()
        secrets = {f"backup/s{i}": {"value": os.urandom(8).hex()} for i in range(20)}
        for path, data in secrets.items():
            expect(cluster.api("POST", f"secret/data/{path}", {"data": data}).status == 200, f"write {path}")
        expect(cluster.api("POST", "transit/keys/backup-key", {}).status in (200, 204), "create the transit key")
        plaintext = "aGVsbG8gYmFja3Vw"
        encrypted = cluster.api("POST", "transit/encrypt/backup-key", {"plaintext": plaintext}).json()
        ciphertext = encrypted["data"]["ciphertext"]
        expect(cluster.api("PUT", "sys/policies/acl/backup-policy",
                           {"policy": 'path "secret/*" { capabilities = ["read"] }'}).status in (200, 204),
               "write the policy")
        dump = cluster.pg.dump(data_only=False)
        print(f"restore: pg_dump of the running cluster: {len(dump)} bytes")
        expect(cluster.api("POST", "secret/data/after-backup", {"data": {"v": "later"}}).status == 200,
               "a write after the dump")
        # The old database and every node go; the node directories (seal.json) and chips stay.
        cluster.procs.stop_all()
        for node in cluster.nodes:
            node.emulator = None
        cluster.pg.stop()
        fresh = Postgres()
        fresh.start()
        cluster.pg = fresh
        fresh.restore(dump)
        print(f"restore: loaded into a new PostgreSQL on port {fresh.port}")
        survivors = cluster.nodes[:2]
        cluster.nodes = survivors
        for node in survivors:
            with open(node.config) as f:
                config = json.load(f)
            config["storage"]["postgresql"]["connection_url"] = fresh.url
            with open(node.config, "w") as f:
                json.dump(config, f)
            node.serve_emulator()
            node.start()
        # Both start as standbys; one takes the lease once the restored row (from the dump) has expired.
        active = cluster.active()
        statuses = sorted(node.health() or 0 for node in survivors)
        expect(statuses == [200, 429], f"the restored nodes are not one active and one standby: {statuses}")
        for path, data in secrets.items():
            read = cluster.api("GET", f"secret/data/{path}")
            expect(read.status == 200 and read.json()["data"]["data"] == data, f"{path} after restore: {read.status}")
        decrypted = cluster.api("POST", "transit/decrypt/backup-key", {"ciphertext": ciphertext}).json()
        expect(decrypted["data"]["plaintext"] == plaintext, "the transit ciphertext made before the backup")
        policy = cluster.api("GET", "sys/policies/acl/backup-policy")
        expect(policy.status == 200 and "secret/*" in policy.json()["data"]["policy"], "the policy after restore")
        expect(cluster.api("GET", "secret/data/after-backup").status == 404, "a write after the dump is absent")
        print(f"restore: {checks} checks passed (active {active.id}; 20 secrets, a transit key, a policy)")
        return 0
    except (HAFailure, PostgresError, KeyError, ValueError) as error:
        print(f"restore: FAIL {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

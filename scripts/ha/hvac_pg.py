#!/usr/bin/env python3
"""The hvac 2.4.0 suite (Tests/hvac/vault_compat.py) against vhsmd on PostgreSQL (issue 17), then a pg_dump scan.

One vhsmd node in config mode (storage.postgresql, its own emulated chip, plain HTTP on loopback) on a throwaway
PostgreSQL 15 (scripts/ha/pg.py). The node is initialised (PUT sys/init, no operator key: the root token in the
answer) and given KV v2 at secret/ as `vhsmd --dev` has it. Every request the suite sends and every answer is
recorded (requests.Session.request is wrapped): the path segments it names, the strings of its JSON bodies and of
the answers (secrets, key names, policy names and bodies, tokens, accessors, ciphertexts, ...). After the suite,
the database is dumped (pg_dump, full) and no recorded string of 6 or more bytes may appear in it, as text, bytea hex
or base64 at any alignment, unless it was already in a dump taken before the suite ran (the schema's and the
cluster's own names: table and column names, node id, the lease row's address). A string planted in a control
table must be found. Exit 0 when the suite and the scan pass.

Usage: VHSMD=… VHSM=… scripts/ha/hvac_pg.py
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(root, "Tests", "hvac"))
from pg import Postgres, free_port  # noqa: E402
from ha_test import scan  # noqa: E402

MEASUREMENT = "ab" * 48
recorded: set[str] = set()


def record_json(value) -> None:
    if isinstance(value, str):
        recorded.add(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            recorded.add(str(key))
            record_json(item)
    elif isinstance(value, list):
        for item in value:
            record_json(item)


def install_recorder() -> None:
    import requests
    original = requests.Session.request

    def request(self, method, url, *args, **kwargs):
        path = url.split("/v1/", 1)[-1].split("?", 1)[0]
        for segment in path.split("/"):
            recorded.add(segment)
        for name in ("json", "data"):
            body = kwargs.get(name)
            if isinstance(body, (dict, list)):
                record_json(body)
            elif isinstance(body, (str, bytes)) and body:
                try:
                    record_json(json.loads(body))
                except ValueError:
                    pass
        response = original(self, method, url, *args, **kwargs)
        try:
            record_json(response.json())
        except ValueError:
            pass
        return response

    requests.Session.request = request


def call(base: str, method: str, path: str, body=None, token=None):
    request = urllib.request.Request(base + "/v1/" + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    if token:
        request.add_header("X-Vault-Token", token)
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def main() -> int:
    vhsmd, vhsm = os.environ["VHSMD"], os.environ["VHSM"]
    work = tempfile.mkdtemp(prefix="vhsm-hvac-pg-")
    pg = Postgres()
    processes: list[subprocess.Popen] = []
    try:
        pg.start()
        chip, socket, data = (os.path.join(work, name) for name in ("chip", "snp.sock", "data"))
        subprocess.run([vhsm, "emulator", "init", "--state", chip, "--product", "genoa"], check=True,
                       capture_output=True)
        processes.append(subprocess.Popen(
            [vhsm, "emulator", "serve", "--state", chip, "--socket", socket, "--measurement", MEASUREMENT],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            if os.path.exists(socket):
                break
            time.sleep(0.05)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = {
            "listener": {"address": f"127.0.0.1:{port}", "tls_disable": True},
            "storage": {"path": data, "postgresql": {"connection_url": pg.url}},
            "api_addr": base, "cluster_name": "hvac", "node_id": "hvac-node", "seal": f"emulator:{socket}",
            "allow_smt": True,
        }
        with open(os.path.join(work, "vhsmd.json"), "w") as f:
            json.dump(config, f)
        log = open(os.path.join(work, "vhsmd.log"), "w")
        processes.append(subprocess.Popen([vhsmd, "--config", os.path.join(work, "vhsmd.json")], stdout=log,
                                          stderr=subprocess.STDOUT))
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/v1/sys/health", timeout=2):
                    pass
            except urllib.error.HTTPError as error:
                if error.code == 501:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        token = call(base, "PUT", "sys/init", {})["root_token"]
        call(base, "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, token)
        baseline = pg.dump(data_only=False)
        recorded.add(token)
        install_recorder()
        import vault_compat
        sys.argv = ["vault_compat.py", base, token, "--name", "vhsmd-postgresql", "--kind", "vhsmd"]
        suite = vault_compat.main()
        # A control: a string planted in a table of its own must be found by the same scan.
        planted = "planted-control-" + os.urandom(6).hex()
        pg.psql(f"CREATE TABLE scan_control (v text); INSERT INTO scan_control VALUES ('{planted}')")
        dump = pg.dump(data_only=False)
        needles = sorted(n for n in recorded if len(n.encode()) >= 6)
        everything = [(n, n.encode()) for n in needles]
        before = {label for label, _ in scan(baseline, everything)}
        candidates = [(n, raw) for n, raw in everything if n not in before]
        hits = scan(dump, candidates + [("control", planted.encode())])
        found = [hit for hit in hits if hit[0] != "control"]
        control = any(hit[0] == "control" for hit in hits)
        print(f"hvac-pg: pg_dump {len(dump)} bytes; {len(candidates)} strings the suite sent or received "
              f"(of {len(needles)}; {len(needles) - len(candidates)} already in the pre-suite dump), "
              f"{len(found)} found; control {'found' if control else 'MISSED'}")
        print("hvac-pg: already in the pre-suite dump (schema, member entry, lease row): "
              + ", ".join(sorted(before)))
        for label, form in found[:20]:
            print(f"hvac-pg: FAIL '{label}' is in the dump ({form})")
        ok = suite == 0 and not found and control
        print("hvac-pg: " + ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

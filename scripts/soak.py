#!/usr/bin/env python3
"""The load of `make soak` (scripts/soak.sh): mixed requests against one vhsmd for a given time, with every
interval's throughput, errors, p50/p99 latency, and the server's RSS and open file descriptors, then the drift between
the first and the last five intervals (fewer when the run is shorter: half of them each).

  soak.py URL TOKEN PID MINUTES [--interval SECONDS] [--workers N] [--csv FILE]

The mix, in turn on each keep-alive connection: transit encrypt, transit sign (ecdsa-p256), a KV v2 write and its
read, a token created and revoked, and a response-wrapped KV read unwrapped. Any answer other than the expected
status counts as an error; the exit status is non-zero when any request failed or the server died.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

args = sys.argv[1:]
url, token, pid, minutes = args[0], args[1], int(args[2]), float(args[3])
interval = float(args[args.index("--interval") + 1]) if "--interval" in args else 60.0
workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 8
csv_path = args[args.index("--csv") + 1] if "--csv" in args else None
parsed = urllib.parse.urlsplit(url)

lock = threading.Lock()
samples = []  # latencies (s) of the current interval
errors = []  # error descriptions of the current interval
stop = threading.Event()


def rss_kib():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds():
    return len(os.listdir(f"/proc/{pid}/fd"))


class Client:
    def __init__(self):
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def call(self, method, path, body=None, headers=None, expect=(200, 204), as_token=None):
        all_headers = {"X-Vault-Token": as_token or token}
        all_headers.update(headers or {})
        payload = None if body is None else json.dumps(body)
        started = time.monotonic()
        try:
            self.connection.request(method, "/v1/" + path, body=payload, headers=all_headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            with lock:
                errors.append(f"{method} {path}: {error}")
            return None
        elapsed = time.monotonic() - started
        with lock:
            samples.append(elapsed)
            if response.status not in expect:
                errors.append(f"{method} {path}: {response.status} {raw[:200]!r}")
                return None
        return json.loads(raw) if raw else {}


def worker(number):
    client = Client()
    i = 0
    while not stop.is_set():
        i += 1
        name = f"w{number}-{i % 500}"
        client.call("POST", "transit/encrypt/soak", {"plaintext": "aGVsbG8gc29haw=="})
        client.call("POST", "transit/sign/soak-sign", {"input": "aGVsbG8gc29haw=="})
        client.call("POST", "secret/data/" + name, {"data": {"i": i}})
        client.call("GET", "secret/data/" + name)
        created = client.call("POST", "auth/token/create", {"policies": ["default"], "ttl": "10m"})
        if created:
            client.call("POST", "auth/token/revoke", {"token": created["auth"]["client_token"]})
        wrapped = client.call("GET", "secret/data/" + name, headers={"X-Vault-Wrap-TTL": "60s"})
        if wrapped and wrapped.get("wrap_info"):
            client.call("POST", "sys/wrapping/unwrap", {}, as_token=wrapped["wrap_info"]["token"])


def percentile(values, fraction):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(workers)]
for thread in threads:
    thread.start()
rows = []
total_errors = 0
deadline = time.monotonic() + minutes * 60
print(f"{'min':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MiB':>8} {'fds':>5}", flush=True)
died = False
while time.monotonic() < deadline:
    time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    with lock:
        taken, samples[:] = list(samples), []
        failed, errors[:] = list(errors), []
    try:
        rss, fds = rss_kib(), open_fds()
    except FileNotFoundError:
        died = True
        print("soak: the server process is gone", flush=True)
        break
    total_errors += len(failed)
    row = {
        "minute": len(rows) + 1,
        "requests_per_second": len(taken) / interval,
        "p50_ms": percentile(taken, 0.50) * 1000,
        "p99_ms": percentile(taken, 0.99) * 1000,
        "errors": len(failed),
        "rss_mib": rss / 1024,
        "fds": fds,
    }
    rows.append(row)
    print(
        f"{row['minute']:>5} {row['requests_per_second']:>8.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
        f"{row['errors']:>6} {row['rss_mib']:>8.1f} {row['fds']:>5}",
        flush=True,
    )
    for line in failed[:3]:
        print("   error:", line, flush=True)
stop.set()
for thread in threads:
    thread.join(timeout=35)

if csv_path and rows:
    with open(csv_path, "w") as out:
        out.write(",".join(rows[0]) + "\n")
        for row in rows:
            out.write(",".join(f"{value:.3f}" if isinstance(value, float) else str(value) for value in row.values()))
            out.write("\n")

window = min(5, len(rows) // 2)
if window:
    first, last = rows[:window], rows[-window:]

    def mean(part, key):
        return sum(row[key] for row in part) / len(part)

    print(f"drift, mean of the last {window} interval(s) against the first {window}:")
    for key, unit in [("rss_mib", "MiB"), ("fds", "fds"), ("p99_ms", "ms p99"), ("requests_per_second", "req/s")]:
        a, b = mean(first, key), mean(last, key)
        change = f"{(b - a) / a * 100:+.1f}%" if a else "n/a"
        print(f"  {key:>20}: {a:10.2f} -> {b:10.2f} {unit} ({change})")
print(f"soak: {len(rows)} intervals of {interval:.0f} s, {total_errors} errors" + (", server died" if died else ""))
sys.exit(1 if total_errors or died or not rows else 0)

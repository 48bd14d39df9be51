#!/usr/bin/env python3
"""The client side of scripts/powercut-load-test.sh: a host-side workload that writes to vhsmd in the VM through the
forwarded port and records every acknowledged write, so that after a power cut (kill -9 of QEMU) and the next boot
each one can be read back.

  powercut_load.py load URL TOKEN ACKED --tag TAG [--seconds N] [--kv-writers N]
        KV v2 writers (secret/data/TAG-wW-N, a random value each) and one transit writer (creates key TAG-kN, then
        encrypts a random plaintext with it) run until the VM stops answering (10 s without an answer) or N seconds
        pass. Every 2xx answer is appended to ACKED as one JSON line, flushed before the next request is sent:
          {"kind": "kv", "path": ..., "value": ...}
          {"kind": "transit-key", "name": ...}
          {"kind": "transit-ciphertext", "name": ..., "plaintext": ..., "ciphertext": ...}
        A request that got no answer (the cut came first) is not acknowledged and is not recorded. Prints a JSON
        summary: acknowledged per kind, unanswered requests, other statuses.
  powercut_load.py verify URL TOKEN ACKED
        every acknowledged write reads back: the KV value, the transit key, and the ciphertext decrypts to its
        plaintext. Prints {"checked", "lost", "lost_examples"}; exit status 1 when one is lost.

vhsmd's certificate is not checked here (the tests of attested TLS do that): this client only measures durability.
"""
import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

SILENCE = 10.0  # seconds without any answer: the VM is gone


class Client:
    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 443
        self.token = token
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.conn = None

    def call(self, method, path, body=None, timeout=30):
        """(status, parsed JSON or None); raises OSError/HTTPException when no answer came."""
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-Vault-Token": self.token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, "/v1/" + path, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = None
        return response.status, parsed


class Recorder:
    def __init__(self, path):
        self.file = open(path, "a")
        self.lock = threading.Lock()
        self.counts = {}
        self.unanswered = 0
        self.other = {}
        self.last_answer = time.monotonic()

    def ack(self, record):
        with self.lock:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
            self.counts[record["kind"]] = self.counts.get(record["kind"], 0) + 1
            self.last_answer = time.monotonic()

    def answered(self, status):
        with self.lock:
            self.last_answer = time.monotonic()
            if status // 100 != 2:
                self.other[str(status)] = self.other.get(str(status), 0) + 1

    def lost_answer(self):
        with self.lock:
            self.unanswered += 1

    def silent(self):
        with self.lock:
            return time.monotonic() - self.last_answer > SILENCE


def run_writer(client, recorder, deadline, step):
    n = 0
    while time.monotonic() < deadline and not recorder.silent():
        try:
            step(client, n)
        except (OSError, http.client.HTTPException):
            recorder.lost_answer()
            time.sleep(0.2)
        n += 1


def kv_step(tag, writer, recorder):
    def step(client, n):
        path = f"{tag}-w{writer}-{n}"
        value = os.urandom(12).hex()
        status, _ = client.call("POST", f"secret/data/{path}", {"data": {"v": value}})
        recorder.answered(status)
        if status // 100 == 2:
            recorder.ack({"kind": "kv", "path": path, "value": value})
    return step


def transit_step(tag, recorder):
    def step(client, n):
        name = f"{tag}-k{n}"
        status, _ = client.call("POST", f"transit/keys/{name}", {})
        recorder.answered(status)
        if status // 100 != 2:
            return
        recorder.ack({"kind": "transit-key", "name": name})
        plaintext = base64.b64encode(os.urandom(16)).decode()
        status, body = client.call("POST", f"transit/encrypt/{name}", {"plaintext": plaintext})
        recorder.answered(status)
        if status // 100 == 2:
            recorder.ack({"kind": "transit-ciphertext", "name": name, "plaintext": plaintext,
                          "ciphertext": body["data"]["ciphertext"]})
    return step


def load(a):
    recorder = Recorder(a.acked)
    deadline = time.monotonic() + a.seconds
    threads = []
    for w in range(a.kv_writers):
        threads.append(threading.Thread(target=run_writer, daemon=True,
                                        args=(Client(a.url, a.token), recorder, deadline,
                                              kv_step(a.tag, w, recorder))))
    threads.append(threading.Thread(target=run_writer, daemon=True,
                                    args=(Client(a.url, a.token), recorder, deadline, transit_step(a.tag, recorder))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"acknowledged": sum(recorder.counts.values()), "by_kind": recorder.counts,
                      "unanswered": recorder.unanswered, "other_statuses": recorder.other}))


def verify(a):
    client = Client(a.url, a.token)
    checked = 0
    lost = []
    with open(a.acked) as f:
        records = [json.loads(line) for line in f if line.strip()]
    for r in records:
        checked += 1
        if r["kind"] == "kv":
            status, body = client.call("GET", f"secret/data/{r['path']}")
            ok = status == 200 and ((body or {}).get("data") or {}).get("data", {}).get("v") == r["value"]
        elif r["kind"] == "transit-key":
            status, _ = client.call("GET", f"transit/keys/{r['name']}")
            ok = status == 200
        else:
            status, body = client.call("POST", f"transit/decrypt/{r['name']}", {"ciphertext": r["ciphertext"]})
            ok = status == 200 and ((body or {}).get("data") or {}).get("plaintext") == r["plaintext"]
        if not ok:
            lost.append({"record": r, "status": status})
    print(json.dumps({"checked": checked, "lost": len(lost), "lost_examples": lost[:5]}))
    sys.exit(1 if lost else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    lo.add_argument("url")
    lo.add_argument("token")
    lo.add_argument("acked")
    lo.add_argument("--tag", required=True)
    lo.add_argument("--seconds", type=float, default=300)
    lo.add_argument("--kv-writers", type=int, default=2)
    ve = sub.add_parser("verify")
    ve.add_argument("url")
    ve.add_argument("token")
    ve.add_argument("acked")
    a = ap.parse_args()
    {"load": load, "verify": verify}[a.cmd](a)


if __name__ == "__main__":
    main()

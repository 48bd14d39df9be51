#!/usr/bin/env python3
"""The client side of scripts/faults-test.sh: writes KV v2 secrets to vhsmd and records every acknowledged one,
reads them back, and makes single requests whose status and errors the test checks.

  kv.py init URL                                   sys/init; prints the root token
  kv.py write URL TOKEN PREFIX COUNT SIZE ACKED [--until-failures N]
        writes PREFIX-0 … (SIZE-byte values); every 200/204 is appended to ACKED ("name value" lines); prints a JSON
        summary: acknowledged, failed, the failures' statuses and distinct messages, and non-JSON answers
  kv.py verify URL TOKEN ACKED                     every acknowledged secret reads back with its value (JSON summary)
  kv.py request METHOD URL TOKEN PATH [BODY]       one request; prints {"status", "errors"}
"""
import json
import os
import sys
import urllib.error
import urllib.request


def call(method, url, token, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + "/v1/" + path, data=data, method=method)
    if token:
        request.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw = error.read()
        status = error.code
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = None
    return status, parsed, raw


def write(url, token, prefix, count, size, acked_file, until_failures):
    summary = {"acknowledged": 0, "failed": 0, "statuses": {}, "messages": [], "not_vault_shape": []}
    failures_since_first = 0
    with open(acked_file, "a") as acked:
        for i in range(count):
            name = f"{prefix}-{i}"
            value = (name + "-" + os.urandom(size).hex())[: size * 2]
            status, body, raw = call("POST", url, token, "secret/data/" + name, {"data": {"v": value}})
            if status in (200, 204):
                summary["acknowledged"] += 1
                acked.write(f"{name} {value}\n")
                acked.flush()
            else:
                summary["failed"] += 1
                summary["statuses"][str(status)] = summary["statuses"].get(str(status), 0) + 1
                errors = body.get("errors") if isinstance(body, dict) else None
                if not (isinstance(errors, list) and errors and all(isinstance(e, str) and e for e in errors)):
                    summary["not_vault_shape"].append(raw.decode(errors="replace")[:300])
                else:
                    # The request ID differs per answer: keep one message per kind.
                    text = errors[0].split(" (request id ")[0]
                    if text not in summary["messages"]:
                        summary["messages"].append(text)
            if summary["failed"]:
                failures_since_first += 1
                if until_failures and failures_since_first >= until_failures:
                    break
    print(json.dumps(summary))


def verify(url, token, acked_file):
    summary = {"checked": 0, "missing": [], "wrong": [], "errors": []}
    with open(acked_file) as acked:
        for line in acked:
            name, value = line.split()
            status, body, raw = call("GET", url, token, "secret/data/" + name)
            summary["checked"] += 1
            if status == 404:
                summary["missing"].append(name)
            elif status != 200:
                summary["errors"].append(f"{name}: {status} {raw[:200]!r}")
            elif body["data"]["data"].get("v") != value:
                summary["wrong"].append(name)
    print(json.dumps(summary))


def main(argv):
    command = argv[1]
    if command == "init":
        status, body, raw = call("PUT", argv[2], None, "sys/init", {})
        if status != 200:
            sys.exit(f"sys/init answered {status}: {raw[:300]!r}")
        print(body["root_token"])
    elif command == "write":
        until = int(argv[argv.index("--until-failures") + 1]) if "--until-failures" in argv else 0
        write(argv[2], argv[3], argv[4], int(argv[5]), int(argv[6]), argv[7], until)
    elif command == "verify":
        verify(argv[2], argv[3], argv[4])
    elif command == "request":
        body = json.loads(argv[6]) if len(argv) > 6 else None
        status, parsed, raw = call(argv[2], argv[3], argv[4], argv[5], body)
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        print(json.dumps({"status": status, "errors": errors, "shape": isinstance(parsed, dict)}))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)

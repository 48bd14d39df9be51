#!/usr/bin/env bash
# make soak (issue 16 item 7; not in make test): vhsmd in config mode (SQLite in a data directory, the emulator seal,
# a file audit device, plain HTTP on loopback) under SOAK_MINUTES (default 30) of mixed load from scripts/soak.py:
# transit encrypt and sign, KV v2 write and read, token create and revoke, response wrapping and unwrapping. Every
# minute: throughput, p50/p99, errors, vhsmd's RSS and open file descriptors; at the end the drift between the first
# and the last five minutes. Fails when a request failed or vhsmd died. CSV in out/soak.csv.
# Knobs: SOAK_MINUTES (30), SOAK_INTERVAL (seconds per row, 60), SOAK_WORKERS (keep-alive connections, 8).
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/soak.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/test-env.sh"
test_begin
"$VHSM" emulator init --state "$work/chip" --product genoa >/dev/null 2>&1
emulated_serve "$work/chip" "$work/snp.sock" --measurement "$(printf 'ab%.0s' $(seq 48))" ||
  { echo "soak: the emulator did not start"; exit 1; }
port=$(free_port)
url=http://127.0.0.1:$port
cat >"$work/soak.json" <<JSON
{"listener": {"address": "127.0.0.1:$port", "tls_disable": true}, "storage": {"path": "$work/data"},
 "seal": "emulator:$work/snp.sock", "allow_smt": true, "audit_file": "$work/audit.log"}
JSON
vhsmd_start "$work/soak.json" "$work/vhsmd.log" || { echo "soak: vhsmd did not start"; tail -5 "$work/vhsmd.log"; exit 1; }
token=$(python3 "$here/faults/kv.py" init "$url") || { echo "soak: sys/init failed"; exit 1; }
call() { curl -sf -o /dev/null -H "X-Vault-Token: $token" -X "$1" ${3:+-d "$3"} "$url/v1/$2"; }
call POST sys/mounts/secret '{"type":"kv","options":{"version":"2"}}' &&
  call POST sys/mounts/transit '{"type":"transit"}' &&
  call POST transit/keys/soak '{}' &&
  call POST transit/keys/soak-sign '{"type":"ecdsa-p256"}' || { echo "soak: setup failed"; exit 1; }
mkdir -p "$here/../out"
echo "soak: ${SOAK_MINUTES:-30} min, vhsmd pid $VHSMD_PID, data and audit log in $work"
python3 "$here/soak.py" "$url" "$token" "$VHSMD_PID" "${SOAK_MINUTES:-30}" --interval "${SOAK_INTERVAL:-60}" \
  --workers "${SOAK_WORKERS:-8}" --csv "$here/../out/soak.csv"
rc=$?
echo "soak: database $(du -h "$work/data/vhsm.db" | cut -f1), WAL $(du -h "$work/data/vhsm.db-wal" 2>/dev/null | cut -f1), audit log $(du -h "$work/audit.log" | cut -f1)"
exit $rc

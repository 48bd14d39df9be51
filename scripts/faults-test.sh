#!/usr/bin/env bash
# Failing storage under vhsmd (issue 16 item 6): vhsmd in config mode on the emulator seal, its data directory
#  A. on a small tmpfs that a filler file fills up: writes answer 500 in Vault's shape with a sentence naming the
#     data directory and saying it is full, every acknowledged write reads back (before and after a restart), reads
#     are still served, writes succeed again without a restart once the filler is gone, PRAGMA integrity_check is ok;
#  B. the audit log on that full tmpfs: every audited request is refused with a sentence, an unaudited one answers,
#     a refused write was not made, and the log holds only whole JSON lines;
#  C. under scripts/faults/failio.c (LD_PRELOAD): fsync/fdatasync, then write/pwrite, fail with EIO on the data
#     directory's files: the same expectations (a sentence naming the I/O failure, nothing acknowledged lost, reads
#     go on, recovery without a restart, integrity_check ok);
#  D. the audit log under the same shim: requests refused while its fsync fails, served again after.
# Runs in a private mount namespace (unshare -m, as root) so the tmpfs disappears with it. Without one, part A and B
# emulate the full disk with the shim (ENOSPC on writes) and say so (FAULTS_EMULATE_FULL=1 forces that).
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/faults-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${FAULTS_NS:-}" ] && [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  exec env FAULTS_NS=1 unshare -m --propagation private "$0" "$@"
fi
. "$here/lib/test-env.sh"
test_begin
kv() { python3 "$here/faults/kv.py" "$@"; }
# field JSON EXPR: EXPR (Python, over the parsed JSON as j) evaluated, printed.
field() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

gcc -shared -fPIC -O2 -Wall -Werror -o "$work/failio.so" "$here/faults/failio.c" -ldl ||
  { echo "faults-test: cannot build the LD_PRELOAD shim scripts/faults/failio.c with gcc"; exit 1; }
"$VHSM" emulator init --state "$work/chip" --product genoa >/dev/null 2>&1
emulated_serve "$work/chip" "$work/snp.sock" --measurement "$(printf 'ab%.0s' $(seq 48))" ||
  { echo "faults-test: the emulator did not start"; exit 1; }
port=$(free_port)
url=http://127.0.0.1:$port
mkdir -p "$work/triggers" "$work/audit" "$work/io"
: >"$work/failio.log"
shim=(env LD_PRELOAD="$work/failio.so" FAILIO_TRIGGERS="$work/triggers" FAILIO_LOG="$work/failio.log")

# start NAME DATA [AUDIT] [FAILIO_DIR]: vhsmd on DATA (audit log AUDIT), under the shim for FAILIO_DIR when given.
start() {
  local audit=${3:+, \"audit_file\": \"$3\"}
  cat >"$work/$1.json" <<JSON
{"listener": {"address": "127.0.0.1:$port", "tls_disable": true}, "storage": {"path": "$2"},
 "seal": "emulator:$work/snp.sock", "allow_smt": true $audit}
JSON
  if [ -n "${4:-}" ]; then
    vhsmd_start "$work/$1.json" "$work/$1.log" "${shim[@]}" FAILIO_DIR="$4"
  else
    vhsmd_start "$work/$1.json" "$work/$1.log"
  fi || { echo "faults-test: vhsmd ($1) did not start:"; tail -5 "$work/$1.log"; exit 1; }
  server=$VHSMD_PID
}
request() { kv request "$1" "$url" "$token" "$2" ${3:+"$3"}; }
status_of() { field "$(request "$@")" 'j["status"]'; }
# refused_with JSON TEXT…: a 500 in Vault's shape whose first error contains every TEXT.
refused_with() {
  local answer=$1
  shift
  python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["status"] == 500 and j["shape"] and isinstance(j["errors"], list) and len(j["errors"]) == 1, j
assert all(t in j["errors"][0] for t in sys.argv[2:]), j
' "$answer" "$@"
}
verified() { # verified: every acknowledged write reads back with its value
  local v
  v=$(kv verify "$url" "$token" "$work/acked")
  [ "$(field "$v" 'j["checked"] > 0 and not j["missing"] and not j["wrong"] and not j["errors"]')" = True ] ||
    { echo "  verify: $v"; return 1; }
}
integrity() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$1/vhsm.db"; }
same_server() { kill -0 "$server" 2>/dev/null && [ "$server" = "$1" ]; }
: >"$work/acked"

# ---- A. A full filesystem ------------------------------------------------------------------------------------------
full=$work/full
mkdir -p "$full"
if [ -z "${FAULTS_EMULATE_FULL:-}" ] && [ -n "${FAULTS_NS:-}" ] && mount -t tmpfs -o size=16m,mode=0700 vhsm-faults "$full"; then
  emulated=
  echo "faults-test: data directory on a 16 MiB tmpfs ($full)"
else
  emulated=1
  echo "faults-test: no tmpfs mount here (needs root and unshare -m): the full disk is EMULATED by failio (ENOSPC on writes)"
fi
data=$full/data
fill() { # fills the filesystem (or, emulated, makes the data directory's writes fail with ENOSPC)
  if [ -n "$emulated" ]; then touch "$work/triggers/write" "$work/triggers/enospc"; return 0; fi
  dd if=/dev/zero of="$full/filler" bs=4k >/dev/null 2>&1
  [ "$(df --output=avail "$full" | tail -1 | tr -d ' ')" -lt 8 ]
}
unfill() { rm -f "$full/filler" "$work/triggers/write" "$work/triggers/enospc"; }
if [ -n "$emulated" ]; then start a "$data" "$work/audit/a.log" "$full"; else start a "$data" "$work/audit/a.log"; fi
token=$(kv init "$url") || { echo "faults-test: sys/init failed"; exit 1; }
check "A: KV v2 and transit mounted, a transit key created" \
  '[ "$(status_of POST sys/mounts/secret "{\"type\":\"kv\",\"options\":{\"version\":\"2\"}}")" = 204 ] &&
   [ "$(status_of POST sys/mounts/transit "{\"type\":\"transit\"}")" = 204 ] &&
   [ "$(status_of POST transit/keys/k "{}")" = 200 ]'
base=$(kv write "$url" "$token" base 20 512 "$work/acked")
check "A: 20 writes before the disk fills are acknowledged" '[ "$(field "$base" "j[\"acknowledged\"]")" = 20 ]'
check "A: the filesystem is filled by a filler file" 'fill'
filled=$(kv write "$url" "$token" full 4000 2048 "$work/acked" --until-failures 30)
echo "  writes on the full disk: $filled"
check "A: writes on the full disk fail (5xx), in Vault's error shape" \
  '[ "$(field "$filled" "j[\"failed\"] > 0 and not j[\"not_vault_shape\"] and all(int(s) >= 500 for s in j[\"statuses\"])")" = True ]'
check "A: the failure names the data directory and says it is full and the change was not stored" \
  '[ "$(field "$filled" "len(j[\"messages\"]) == 1 and \"data directory '"'"'$data'"'"' is full\" in j[\"messages\"][0] and \"the change was not stored\" in j[\"messages\"][0]")" = True ]'
check "A: every acknowledged write reads back while the disk is full" 'verified'
check "A: reads are served while the disk is full (transit encrypt, token lookup, health)" \
  '[ "$(status_of POST transit/encrypt/k "{\"plaintext\":\"aGVsbG8=\"}")" = 200 ] &&
   [ "$(status_of GET auth/token/lookup-self)" = 200 ] && [ "$(status_of GET sys/health)" = 200 ]'
first=$server
unfill
after=$(kv write "$url" "$token" after 10 512 "$work/acked")
check "A: once space returns, writes succeed again without a restart" \
  '[ "$(field "$after" "j[\"acknowledged\"]")" = 10 ] && same_server "$first"'
check "A: every acknowledged write reads back after space returned" 'verified'
stop_pid "$server"
if [ -n "$emulated" ]; then start a "$data" "$work/audit/a.log" "$full"; else start a "$data" "$work/audit/a.log"; fi
check "A: every acknowledged write reads back after a restart" 'verified'
stop_pid "$server"
check "A: PRAGMA integrity_check is ok" '[ "$(integrity "$data")" = ok ]'

# ---- B. The audit log on the full filesystem -----------------------------------------------------------------------
if [ -n "$emulated" ]; then start b "$data" "$full/audit.log" "$full"; else start b "$data" "$full/audit.log"; fi
check "B: with the audit log on that filesystem, a read is served while it has space" \
  '[ "$(status_of GET secret/data/base-0)" = 200 ]'
fill
# The audit log's last page may hold a few more lines: requests until one is refused, then five more.
for _ in $(seq 40); do [ "$(status_of GET secret/data/base-1)" = 500 ] && break; done
answer=$(request GET secret/data/base-1)
check "B: a read on the full disk is refused: no audit device could record it, and why" \
  'refused_with "$answer" "no audit device could record it" "$([ -n "$emulated" ] && echo "No space left" || echo "No space left on device")"'
refused=0
for _ in 1 2 3 4 5; do [ "$(status_of GET secret/data/base-2)" = 500 ] && refused=$((refused + 1)); done
check "B: every further audited request is refused (5 of 5)" '[ "$refused" = 5 ]'
check "B: a write is refused too" \
  'refused_with "$(request POST secret/data/audit-refused "{\"data\":{\"v\":\"x\"}}")" "no audit device could record it"'
check "B: unaudited sys/health still answers" '[ "$(status_of GET sys/health)" = 200 ]'
unfill
check "B: once space returns, audited requests are served again without a restart" \
  '[ "$(status_of GET secret/data/base-2)" = 200 ]'
check "B: the write refused for want of an audit record was not made" \
  '[ "$(status_of GET secret/data/audit-refused)" = 404 ]'
check "B: the audit log holds only whole JSON lines" \
  'python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$full/audit.log"'
check "A/B: every acknowledged write reads back" 'verified'
stop_pid "$server"
check "B: PRAGMA integrity_check is ok" '[ "$(integrity "$data")" = ok ]'
[ -z "$emulated" ] && umount "$full"

# ---- C. Failing writes and fsyncs (LD_PRELOAD) ---------------------------------------------------------------------
io=$work/io
data=$io/data
: >"$work/acked"
: >"$work/failio.log"
start c "$data" "" "$io"
token=$(kv init "$url") || { echo "faults-test: sys/init failed (C)"; exit 1; }
request POST sys/mounts/secret '{"type":"kv","options":{"version":"2"}}' >/dev/null
request POST sys/mounts/transit '{"type":"transit"}' >/dev/null
request POST transit/keys/k '{}' >/dev/null
base=$(kv write "$url" "$token" base 20 512 "$work/acked")
check "C: 20 writes before the faults are acknowledged" '[ "$(field "$base" "j[\"acknowledged\"]")" = 20 ]'
first=$server
for fault in fsync write; do
  step=$([ "$fault" = fsync ] && echo "an fsync" || echo "a write")
  touch "$work/triggers/$fault"
  faulted=$(kv write "$url" "$token" "$fault" 10 512 "$work/acked")
  echo "  writes while $fault fails: $faulted"
  check "C($fault): every write fails with a 500 in Vault's shape (none acknowledged)" \
    '[ "$(field "$faulted" "j[\"acknowledged\"] == 0 and j[\"statuses\"] == {\"500\": 10} and not j[\"not_vault_shape\"]")" = True ]'
  check "C($fault): the failure names the data directory and the failed step ($step)" \
    '[ "$(field "$faulted" "len(j[\"messages\"]) == 1 and \"data directory '"'"'$data'"'"' failed an I/O operation\" in j[\"messages\"][0] and \"$step failed\" in j[\"messages\"][0]")" = True ]'
  check "C($fault): the shim injected the faults (failio.log)" 'grep -q "Input/output error $data/" "$work/failio.log"'
  check "C($fault): reads are served (KV, transit encrypt)" \
    'verified && [ "$(status_of POST transit/encrypt/k "{\"plaintext\":\"aGVsbG8=\"}")" = 200 ]'
  rm -f "$work/triggers/$fault"
  recovered=$(kv write "$url" "$token" "after-$fault" 10 512 "$work/acked")
  check "C($fault): once the fault stops, writes succeed again without a restart" \
    '[ "$(field "$recovered" "j[\"acknowledged\"]")" = 10 ] && same_server "$first"'
  check "C($fault): every acknowledged write reads back" 'verified'
done
stop_pid "$server"
start c "$data" "" "$io"
check "C: every acknowledged write reads back after a restart" 'verified'
stop_pid "$server"
check "C: PRAGMA integrity_check is ok" '[ "$(integrity "$data")" = ok ]'

# ---- D. The audit log under the shim -------------------------------------------------------------------------------
start d "$data" "$io/audit.log" "$io"
check "D: with the audit log on the failing directory, a read is served before the fault" \
  '[ "$(status_of GET secret/data/base-0)" = 200 ]'
touch "$work/triggers/fsync"
check "D: while its fsync fails, a read is refused: no audit device could record it (I/O error)" \
  'refused_with "$(request GET secret/data/base-0)" "no audit device could record it" "Input/output error"'
check "D: a write is refused too" \
  'refused_with "$(request POST secret/data/audit-refused "{\"data\":{\"v\":\"x\"}}")" "no audit device could record it"'
rm -f "$work/triggers/fsync"
check "D: the refused requests left no line in the audit log (a failed fsync cuts its lines off)" \
  '! grep -q "audit-refused" "$io/audit.log"'
check "D: once the fault stops, requests are served again without a restart" \
  '[ "$(status_of GET secret/data/base-0)" = 200 ]'
check "D: the write refused for want of an audit record was not made" \
  '[ "$(status_of GET secret/data/audit-refused)" = 404 ]'
check "D: the audit log holds only whole JSON lines" \
  'python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$io/audit.log"'
check "C/D: every acknowledged write reads back" 'verified'
stop_pid "$server"
check "D: PRAGMA integrity_check is ok" '[ "$(integrity "$data")" = ok ]'

test_end faults-test

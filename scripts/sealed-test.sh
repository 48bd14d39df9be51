#!/usr/bin/env bash
# vhsmd in config mode on sealed storage, sealed by the (emulated) SEV-SNP Secure Processor:
#  - sys/init once, a stream of transit key creations and KV writes, kill -9 in the middle of it,
#  - restart: every acknowledged write is there, old ciphertext decrypts, a second sys/init is refused,
#  - the same data directory under another chip's emulator is refused at start.
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/sealed-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
passed=0
failed=0
check() { if eval "$2"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL $1"; fi; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
url=http://127.0.0.1:$port

"$VHSM" emulator init --state "$work/chip" --product genoa >/dev/null 2>&1
"$VHSM" emulator init --state "$work/other" --product genoa >/dev/null 2>&1
serve() {
  rm -f "$work/snp.sock"
  "$VHSM" emulator serve --state "$work/$1" --socket "$work/snp.sock" --measurement "$(printf 'ab%.0s' $(seq 48))" 2>/dev/null &
  emulator=$!
  pids+=($emulator)
  for _ in $(seq 100); do [ -S "$work/snp.sock" ] && break; sleep 0.05; done
}
serve chip
mkdir -p "$work/data"
config() {
  cat >"$work/config-$1.json" <<JSON
{"listener": {"address": "127.0.0.1:$port", "tls_disable": true}, "storage": {"path": "$work/data"},
 "seal": "emulator:$work/$1", "audit_file": "$work/audit.log"}
JSON
  echo "$work/config-$1.json"
}
start() {
  "$VHSMD" --config "$(config "$1")" >"$work/vhsmd.log" 2>&1 &
  server=$!
  pids+=($server)
  for _ in $(seq 100); do curl -s -o /dev/null "$url/v1/sys/health" && return 0; sleep 0.05; done
  return 1
}

start snp.sock
check "health before init is 501" '[ "$(curl -s -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 501 ]'
token=$(curl -s -X PUT -d '{}' "$url/v1/sys/init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
check "sys/init returns a root token" '[ -n "$token" ]'
check "health after init is 200" '[ "$(curl -s -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
H="X-Vault-Token: $token"
curl -s -H "$H" -X POST -d '{"type":"transit"}' "$url/v1/sys/mounts/transit" >/dev/null
curl -s -H "$H" -X POST -d '{"type":"kv","options":{"version":"2"}}' "$url/v1/sys/mounts/secret" >/dev/null
ciphertext=$(curl -s -H "$H" -X POST -d '{"plaintext":"c2VhbGVk"}' "$url/v1/transit/encrypt/first" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ciphertext"])')

# A stream of writes; each acknowledged one (HTTP 200/204) is recorded; kill -9 lands in the middle.
(
  for i in $(seq 1 400); do
    code=$(curl -s -o /dev/null -w "%{http_code}" -H "$H" -X POST "$url/v1/transit/keys/k$i")
    [ "$code" = 200 ] && echo "key k$i" >>"$work/acked"
    code=$(curl -s -o /dev/null -w "%{http_code}" -H "$H" -X POST -d "{\"data\":{\"n\":\"$i\"}}" "$url/v1/secret/data/s$i")
    [ "$code" = 200 ] && echo "kv s$i $i" >>"$work/acked"
  done
) &
writer=$!
sleep 1.5
kill -9 "$server"
wait "$server" 2>/dev/null
wait "$writer" 2>/dev/null
acked=$(wc -l <"$work/acked")
check "some writes were acknowledged before kill -9 ($acked)" '[ "$acked" -gt 10 ]'

start snp.sock
check "health after restart is 200 (unsealed by the chip)" '[ "$(curl -s -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
check "a second sys/init is refused" '[ "$(curl -s -o /dev/null -w "%{http_code}" -X PUT -d "{}" "$url/v1/sys/init")" = 400 ]'
missing=0
while read -r kind name value; do
  if [ "$kind" = key ]; then
    [ "$(curl -s -o /dev/null -w "%{http_code}" -H "$H" "$url/v1/transit/keys/$name")" = 200 ] || missing=$((missing + 1))
  else
    got=$(curl -s -H "$H" "$url/v1/secret/data/$name" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["data"]["n"])' 2>/dev/null)
    [ "$got" = "$value" ] || missing=$((missing + 1))
  fi
done <"$work/acked"
check "every acknowledged write survived kill -9 ($acked checked, $missing missing)" '[ "$missing" = 0 ]'
plain=$(curl -s -H "$H" -X POST -d "{\"ciphertext\":\"$ciphertext\"}" "$url/v1/transit/decrypt/first" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["plaintext"])')
check "a ciphertext from before the crash decrypts" '[ "$plain" = c2VhbGVk ]'
check "nothing in the database files in clear" '! grep -aq "c2VhbGVk" "$work/data"/vhsm.db*'
kill -9 "$server"

# The same VM configuration, but another chip behind the Secure Processor socket.
kill -9 "$emulator"
serve other
"$VHSMD" --config "$(config snp.sock)" >"$work/other.log" 2>&1 &
other=$!
pids+=($other)
sleep 2
check "another chip cannot open the data directory" '! kill -0 $other 2>/dev/null && grep -q "does not open" "$work/other.log"'

echo "sealed-test: $acked writes acknowledged before kill -9, all checked after the restart"
echo "sealed-test: $passed passed, $failed failed"
[ "$failed" = 0 ]

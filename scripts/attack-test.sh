#!/usr/bin/env bash
# The listener's limits under attack (issue 16, item 3): vhsmd --dev on a random loopback port, transit mounted and
# an sev-snp auth method enabled, then scripts/attack_test.py: slowloris heads and bodies, bodies at and past each
# limit, deep nesting, an oversized head, a connection flood past max_connections, a nonce flood, invented and real
# wrapping tokens; while a real client encrypts in a loop (its p99 per attack against its p99 without attack) and
# vhsmd's RSS is sampled. The matrix is printed (and written to ATTACK_JSON when set).
# Usage: VHSMD=path/to/vhsmd scripts/attack-test.sh [attack_test.py options]   (KEEP=1 keeps the work directory)
set -uo pipefail
VHSMD=${VHSMD:?}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/test-env.sh"
test_begin
port=$(free_port)
url=http://127.0.0.1:$port
root=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
# The flood opens max_connections + 100 sockets; the client side needs the descriptors.
ulimit -n 4096 2>/dev/null || true

: >"$work/vhsmd.log"
"$VHSMD" --dev --dev-root-token-id "$root" --dev-listen-address "127.0.0.1:$port" >"$work/vhsmd.log" 2>&1 &
VHSMD_PID=$!
pids+=("$VHSMD_PID")
for _ in $(seq 300); do grep -q "ready on" "$work/vhsmd.log" && break; sleep 0.05; done
grep -q "ready on" "$work/vhsmd.log" || { echo "attack-test: vhsmd did not start:"; cat "$work/vhsmd.log"; exit 1; }
api() { curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "X-Vault-Token: $root" ${3:+--data "$3"} "$url/v1/$2"; }
check "transit is mounted (204)" '[ "$(api POST sys/mounts/transit "{\"type\":\"transit\"}")" = 204 ]'
check "the sev-snp auth method is enabled (204)" '[ "$(api POST sys/auth/sev-snp "{\"type\":\"sev-snp\"}")" = 204 ]'

python3 "$here/attack_test.py" --port "$port" --pid "$VHSMD_PID" --token "$root" --work "$work" \
  ${ATTACK_JSON:+--json "$ATTACK_JSON"} "$@"
attack_status=$?
check "every attack check passed (attack_test.py)" '[ "$attack_status" = 0 ]'
check "vhsmd's process is alive after the attacks" 'kill -0 "$VHSMD_PID"'
check "sys/health answers 200 after the attacks" \
  '[ "$(curl -s -m 5 -o /dev/null -w "%{http_code}" "$url/v1/sys/health")" = 200 ]'
check "vhsmd logged no internal error" '! grep -n "internal error" "$work/vhsmd.log"'
test_end attack-test

#!/usr/bin/env bash
# The attested cluster join end to end (issue 17 item 4), on loopback: PostgreSQL 15 (Debian's, in a temporary
# directory, run as the postgres user) and vhsmd nodes on emulated chips.
#  - node n1 (chip A, measurement M) initialises the cluster;
#  - node n2 (chip B, the same measurement M) starts with "join": n1's https URL and no member entry: it verifies
#    n1 by attested TLS, joins, and comes up unsealed as a standby; restarted, it unseals by itself (no join);
#  - node n3 (chip C, another measurement) does not trust n1 (attested TLS: the sponsor must run its own
#    measurement), sends nothing and does not start, naming the sponsor and the reason; n1's audit log records
#    n2's join, its sealed root key only as an HMAC. (The sponsor's own refusals are tested in-process:
#    ClusterJoinTests.)
# Each check prints 'FAIL name' when it fails; the last line counts.
# Usage: VHSMD=path/to/vhsmd-built-with-trait-Emulator VHSM=path/to/vhsm scripts/cluster-join-test.sh
set -uo pipefail
VHSMD=${VHSMD:?} VHSM=${VHSM:?}
. "$(dirname "$0")/lib/test-env.sh"
test_begin
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
measurement=$(printf 'ab%.0s' $(seq 48))
other=$(printf '6b%.0s' $(seq 48))

# PostgreSQL: its own directory, loopback only, as the postgres user (it refuses root).
pgport=$(free_port)
mkdir -p "$work/pg" && chown postgres "$work/pg"
su postgres -s /bin/sh -c "$pgbin/initdb -D $work/pg/data -U vhsm --auth=trust >$work/pg/initdb.log 2>&1" ||
  { echo "cluster-join-test: initdb failed"; cat "$work/pg/initdb.log"; exit 1; }
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg/data -w -l $work/pg/log \
  -o '-p $pgport -k $work/pg -c listen_addresses=127.0.0.1' start >/dev/null" ||
  { echo "cluster-join-test: PostgreSQL did not start"; cat "$work/pg/log"; exit 1; }
pids+=("$(head -1 "$work/pg/data/postmaster.pid")")

for chip in a b c; do emulated_chip "$work/chip-$chip" || { echo "cluster-join-test: emulator init failed"; exit 1; }; done
cat "$work"/chip-{a,b,c}/certs/ark.pem >"$work/roots.pem"
emulated_serve "$work/chip-a" "$work/a.sock" --measurement "$measurement" &&
  emulated_serve "$work/chip-b" "$work/b.sock" --measurement "$measurement" &&
  emulated_serve "$work/chip-c" "$work/c.sock" --measurement "$other" ||
  { echo "cluster-join-test: an emulator did not start"; cat "$work"/*.sock.log; exit 1; }

p1=$(free_port) p2=$(free_port) p3=$(free_port)
# config NODE PORT SOCKET [JOIN]: a node's configuration.
config() {
  local join=
  [ -n "${4:-}" ] && join=", \"join\": \"$4\""
  mkdir -p "$work/$1"
  cat >"$work/$1.json" <<JSON
{"listener": {"address": "127.0.0.1:$2"}, "seal": "emulator:$work/$3", "allow_smt": true,
 "storage": {"path": "$work/$1", "postgresql": {"connection_url": "postgres://vhsm@127.0.0.1:$pgport/postgres?sslmode=disable",
   "lease_ttl": "3s", "renew_interval": "500ms", "retry_interval": "250ms"}},
 "node_id": "$1", "cluster_name": "c", "api_addr": "https://127.0.0.1:$2", "audit_file": "$work/$1-audit.log",
 "cluster_trusted_roots": "$work/roots.pem"$join}
JSON
}
config n1 "$p1" a.sock
config n2 "$p2" b.sock "https://127.0.0.1:$p1"
config n3 "$p3" c.sock "https://127.0.0.1:$p1"

vhsmd_start "$work/n1.json" "$work/n1.log" || { echo "cluster-join-test: n1 did not start"; cat "$work/n1.log"; exit 1; }
n1=$VHSMD_PID
# n1 answers sys/init once it holds the lease.
token=
for _ in $(seq 100); do
  token=$(root_token "https://127.0.0.1:$p1" "$work/n1/tls/cert.pem" 2>/dev/null) && break
  sleep 0.2
done
check "n1 initialises the cluster" '[ -n "$token" ]'

vhsmd_start "$work/n2.json" "$work/n2.log"
n2=$VHSMD_PID
check "n2 joins through n1 by attestation" 'grep -q "joined cluster c through https://127.0.0.1:$p1" "$work/n2.log"'
check "n2 starts unsealed" 'grep -q ", unsealed" "$work/n2.log"'
health=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/n2/tls/cert.pem" "https://127.0.0.1:$p2/v1/sys/health")
check "n2 is an unsealed standby (429)" '[ "$health" = 429 ]'
stop_pid "$n2"
vhsmd_start "$work/n2.json" "$work/n2-again.log"
n2=$VHSMD_PID
check "n2 restarted unseals by itself, without a join" \
  'grep -q ", unsealed" "$work/n2-again.log" && ! grep -q "joining cluster" "$work/n2-again.log"'

"$VHSMD" --config "$work/n3.json" >"$work/n3.log" 2>&1 &
n3=$!
pids+=("$n3")
for _ in $(seq 200); do kill -0 "$n3" 2>/dev/null || break; sleep 0.1; done
check "n3 (another measurement) does not start" '! kill -0 "$n3" 2>/dev/null'
# n3 checks its sponsor first (attested TLS: the sponsor's MEASUREMENT must be its own) and sends nothing.
check "n3's error names the sponsor and the reason" \
  'grep -q "sponsor https://127.0.0.1:$p1 is not trusted by attested TLS; nothing was sent: MEASUREMENT" "$work/n3.log"'
check "n1's audit log has n2's join (request and response) and nothing from n3" \
  '[ "$(grep -c "\"path\":\"sys/cluster/join\"" "$work/n1-audit.log")" = 2 ]'
sealed=$(grep -o '"sealed_root_key": *"[^"]*"' "$work/n1-audit.log")
check "the sealed root key is audited only as its HMAC" \
  '[ -n "$sealed" ] && ! printf "%s\n" "$sealed" | grep -qv "hmac-sha256:"'
stop_pid "$n2"
stop_pid "$n1"
su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $work/pg/data -m fast stop >/dev/null" || true
[ -n "${VERBOSE:-}" ] && tail -n 3 "$work"/n*.log
test_end cluster-join-test

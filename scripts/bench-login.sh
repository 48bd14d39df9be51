#!/usr/bin/env bash
# make bench, workload identity part (issue 15): the release guest binary of the emulator flavour, started as
# 'vhsmd --dev' (plain HTTP on loopback, so S is 32 zero bytes), pinned to CPU 0; clients on CPU 1.
#  1. auth/sev-snp/login: logins per second on one core (vhsm-bench login: nonces drawn and reports made before
#     the clock starts, then BENCH_LOGIN_CONNS concurrent clients post them); next to it, in the same run and on the
#     same core, 'vhsm-bench verify' (parse report and AMD chain, check chain and signature), the work a login cannot
#     avoid: logins/s ÷ verifications/s says what the rest of a login costs;
# Identity tokens per second are scenario oidc-token of scripts/bench-vhsmd.sh (against OpenBao); a whole 'vhsm login'
# process is timed by scripts/bench-attest.sh.
# Prints a table and saves out/bench-login.csv.
# Usage: VHSM=release vhsm VHSMD=vhsmd of the emulator flavour BENCH=release vhsm-bench TESTDATA=../shared/testdata
#        scripts/bench-login.sh
# Knobs: BENCH_LOGINS (3000), BENCH_LOGIN_CONNS (8), BENCH_OUT (out/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
VHSM=${VHSM:?} VHSMD=${VHSMD:?} BENCH=${BENCH:?}
TESTDATA=${TESTDATA:-$root/../shared/testdata}
LOGINS=${BENCH_LOGINS:-3000}
CONNS=${BENCH_LOGIN_CONNS:-8}
out=${BENCH_OUT:-$root/out}
die() { echo "bench-login: $*" >&2; exit 1; }
. "$here/lib/test-env.sh"
test_begin
bench_pins
port=$(free_port)
url=http://127.0.0.1:$port
token=bench-root
measurement=$(printf '5a%.0s' $(seq 48))
emulated_chip "$work/chip" || die "emulator init failed"
"${SRV_PIN[@]}" "$VHSMD" --dev --dev-root-token-id "$token" --dev-listen-address "127.0.0.1:$port" >"$work/vhsmd.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf -o /dev/null "$url/v1/sys/health" && break; sleep 0.05; done
curl -sf -o /dev/null "$url/v1/sys/health" || { cat "$work/vhsmd.log" >&2; die "vhsmd --dev did not start"; }
api() { curl -sf -H "X-Vault-Token: $token" "$@" >/dev/null || die "setting up failed: $*"; }
ark=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$work/chip/certs/ark.pem")
api -X POST -d '{"type":"sev-snp"}' "$url/v1/sys/auth/sev-snp"
api -X POST -d "{\"trusted_roots\": [$ark], \"nonce_ttl\": \"5m\"}" "$url/v1/auth/sev-snp/config"
api -X POST -d "{\"bound_measurements\": [\"$measurement\"]}" "$url/v1/auth/sev-snp/role/bench"

# ---- 1: logins per second, and report verifications per second on the same core ---------------------------------
# Nonces are bounded at 4096 outstanding: the bench draws at most that many before it posts them.
[ "$LOGINS" -le 4000 ] || die "BENCH_LOGINS must be at most 4000 (the server keeps 4096 nonces outstanding)"
logins=$("${CLI_PIN[@]}" "$BENCH" login --url "$url" --state "$work/chip" --measurement "$measurement" --role bench \
  --count "$LOGINS" --connections "$CONNS" | awk '/logins\/s/ {print $3}')
snp=$TESTDATA/snp
vector=milan_v3_oak
at=$(python3 -c "import json; print([v for v in json.load(open('$snp/vectors.json'))['vectors'] if v['name']=='$vector'][0]['valid_at'])")
verifies=$("${SRV_PIN[@]}" "$BENCH" verify --report "$snp/${vector}_report.bin" --ark "$snp/ark_milan.pem" \
  --ask "$snp/ask_milan.pem" --vcek "$snp/${vector}_vcek.der" --at "$at" --seconds 3 | awk '{print $NF}')

echo "== workload identity (vhsmd --dev on CPU 0, loopback; clients on CPU 1) =="
printf '  %-56s %10s /s\n' "auth/sev-snp/login ($CONNS connections, one core)" "$logins"
printf '  %-56s %10s /s   logins/verifications %.2f\n' "vhsm-bench verify, same core (chain + signature)" "$verifies" \
  "$(awk -v a="$logins" -v b="$verifies" 'BEGIN{print a/b}')"
mkdir -p "$out"
{
  echo "metric,value"
  echo "logins_per_s,$logins"
  echo "verifications_per_s,$verifies"
} >"$out/bench-login.csv"
echo "saved $out/bench-login.csv"

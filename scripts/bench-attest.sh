#!/usr/bin/env bash
# make bench, attested TLS part (issue 14): vhsmd in config mode on the emulator's Secure Processor (the release
# guest binary of the emulator flavour, started as vhsmd), on loopback:
#  1. a whole 'vhsm server verify' process (connect, fresh nonce, sys/attestation, AMD chain, signature, binding,
#     reference values) against it, BENCH_VERIFY_RUNS times; peers in the same run: the Python reference client
#     (clients/python/vhsm_attest.py) doing the same checks, and one 'curl --cacert' request (a TLS client process
#     that checks nothing beyond the certificate);
#  2. GET sys/attestation hammered by wrk (BENCH_ATTEST_CONNS connections): answers per second, how many were
#     reports (200) and how many were turned away by the rate limit (429);
#  3. transit encrypt at 16 connections, alone and while (2) runs: p99 loaded / p99 unloaded (goal <= 1.5);
#  4. a whole 'vhsm login' process (issue 15: server verify, nonce, a report from a second emulated chip, the login
#     over the pinned connection, the HPKE-sealed auth block opened) against auth/sev-snp, BENCH_VERIFY_RUNS times.
# vhsmd is pinned to CPU 0; the load generators to CPU 1; the emulator (the Secure Processor) floats.
# Prints a table and saves out/bench-attest.csv.
# Usage: VHSM=release vhsm VHSMD=vhsmd of the emulator flavour scripts/bench-attest.sh
# Knobs: BENCH_DURATION (s per cell, 5), BENCH_VERIFY_RUNS (30), BENCH_ATTEST_CONNS (4), BENCH_OUT (out/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
VHSM=${VHSM:?} VHSMD=${VHSMD:?}
DURATION=${BENCH_DURATION:-5}
RUNS=${BENCH_VERIFY_RUNS:-30}
ATTEST_CONNS=${BENCH_ATTEST_CONNS:-4}
out=${BENCH_OUT:-$root/out}
lua=$here/bench/vault.lua
die() { echo "bench-attest: $*" >&2; exit 1; }
if ! command -v wrk >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bench-attest: installing the Debian package wrk (the load generator)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; } || true
fi
command -v wrk >/dev/null || die "wrk is not installed: install the Debian package 'wrk' (apt-get install wrk)"
. "$here/lib/test-env.sh"
test_begin
bench_pins
port=$(free_port)
url=https://127.0.0.1:$port
measurement=$(printf 'ab%.0s' $(seq 48))

emulated_chip "$work/chip" || die "emulator init failed"
emulated_serve "$work/chip" "$work/snp.sock" --measurement "$measurement" || die "the emulator did not start"
mkdir -p "$work/data"
cat >"$work/config.json" <<JSON
{"listener": {"address": "127.0.0.1:$port"}, "storage": {"path": "$work/data"},
 "seal": "emulator:$work/snp.sock", "allow_smt": true}
JSON
vhsmd_start "$work/config.json" "$work/vhsmd.log" "${SRV_PIN[@]}" || { cat "$work/vhsmd.log" >&2; die "vhsmd did not start"; }
cacert=$work/data/tls/cert.pem
token=$(root_token "$url" "$cacert")
api() { curl -sf --cacert "$cacert" -H "X-Vault-Token: $token" "$@" >/dev/null; }
api -X POST -d '{"type":"transit"}' "$url/v1/sys/mounts/transit"
api -X POST "$url/v1/transit/keys/bench"

# ---- 1: one verification, as a process ----------------------------------------------------------------------------
verify_swift() {
  "$VHSM" server verify "$url" --measurement "$measurement" --trust-emulator-root "$work/chip/certs/ark.pem" >/dev/null
}
verify_python() {
  python3 "$root/clients/python/vhsm_attest.py" "$url" --measurement "$measurement" \
    --trust-emulator-root "$work/chip/certs/ark.pem" >/dev/null
}
curl_once() { curl -sf --cacert "$cacert" -o /dev/null "$url/v1/sys/health"; }
verify_swift || die "vhsm server verify does not trust the benchmark's vhsmd"
verify_python || die "the Python reference client does not trust the benchmark's vhsmd"
# time_runs FUNCTION: RUNS runs, spaced so that the rate limit never answers; prints the median and p90 in ms.
time_runs() {
  local samples=() start end
  for _ in $(seq "$RUNS"); do
    start=$(date +%s%N)
    "$1"
    end=$(date +%s%N)
    samples+=($(((end - start) / 1000)))
    sleep 0.11
  done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000}'
}
read -r swift_med swift_p90 < <(time_runs verify_swift)
read -r python_med python_p90 < <(time_runs verify_python)
read -r curl_med curl_p90 < <(time_runs curl_once)

# ---- 4: one workload login, as a process ---------------------------------------------------------------------------
# The workload runs on another emulated chip with its own measurement; vhsmd trusts that chip's root and binds a role
# to the measurement.
workload=$(printf 'cd%.0s' $(seq 48))
"$VHSM" emulator init --state "$work/wchip" --product milan >/dev/null
"$VHSM" emulator certs --state "$work/wchip" --out "$work/wcerts" >/dev/null
"$VHSM" emulator serve --state "$work/wchip" --socket "$work/workload.sock" --measurement "$workload" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/workload.sock" ] && break; sleep 0.05; done
api -X POST -d '{"type":"sev-snp"}' "$url/v1/sys/auth/sev-snp"
python3 -c 'import json,sys; print(json.dumps({"trusted_roots": [open(sys.argv[1]).read()]}))' "$work/wcerts/ark.pem" |
  api -X POST -d @- "$url/v1/auth/sev-snp/config"
api -X POST -d "{\"bound_measurements\":[\"$workload\"]}" "$url/v1/auth/sev-snp/role/bench"
login_swift() {
  "$VHSM" login "$url" --role bench --measurement "$measurement" --trust-emulator-root "$work/certs/ark.pem" \
    --emulator "$work/workload.sock" >/dev/null
}
login_swift || die "vhsm login does not log in to the benchmark's vhsmd"
read -r login_med login_p90 < <(time_runs login_swift)

# ---- 2 and 3: the endpoint under load, transit encrypt beside it --------------------------------------------------
nonce=$(printf '5a%.0s' $(seq 32))
printf '{"plaintext":"%s"}' "$(head -c 32 /dev/urandom | base64)" >"$work/encrypt.json"
# wrk_run CONNS URL METHOD [BODY]: prints the BENCH line.
wrk_run() {
  BENCH_METHOD=$3 BENCH_TOKEN=$token BENCH_BODY_FILE=${4:-} "${CLI_PIN[@]}" wrk -t1 -c"$1" -d"${DURATION}s" \
    --timeout 10s -s "$lua" "$2" 2>&1 | grep '^BENCH '
}
field() { sed -n 's/.*[ ]'"$1"'=\([^ ]*\).*/\1/p' <<<"$2"; }
counted() { curl -s --cacert "$cacert" -o /dev/null -w '%{http_code}' "$url/v1/sys/attestation?nonce=$nonce"; }
[ "$(counted)" = 200 ] || die "GET sys/attestation does not answer 200"
unloaded=$(wrk_run 16 "$url/v1/transit/encrypt/bench" POST "$work/encrypt.json")
sleep 1
# The attestation load: wrk counts 429 as errors; the reports served are the 200s.
wrk_run "$ATTEST_CONNS" "$url/v1/sys/attestation?nonce=$nonce" GET >"$work/attest.alone"
attest_alone=$(cat "$work/attest.alone")
sleep 1
wrk_run "$ATTEST_CONNS" "$url/v1/sys/attestation?nonce=$nonce" GET >"$work/attest.loaded" &
hammer=$!
sleep 0.5
loaded=$(wrk_run 16 "$url/v1/transit/encrypt/bench" POST "$work/encrypt.json")
wait "$hammer"
attest_loaded=$(cat "$work/attest.loaded")

a_req=$(field requests "$attest_alone") a_err=$(field status_errors "$attest_alone") a_rps=$(field rps "$attest_alone")
a_secs=$(awk -v d="$(field duration_us "$attest_alone")" 'BEGIN{print d/1e6}')
reports=$(awk -v r="$a_req" -v e="$a_err" -v s="$a_secs" 'BEGIN{printf "%.1f", (r-e)/s}')
u99=$(field p99_us "$unloaded") l99=$(field p99_us "$loaded")
u_rps=$(field rps "$unloaded") l_rps=$(field rps "$loaded")
ratio=$(awk -v l="$l99" -v u="$u99" 'BEGIN{printf "%.2f", l/u}')
goal=$(awk -v r="$ratio" 'BEGIN{print (r <= 1.5) ? "met" : "NOT met"}')
ms() { awk -v x="$1" 'BEGIN{printf "%.2f", x/1000}'; }

echo "== attested TLS (vhsmd on the emulator's Secure Processor, loopback; server CPU 0, clients CPU 1) =="
printf '  %-46s median %6.1f ms  p90 %6.1f ms\n' "vhsm server verify (whole process, $RUNS runs)" "$swift_med" "$swift_p90"
printf '  %-46s median %6.1f ms  p90 %6.1f ms   vhsm/python %.2f\n' "Python reference client (same checks)" \
  "$python_med" "$python_p90" "$(awk -v a="$swift_med" -v b="$python_med" 'BEGIN{print a/b}')"
printf '  %-46s median %6.1f ms  p90 %6.1f ms   vhsm/curl %.2f\n' "curl --cacert, one GET sys/health" \
  "$curl_med" "$curl_p90" "$(awk -v a="$swift_med" -v b="$curl_med" 'BEGIN{print a/b}')"
echo "  goal: vhsm server verify under 50 ms: $(awk -v m="$swift_med" 'BEGIN{print (m < 50) ? "met" : "NOT met"}')"
printf '  %-46s median %6.1f ms  p90 %6.1f ms   login/verify %.2f\n' "vhsm login (whole process, $RUNS runs)" \
  "$login_med" "$login_p90" "$(awk -v a="$login_med" -v b="$swift_med" 'BEGIN{print a/b}')"
echo "  goal: vhsm login under 100 ms: $(awk -v m="$login_med" 'BEGIN{print (m < 100) ? "met" : "NOT met"}')"
printf '  sys/attestation, %s connections: %s answers/s, of which %s reports/s (200); the rest 429 + Retry-After\n' \
  "$ATTEST_CONNS" "$a_rps" "$reports"
printf '  transit encrypt, 16 connections: p99 %s ms alone (%s req/s), %s ms while sys/attestation is hammered (%s req/s)\n' \
  "$(ms "$u99")" "$u_rps" "$(ms "$l99")" "$l_rps"
echo "  p99 loaded/unloaded: $ratio (goal <= 1.5: $goal)"
mkdir -p "$out"
{
  echo "metric,value"
  echo "server_verify_median_ms,$swift_med"
  echo "server_verify_p90_ms,$swift_p90"
  echo "python_client_median_ms,$python_med"
  echo "curl_median_ms,$curl_med"
  echo "login_median_ms,$login_med"
  echo "login_p90_ms,$login_p90"
  echo "attestation_answers_per_s,$a_rps"
  echo "attestation_reports_per_s,$reports"
  echo "encrypt16_p99_unloaded_ms,$(ms "$u99")"
  echo "encrypt16_p99_loaded_ms,$(ms "$l99")"
  echo "encrypt16_p99_ratio,$ratio"
  echo "attestation_loaded_line,\"$attest_loaded\""
} >"$out/bench-attest.csv"

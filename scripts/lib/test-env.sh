# Sourced by the end-to-end scripts (sealed-test, attested-tls-test, attested-python-test, login-e2e-test,
# bench-attest): one way to start an emulated SEV-SNP chip and vhsmd on loopback, and to stop them by PID.
#
# The sourcing script sets VHSM (and VHSMD where it starts one). A test script calls test_begin first (a work
# directory `work`, the list `pids` of what it started, stopped at exit), counts with `check NAME 'COMMAND'` and ends
# with `test_end NAME`; a benchmark calls test_begin and bench_pins. Every process started here is added to
# `pids`. Functions return non-zero when what they start does not come up; the caller says what failed.

# test_begin: $work (a new temporary directory; KEEP=1 keeps it), $pids (stopped at exit: SIGTERM, then SIGKILL
# after 5 s) and the check counts.
test_begin() {
  work=$(mktemp -d)
  pids=()
  passed=0
  failed=0
  trap test_cleanup EXIT
}

test_cleanup() {
  local pid alive
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}

# check NAME COMMAND: runs COMMAND (a string, eval'd) and counts it; prints 'FAIL NAME' when it fails, and
# 'ok   NAME' when VERBOSE is set.
check() {
  if eval "$2"; then
    passed=$((passed + 1))
    [ -n "${VERBOSE:-}" ] && echo "ok   $1"
  else
    failed=$((failed + 1))
    echo "FAIL $1"
  fi
  return 0
}

# bench_pins: SRV_PIN and CLI_PIN, the prefixes that put the server on CPU 0 and its clients on CPU 1 (taskset),
# empty with fewer than two CPUs, without taskset or with BENCH_NO_PIN set.
bench_pins() {
  SRV_PIN=() CLI_PIN=()
  if [ -z "${BENCH_NO_PIN:-}" ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SRV_PIN=(taskset -c 0) CLI_PIN=(taskset -c 1)
  fi
}

# test_end NAME: the count line; the script's status is non-zero when a check failed.
test_end() {
  echo "$1: $passed passed, $failed failed"
  [ "$failed" = 0 ]
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# emulated_chip STATE [PRODUCT]: a new emulated chip in STATE (default product genoa) and its certificates in
# STATE/certs (ark.pem, ask.pem, vcek.der, cert_chain.pem).
emulated_chip() {
  "$VHSM" emulator init --state "$1" --product "${2:-genoa}" >/dev/null 2>&1 &&
    "$VHSM" emulator certs --state "$1" --out "$1/certs" >/dev/null
}

# emulated_serve STATE SOCKET [LAUNCH OPTIONS…]: serves the chip in STATE on SOCKET (replacing a socket file left
# there) with `vhsm emulator serve`; its PID is in EMULATOR_PID. Its stderr goes to SOCKET.log.
emulated_serve() {
  local state=$1 socket=$2
  shift 2
  rm -f "$socket"
  "$VHSM" emulator serve --state "$state" --socket "$socket" "$@" 2>>"$socket.log" &
  EMULATOR_PID=$!
  pids+=("$EMULATOR_PID")
  for _ in $(seq 100); do [ -S "$socket" ] && return 0; kill -0 "$EMULATOR_PID" 2>/dev/null || return 1; sleep 0.05; done
  return 1
}

# vhsmd_start CONFIG LOG [PREFIX COMMAND…]: starts "$VHSMD" --config CONFIG (behind PREFIX, such as taskset, when
# given), its output in LOG; returns once LOG says "ready on", non-zero when vhsmd exits or is not ready in 15 s.
# Its PID is in VHSMD_PID.
vhsmd_start() {
  local config=$1 log=$2
  shift 2
  : >"$log"
  "$@" "$VHSMD" --config "$config" >"$log" 2>&1 &
  VHSMD_PID=$!
  pids+=("$VHSMD_PID")
  for _ in $(seq 300); do
    grep -q "ready on" "$log" && return 0
    kill -0 "$VHSMD_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# stop_pid PID: stops one process started above and waits for it (a no-op for an empty PID).
stop_pid() { [ -n "${1:-}" ] && { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }; return 0; }

# root_token URL CACERT: sys/init on a fresh vhsmd without operator_key; prints the root token.
root_token() {
  curl -sf --cacert "$2" -X PUT -d '{}' "$1/v1/sys/init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])'
}

#!/usr/bin/env bash
# Power cut under write load (issue 16): the emulated confidential VM (QEMU, TCG, the release guest of the emulator
# flavour) serves vhsmd on a forwarded port; a host-side client (scripts/faults/powercut_load.py) writes KV v2
# secrets and creates and uses transit keys, recording every acknowledged write; at a random moment QEMU is killed
# with SIGKILL (no shutdown, no flush: what the guest had not sent to its disk is gone, as in a power cut). The next
# boot must unlock, mount (ext4 replays its journal) and serve every write acknowledged in every round so far.
#
# The data disk is attached with cache=writeback (image/launch --cache): QEMU writes through the host's page cache
# and a guest flush (ext4's journal commits, SQLite's fsync through dm-crypt) becomes an fdatasync of the disk file.
# SIGKILL of QEMU loses the guest's memory (its page cache, dm-crypt's queues, vhsmd's buffers), not the host's page
# cache; so this checks that ext4, dm-crypt and SQLite (WAL, synchronous=FULL) have each write on the virtual disk
# before vhsmd acknowledges it. 'unsafe', which ignores flushes, would be wrong for a host power loss and is refused
# by image/launch.
#
# Usage: VHSM=.build/debug/vhsm GUEST_BIN=<folder with vhsm-guest (Emulator trait)> scripts/powercut-load-test.sh
# Environment: ROUNDS (3), POWERCUT_SEED (random; printed, to replay the same cut times), CUT_MIN/CUT_MAX (seconds of
# load before the cut, 3/15), KEEP=1 keeps the work directory.
set -uo pipefail
VHSM=$(realpath "${VHSM:?}")
GUEST_BIN=$(realpath "${GUEST_BIN:?}")
here=$(cd "$(dirname "$0")/.." && pwd)
export TESTDATA=${TESTDATA:-$here/../shared/testdata}
export VHSM
ROUNDS=${ROUNDS:-3}
CUT_MIN=${CUT_MIN:-3}
CUT_MAX=${CUT_MAX:-15}
POWERCUT_SEED=${POWERCUT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
RANDOM=$POWERCUT_SEED
work=$(mktemp -d /tmp/vhsm-powercut.XXXXXX)
run=$work/run
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
url=https://127.0.0.1:$port
client="$here/scripts/faults/powercut_load.py"
loader=
cleanup() {
  [ -n "$loader" ] && kill "$loader" 2>/dev/null
  "$here/image/launch" stop --run-dir "$run" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] && echo "powercut-load: kept $work" || rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
started=$(date +%s)
check() { if eval "$2"; then passed=$((passed + 1)); echo "  ok   $1"; else failed=$((failed + 1)); echo "  FAIL $1"; fi; }
say() { echo "powercut-load: $*"; }
fail_early() { say "$*"; echo "powercut-load-test: 0 passed, 1 failed"; exit 1; }

# ---- artifacts: the initramfs of check-qemu's first boot, a 64 MiB blank disk ------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$work/recovery-key.pem" 2>/dev/null
"$here/scripts/guest-config.py" "$here/initramfs/init-emulator.json" "$work/recovery-key.pem" >"$work/init.json"
"$here/scripts/guest-config.py" --vhsmd "$here/initramfs/vhsmd-emulator.json" "$work/recovery-key.pem" \
  >"$work/vhsmd.json"
"$here/initramfs/build" --init "$GUEST_BIN/vhsm-guest" --symlink /usr/bin/vhsmd=/init --bin /sbin/mke2fs \
  --file "$work/init.json=/etc/vhsm/init.json" --file "$work/vhsmd.json=/etc/vhsm/vhsmd.json" \
  --strip --level 3 -o "$work/initrd.img" >"$work/initrd.log" 2>&1 || { cat "$work/initrd.log"; exit 1; }
"$here/image/manifest" --initrd "$work/initrd.img" -o "$work/manifest.json" >/dev/null ||
  fail_early "cannot write the manifest"
"$here/image/make-disk" "$work/disk.img" 64M >/dev/null

# boot NAME: starts the VM in the background (cache=writeback, said explicitly); the console goes to $work/NAME.log.
boot() {
  "$here/image/launch" stop --run-dir "$run" >/dev/null 2>&1
  console=$work/$1.log
  "$here/image/launch" start --manifest "$work/manifest.json" --disk "$work/disk.img" --state "$work/chip" \
    --port "$port" --run-dir "$run" --console "$console" --cache writeback --background --quiet \
    >"$work/$1.launch" 2>&1 || { cat "$work/$1.launch"; return 1; }
}
wait_ready() { "$here/image/launch" wait --run-dir "$run" --pattern 'vhsmd: ready on' --timeout 300 >/dev/null; }
has() { grep -aq -- "$1" "$console"; }
printed() { grep -ao 'fingerprint [0-9A-F:]*' "$console" | tail -1 | cut -d' ' -f2; }
api() { curl -sk --max-time 30 -H "X-Vault-Token: $token" "$@"; }
acks() { [ -f "$work/acked.jsonl" ] && wc -l <"$work/acked.jsonl" || echo 0; }

say "seed $POWERCUT_SEED, $ROUNDS rounds, cut after ${CUT_MIN}-${CUT_MAX} s of load"
say "first boot on a blank disk"
boot first && wait_ready || fail_early "the first boot did not reach 'vhsmd: ready' (console: $console)"
token=$("$VHSM" operator init "$url" --key "$work/recovery-key.pem" --fingerprint "$(printed)" --json \
  2>"$work/operator.err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])' 2>/dev/null)
[ -n "$token" ] || fail_early "vhsm operator init failed: $(cat "$work/operator.err")"
api -X POST -d '{"type":"kv","options":{"version":"2"}}' "$url/v1/sys/mounts/secret" >/dev/null
api -X POST -d '{"type":"transit"}' "$url/v1/sys/mounts/transit" >/dev/null
check "KV v2 and transit are mounted" \
  'api "$url/v1/sys/mounts" | python3 -c "import json,sys; m = json.load(sys.stdin); assert \"secret/\" in m and \"transit/\" in m"'

matrix=()
for round in $(seq "$ROUNDS"); do
  cut_after=$((CUT_MIN + RANDOM % (CUT_MAX - CUT_MIN + 1)))
  before=$(acks)
  python3 "$client" load "$url" "$token" "$work/acked.jsonl" --tag "r$round" --seconds 600 \
    >"$work/load-$round.json" 2>"$work/load-$round.err" &
  loader=$!
  sleep "$cut_after"
  "$here/image/launch" kill --run-dir "$run" >/dev/null 2>&1
  killed=$?
  wait "$loader"
  loader=
  during=$(($(acks) - before))
  kinds=$(python3 -c 'import json,sys; k = json.load(open(sys.argv[1]))["by_kind"]
print("%d/%d/%d" % (k.get("kv", 0), k.get("transit-key", 0), k.get("transit-ciphertext", 0)))' \
    "$work/load-$round.json" 2>/dev/null || echo "?")
  say "round $round: kill -9 of QEMU after $cut_after s of load, $during writes acknowledged in this round"
  check "round $round: QEMU was killed (SIGKILL) under load, with writes acknowledged before the cut" \
    '[ "$killed" = 0 ] && [ "$during" -gt 0 ]'
  boot "after-$round" && wait_ready
  ready=$?
  check "round $round: the next boot unlocked the volume (not formatted) and vhsmd is ready" \
    '[ "$ready" = 0 ] && has "unlocked as /dev/mapper/" && ! has "is blank"'
  replay=no
  has "recovery complete" && replay=yes
  python3 "$client" verify "$url" "$token" "$work/acked.jsonl" >"$work/verify-$round.json" 2>"$work/verify-$round.err"
  lost=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lost"])' "$work/verify-$round.json" \
    2>/dev/null || echo "?")
  total=$(acks)
  check "round $round: every acknowledged write so far ($total) reads back after the power cut" '[ "$lost" = 0 ]'
  [ "$lost" = 0 ] || cat "$work/verify-$round.json" "$work/verify-$round.err"
  matrix+=("$(printf '%5s %7s %6s %13s %10s %5s %14s %9s' "$round" "${cut_after}s" "$during" "$kinds" "$total" "$lost" \
    "$replay" "$([ "$ready" = 0 ] && echo ready || echo FAILED)")")
done

# The verifier is not vacuous: a write that was never made, added to the record, is reported lost.
cp "$work/acked.jsonl" "$work/acked-control.jsonl"
echo '{"kind": "kv", "path": "never-written", "value": "00"}' >>"$work/acked-control.jsonl"
check "control: a write recorded but never made is reported lost by the same verifier" \
  '! python3 "$client" verify "$url" "$token" "$work/acked-control.jsonl" >"$work/control.json" 2>&1 &&
   grep -q "\"lost\": 1," "$work/control.json"'

"$here/image/launch" powerdown --run-dir "$run" --timeout 90 >/dev/null 2>&1
check "after the last round the VM powers off cleanly and the volume verifies on the host (vhsm volume inspect)" \
  '"$VHSM" volume inspect "$work/disk.img" >/dev/null'

echo
printf '%5s %7s %6s %13s %10s %5s %14s %9s\n' round "cut at" acked "kv/keys/ct" "acked all" lost "journal replay" \
  "next boot"
for line in "${matrix[@]}"; do echo "$line"; done
echo
echo "powercut-load-test: $passed passed, $failed failed ($(($(date +%s) - started)) s, seed $POWERCUT_SEED)"
[ "$failed" = 0 ]

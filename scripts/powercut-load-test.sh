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
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib/qemu-env.sh"
ROUNDS=${ROUNDS:-3}
CUT_MIN=${CUT_MIN:-3}
CUT_MAX=${CUT_MAX:-15}
POWERCUT_SEED=${POWERCUT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
RANDOM=$POWERCUT_SEED
client="$here/scripts/faults/powercut_load.py"
loader=
qemu_cleanup_hook() { [ -n "$loader" ] && kill "$loader" 2>/dev/null; }
qemu_begin powercut-load
fail_early() { say "$*"; failed=$((failed + 1)); qemu_end; exit 1; }

# ---- artifacts: the initramfs of check-qemu's first boot, a 64 MiB blank disk ------------------------------------
qemu_initrd base "$work/vhsmd-base.json"
qemu_manifest "$work/initrd-base.img"
"$here/image/make-disk" "$work/disk.img" 64M >/dev/null
# start NAME: boots the disk on the one emulated chip, with the cache mode said explicitly.
start() { boot "$1" "$work/disk.img" chip --cache writeback; }
api() { curl -sk --max-time 30 -H "X-Vault-Token: $token" "$@"; }
acks() { [ -f "$work/acked.jsonl" ] && wc -l <"$work/acked.jsonl" || echo 0; }

say "seed $POWERCUT_SEED, $ROUNDS rounds, cut after ${CUT_MIN}-${CUT_MAX} s of load"
say "first boot on a blank disk"
start first && wait_ready || fail_early "the first boot did not reach 'vhsmd: ready' (console: $console)"
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
  cut_power
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
  start "after-$round" && wait_ready
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
say "seed $POWERCUT_SEED"
qemu_end

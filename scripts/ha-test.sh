#!/usr/bin/env bash
# vhsmd's HA on PostgreSQL under faults (issue 17): a throwaway PostgreSQL 15, three vhsmd nodes on three emulated
# chips, two writers, a 50 ms health sampler, and each fault --rounds times (kill -9, SIGSTOP past the lease,
# step-down, the lease connection terminated, PostgreSQL restarted); then the readback of every acked write, a
# pg_dump scan for plaintext and a swapped-row tamper check. See scripts/ha/ha_test.py.
# Usage: VHSMD=path/to/vhsmd VHSM=path/to/vhsm scripts/ha-test.sh [ha_test.py options]   (both built with the
#        Emulator trait; KEEP=1 keeps the work directories, VERBOSE=1 prints every check)
#        scripts/ha-test.sh --self-test   checks the harness alone, no vhsmd needed: scripts/lib/pg.sh,
#        scripts/ha/pg.py, the journal, sampler, dump scanner and tamper row finder against a fake cluster; then the
#        whole plan against scripts/ha/fake_vhsmd.py (the contract in Python, for this purpose only), which must
#        pass, and against it broken three ways, which the harness must catch.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = --self-test ]; then
  status=0
  bash "$here/ha/pg-selftest.sh" || status=1
  python3 "$here/ha/pg.py" --self-test || status=1
  python3 "$here/ha/ha_test.py" --self-test || status=1
  python3 "$here/ha/ha_test.py" --fake --rounds 1 || { echo "FAIL the plan against the fake"; status=1; }
  # expect_caught NAME PATTERN ARGS…: the plan against a broken fake must fail, with PATTERN among its FAIL lines.
  expect_caught() {
    local name=$1 pattern=$2 out
    shift 2
    out=$(python3 "$here/ha/ha_test.py" --fake --rounds 1 "$@" 2>&1)
    if [ $? = 1 ] && grep -q "^FAIL .*$pattern" <<<"$out"; then
      echo "ok   the harness catches $name: $(grep -c '^FAIL' <<<"$out") failed checks, e.g. $(grep -m1 "^FAIL .*$pattern" <<<"$out")"
    else
      echo "FAIL the harness does not catch $name:"; tail -15 <<<"$out"; status=1
    fi
  }
  expect_caught "a deposed active that commits (no fence, no self-demotion)" "stopped .* not acknowledged" \
    --only SIGSTOP --fake-bug no-fence --fake-bug no-demote
  expect_caught "sealed values without the path as AAD" "is not served with the other secret" \
    --only step-down --fake-bug no-aad
  expect_caught "key names in the clear in the database" "plaintext needles" --only step-down --fake-bug plain-keys
  [ $status = 0 ] && echo "ha-test --self-test: all passed"
  exit $status
fi
VHSMD=${VHSMD:?set VHSMD to vhsmd built with --traits Emulator} VHSM=${VHSM:?set VHSM to the vhsm CLI}
exec python3 "$here/ha/ha_test.py" --vhsmd "$VHSMD" --vhsm "$VHSM" "$@"

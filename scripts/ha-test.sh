#!/usr/bin/env bash
# vhsmd's HA on PostgreSQL under faults (issue 17): a throwaway PostgreSQL 15, three vhsmd nodes on three emulated
# chips, two writers, a 50 ms health sampler, and each fault --rounds times (kill -9, SIGSTOP past the lease,
# step-down, the lease connection terminated, PostgreSQL restarted); then the readback of every acked write, a
# pg_dump scan for plaintext and a swapped-row tamper check. See scripts/ha/ha_test.py.
# Usage: VHSMD=path/to/vhsmd VHSM=path/to/vhsm scripts/ha-test.sh [ha_test.py options]   (both built with the
#        Emulator trait; KEEP=1 keeps the work directories, VERBOSE=1 prints every check)
#        scripts/ha-test.sh --self-test   checks the harness alone: scripts/lib/pg.sh, scripts/ha/pg.py, the
#        journal, the sampler, the dump scanner and the tamper row finder (no vhsmd needed)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = --self-test ]; then
  status=0
  bash "$here/ha/pg-selftest.sh" || status=1
  python3 "$here/ha/pg.py" --self-test || status=1
  python3 "$here/ha/ha_test.py" --self-test || status=1
  exit $status
fi
VHSMD=${VHSMD:?set VHSMD to vhsmd built with --traits Emulator} VHSM=${VHSM:?set VHSM to the vhsm CLI}
exec python3 "$here/ha/ha_test.py" --vhsmd "$VHSMD" --vhsm "$VHSM" "$@"

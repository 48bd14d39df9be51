#!/usr/bin/env bash
# The self-test of scripts/lib/pg.sh (scripts/ha-test.sh --self-test runs it): start, psql, terminate a backend by
# application_name, restart -m fast, a bytea row in pg_dump, stop.
set -uo pipefail
. "$(dirname "$0")/../lib/pg.sh"
trap pg_stop EXIT
fail=0
ok() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
pg_start || exit 1
ok "started on $PG_PORT pid $PG_PID user $(ps -o user= -p $PG_PID)" '[ "$(ps -o user= -p $PG_PID)" != root ]'
ok "psql" '[ "$(pg_psql "SELECT current_user")" = vhsm ]'
PGAPPNAME=vhsmd-lease-x "$PG_BINDIR/psql" -h 127.0.0.1 -p $PG_PORT -U vhsm -d vhsm -X -q -c 'SELECT pg_sleep(30)' >/dev/null 2>&1 & h=$!
sleep 0.5
ok "terminate" '[ "$(pg_terminate vhsmd-lease-x)" = 1 ]'
wait $h; ok "client ended ($?)" true
old=$PG_PID; pg_restart; ok "restart $old -> $PG_PID" '[ "$old" != "$PG_PID" ] && kill -0 $PG_PID'
pg_psql "CREATE TABLE t(v bytea); INSERT INTO t VALUES ('\x6e6565646c65')"
ok "dump hex" 'pg_dump_db --data-only | grep -q "\\\\x6e6565646c65"'
d=$PG_DIR p=$PG_PID; pg_stop
ok "stopped and removed" '! kill -0 $p 2>/dev/null && [ ! -e "$d" ]'
exit $fail

# Sourced by bash scripts (issue 17's cluster scripts): a throwaway PostgreSQL 15 from Debian's postgresql-15, the
# bash twin of scripts/ha/pg.py. In a mktemp -d directory owned by an unprivileged user (as root: postgres if it
# exists, else nobody; the server refuses root), loopback only, a free port, trust authentication for role vhsm,
# database vhsm.
#
#   pg_start              sets PG_DIR, PG_PORT, PG_PID (the postmaster), PG_URL; non-zero (and a sentence on
#                         stderr) when it does not come up
#   pg_psql SQL           runs SQL as vhsm on vhsm (ON_ERROR_STOP; unaligned, tuples only)
#   pg_restart            pg_ctl restart -m fast (a fault: every connection is cut); updates PG_PID
#   pg_terminate APPNAME  pg_terminate_backend on the backends with this application_name; prints how many
#   pg_dump_db [OPTIONS]  pg_dump of the database (plain SQL) on stdout
#   pg_stop               pg_ctl stop -m fast (SIGKILL to PG_PID if that fails), then rm -rf PG_DIR (KEEP=1 keeps it)
#
# The caller stops it: call pg_stop from its EXIT trap (test-env.sh's test_cleanup does not know it).
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_DIR= PG_PORT= PG_PID= PG_URL= PG_USER=

# pg_as_server COMMAND…: runs COMMAND as the server's user.
pg_as_server() { if [ -n "$PG_USER" ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }

pg_start() {
  local tool try
  for tool in initdb pg_ctl postgres psql pg_dump createdb; do
    [ -x "$PG_BINDIR/$tool" ] || { echo "pg: $PG_BINDIR/$tool is missing: install Debian's postgresql-15 (scripts/deps.sh does) or set PG_BINDIR" >&2; return 1; }
  done
  PG_USER=
  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then PG_USER=postgres; elif id nobody >/dev/null 2>&1; then PG_USER=nobody; else
      echo "pg: running as root and neither the user postgres nor nobody exists: create an unprivileged user" >&2
      return 1
    fi
  fi
  PG_DIR=$(mktemp -d /tmp/vhsm-pg-XXXXXX) || return 1
  [ -n "$PG_USER" ] && chown "$PG_USER:$(id -g "$PG_USER")" "$PG_DIR"
  pg_as_server "$PG_BINDIR/initdb" -D "$PG_DIR/pg" -U vhsm --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
    { echo "pg: initdb failed in $PG_DIR/pg:" >&2; cat "$PG_DIR/initdb.log" >&2; return 1; }
  for try in 1 2 3; do # another process can take the free port before the server binds it
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    pg_as_server "$PG_BINDIR/pg_ctl" -D "$PG_DIR/pg" -l "$PG_DIR/pg.log" -w -t 60 -o "-p $PG_PORT -k $PG_DIR \
-c listen_addresses=127.0.0.1 -c client_connection_check_interval=1000 -c fsync=on -c synchronous_commit=on" \
      start >/dev/null 2>&1 && break
    [ "$try" = 3 ] && { echo "pg: PostgreSQL did not start (three ports tried); see $PG_DIR/pg.log:" >&2; tail -5 "$PG_DIR/pg.log" >&2; return 1; }
  done
  PG_PID=$(head -1 "$PG_DIR/pg/postmaster.pid")
  PG_URL=postgres://vhsm@127.0.0.1:$PG_PORT/vhsm
  "$PG_BINDIR/createdb" -h 127.0.0.1 -p "$PG_PORT" -U vhsm vhsm ||
    { echo "pg: createdb vhsm failed on port $PG_PORT; see $PG_DIR/pg.log" >&2; return 1; }
}

pg_psql() { "$PG_BINDIR/psql" -h 127.0.0.1 -p "$PG_PORT" -U vhsm -d vhsm -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

pg_restart() {
  pg_as_server "$PG_BINDIR/pg_ctl" -D "$PG_DIR/pg" -l "$PG_DIR/pg.log" -m fast -w -t 60 restart >/dev/null ||
    { echo "pg: pg_ctl restart -m fast failed; see $PG_DIR/pg.log" >&2; return 1; }
  PG_PID=$(head -1 "$PG_DIR/pg/postmaster.pid")
}

pg_terminate() {
  pg_psql "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '${1//\'/\'\'}'"
}

pg_dump_db() { "$PG_BINDIR/pg_dump" -h 127.0.0.1 -p "$PG_PORT" -U vhsm "$@" vhsm; }

pg_stop() {
  [ -n "$PG_DIR" ] || return 0
  if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
    pg_as_server "$PG_BINDIR/pg_ctl" -D "$PG_DIR/pg" -m fast -w -t 30 stop >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$PG_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $PG_DIR" >&2; else rm -rf "$PG_DIR"; fi
  PG_DIR= PG_PID=
}

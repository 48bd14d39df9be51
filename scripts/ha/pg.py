"""A throwaway PostgreSQL 15 for the HA tests (issue 17): Debian's postgresql-15 binaries, a mktemp -d directory
owned by an unprivileged user (the server refuses to run as root), loopback only, a free port, trust
authentication for the role `vhsm`, and the faults the tests inject (a fast restart, a backend terminated by its
application_name). Every process started here is stopped by PID and the directory removed (stop(), also at exit).

Used by scripts/ha/ha_test.py; `python3 scripts/ha/pg.py --self-test` checks it alone.
"""

from __future__ import annotations

import argparse
import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BINDIR = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")


class PostgresError(Exception):
    """A sentence: what failed, where, what to check next."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unprivileged_user() -> str | None:
    """The user the server runs as: None when we are not root; else `postgres` if it exists, else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresError("running as root and neither the user postgres nor nobody exists: create an unprivileged "
                        "user for the throwaway PostgreSQL")


class Postgres:
    def __init__(self, bindir: str = BINDIR, role: str = "vhsm", database: str = "vhsm", keep: bool = False):
        self.bindir = bindir
        self.role = role
        self.database = database
        self.keep = keep
        self.dir: str | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self.user = unprivileged_user()
        for tool in ("initdb", "pg_ctl", "postgres", "psql", "pg_dump", "createdb"):
            if not os.access(os.path.join(bindir, tool), os.X_OK):
                raise PostgresError(f"{bindir}/{tool} is missing: install Debian's postgresql-15 (scripts/deps.sh "
                                    "does) or set PG_BINDIR")

    # -- helpers -------------------------------------------------------------------------------------------------
    def _as_server_user(self, argv: list[str]) -> list[str]:
        return (["runuser", "-u", self.user, "--"] + argv) if self.user else argv

    def _run(self, argv: list[str], what: str, timeout: float = 120, as_server: bool = False,
             input: bytes | None = None) -> bytes:
        cmd = self._as_server_user(argv) if as_server else argv
        try:
            done = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PostgresError(f"{what} did not finish in {timeout:.0f} s ({' '.join(argv[:2])}); see {self.log}")
        if done.returncode != 0:
            raise PostgresError(f"{what} failed (exit {done.returncode}): "
                                f"{done.stderr.decode(errors='replace').strip()[-600:]}; see {self.log}")
        return done.stdout

    @property
    def pgdata(self) -> str:
        return os.path.join(self.dir or "?", "pg")

    @property
    def log(self) -> str:
        return os.path.join(self.dir or "?", "pg.log")

    @property
    def url(self) -> str:
        return f"postgres://{self.role}@127.0.0.1:{self.port}/{self.database}"

    def _client(self, tool: str) -> list[str]:
        return [os.path.join(self.bindir, tool), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.role]

    def _read_pid(self) -> int:
        with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
            return int(f.readline().strip())

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> "Postgres":
        """initdb, start on a free port (three tries: another process can take the port in between), createdb."""
        self.dir = tempfile.mkdtemp(prefix="vhsm-pg-")
        atexit.register(self.stop)
        if self.user:
            shutil.chown(self.dir, user=self.user, group=pwd.getpwnam(self.user).pw_gid)
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.pgdata, "-U", self.role, "--auth=trust",
                   "-E", "UTF8", "--no-sync"], "initdb", as_server=True)
        last = None
        for _ in range(3):
            self.port = free_port()
            options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                       "-c client_connection_check_interval=1000 -c fsync=on -c synchronous_commit=on")
            try:
                self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.pgdata, "-l", self.log, "-o", options,
                           "-w", "-t", "60", "start"], "pg_ctl start", as_server=True)
                break
            except PostgresError as e:
                last = e
        else:
            raise PostgresError(f"PostgreSQL did not start in {self.dir} after three ports: {last}")
        self.pid = self._read_pid()
        self._run(self._client("createdb") + [self.database], "createdb")
        return self

    def alive(self) -> bool:
        """The recorded postmaster runs (a zombie or another program under a reused PID does not count)."""
        if not self.pid:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            return False
        return "(postgres)" in stat and stat.rsplit(")", 1)[1].split()[0] != "Z"

    def restart(self) -> float:
        """pg_ctl restart -m fast (the fault: every connection is cut); returns the seconds it took."""
        started = time.monotonic()
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.pgdata, "-l", self.log, "-m", "fast", "-w",
                   "-t", "60", "restart"], "pg_ctl restart -m fast", as_server=True)
        self.pid = self._read_pid()
        return time.monotonic() - started

    def stop(self) -> None:
        """pg_ctl stop -m fast (SIGKILL to the postmaster by PID if that fails), then remove the directory."""
        if self.dir is None:
            return
        if self.alive():
            try:
                self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.pgdata, "-m", "fast", "-w", "-t", "30",
                           "stop"], "pg_ctl stop", as_server=True, timeout=60)
            except PostgresError:
                pass
            # pg_ctl returns once postmaster.pid is gone; the process itself can linger a moment longer.
            for _ in range(100):
                if not self.alive():
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.pid = None
        if self.keep:
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    # -- SQL and faults ------------------------------------------------------------------------------------------
    def psql(self, sql: str, timeout: float = 30) -> list[list[str]]:
        """Runs SQL (ON_ERROR_STOP); returns the rows of the last statement, fields split on the unit separator."""
        out = self._run(self._client("psql") + ["-d", self.database, "-X", "-q", "-A", "-t", "-F", "\x1f",
                                                "-v", "ON_ERROR_STOP=1", "-c", sql], f"psql ({sql[:60]}…)",
                        timeout=timeout)
        return [line.split("\x1f") for line in out.decode().splitlines() if line != ""]

    def backends(self, application_name: str) -> list[int]:
        rows = self.psql("SELECT pid FROM pg_stat_activity WHERE application_name = "
                         f"{quote(application_name)} ORDER BY pid")
        return [int(r[0]) for r in rows]

    def terminate(self, application_name: str) -> int:
        """pg_terminate_backend on every backend with this application_name; returns how many were terminated."""
        rows = self.psql("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                         f"WHERE application_name = {quote(application_name)}")
        return int(rows[0][0])

    def dump(self, data_only: bool) -> bytes:
        """pg_dump of the database, plain SQL (bytea printed as \\x hex)."""
        return self._run(self._client("pg_dump") + (["--data-only"] if data_only else []) + [self.database],
                         "pg_dump" + (" --data-only" if data_only else ""), timeout=300)


    def restore(self, sql: bytes) -> None:
        """Loads a plain pg_dump into this (empty) database, stopping at the first error."""
        self._run(self._client("psql") + ["-d", self.database, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                  "psql < dump", timeout=300, input=sql)

def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# -- self-test -----------------------------------------------------------------------------------------------------
def self_test() -> int:
    failures = []

    def check(name: str, ok: bool) -> None:
        print(("ok   " if ok else "FAIL ") + name)
        if not ok:
            failures.append(name)

    pg = Postgres().start()
    a, b = Postgres().start(), None
    try:
        check(f"two instances run side by side on free ports ({pg.port}, {a.port})", pg.port != a.port and
              pg.alive() and a.alive())
        a.stop()
        check("stop: the second postmaster is gone and its directory removed",
              not a.alive() and a.dir is None)
        owner = pwd.getpwuid(os.stat(pg.dir).st_uid).pw_name
        check(f"the directory is owned by the server's user ({owner})",
              owner == (pg.user or pwd.getpwuid(os.geteuid()).pw_name))
        server_user = subprocess.run(["ps", "-o", "user=", "-p", str(pg.pid)], capture_output=True,
                                     text=True).stdout.strip()
        check(f"the postmaster (PID {pg.pid}) does not run as root ({server_user})", server_user not in ("", "root"))
        settings = dict(pg.psql("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', "
                                "'synchronous_commit', 'listen_addresses', 'client_connection_check_interval')"))
        check(f"settings: {settings}", settings == {"fsync": "on", "synchronous_commit": "on",
                                                     "listen_addresses": "127.0.0.1",
                                                     "client_connection_check_interval": "1000"})
        check("psql as vhsm on the vhsm database", pg.psql("SELECT current_user, current_database()") ==
              [["vhsm", "vhsm"]])
        holder = subprocess.Popen(pg._client("psql") + ["-d", "vhsm", "-X", "-q", "-c", "SELECT pg_sleep(60)"],
                                  env={**os.environ, "PGAPPNAME": "vhsmd-lease-selftest"},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if pg.backends("vhsmd-lease-selftest"):
                break
            time.sleep(0.05)
        check("a backend is found by application_name", len(pg.backends("vhsmd-lease-selftest")) == 1)
        check("terminate: one backend terminated", pg.terminate("vhsmd-lease-selftest") == 1)
        try:
            rc = holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            rc = None
        check(f"the terminated client saw its connection end (psql exit {rc})", rc not in (None, 0))
        check("terminate of an unknown name: 0", pg.terminate("vhsmd-lease-nobody") == 0)
        pg.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('before-restart')")
        old = pg.pid
        took = pg.restart()
        check(f"restart -m fast: a new postmaster ({old} -> {pg.pid}, {took:.2f} s), data kept",
              pg.pid != old and pg.alive() and pg.psql("SELECT v FROM t") == [["before-restart"]])
        dump = pg.dump(data_only=True)
        check("pg_dump --data-only has the row", b"before-restart" in dump and b"CREATE TABLE" not in dump)
        check("pg_dump (full) has the schema", b"CREATE TABLE public.t" in pg.dump(data_only=False))
        directory, pid = pg.dir, pg.pid
    finally:
        pg.stop()
    pg.pid = pid
    check("stop: the postmaster is gone and the directory removed", not os.path.exists(directory) and
          not pg.alive())
    print(f"pg: {'all checks passed' if not failures else str(len(failures)) + ' failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--self-test", action="store_true", help="start, fault and stop two instances")
    args = parser.parse_args()
    if not args.self_test:
        parser.error("nothing to do: --self-test, or import this module")
    try:
        sys.exit(self_test())
    except PostgresError as e:
        print(f"pg: {e}", file=sys.stderr)
        sys.exit(1)

#!/usr/bin/env python3
"""`make run-cluster`: a vhsmd cluster on this machine, to try HA by hand (issue 17).

Starts PostgreSQL 15 (Debian's postgresql-15) in a temporary directory as an unprivileged user on loopback, and three
vhsmd nodes on three emulated chips (`vhsm emulator serve`, one state directory each) with the production lease
timings (3 s, renewed every 500 ms, retried every 250 ms). Node 1 is initialised with an operator key; nodes 2 and 3
join by attestation ("join": node 1's address, every chip's ARK in cluster_trusted_roots; over plain HTTP here, so
node 1 is not verified by attested TLS) and each keeps its own member entry. It then shows, with the time each took:
  - the members (`vhsm cluster members`) and the leader (`sys/leader`) as a standby sees it;
  - a secret written through a standby (307 to the active node, followed);
  - a failover: `kill -9` of the active node, a new active node, the secret read back through it, and the killed
    node restarted as a standby from its own member entry (no join);
  - a step-down (`PUT sys/step-down`) handing the lease on.
Then it keeps the cluster running and prints the addresses, the root token and the PostgreSQL URL until Ctrl-C
(--no-wait: stop at once). Every process is stopped by PID and every directory removed at the end.

Usage: VHSMD=… VHSM=… scripts/ha/run_cluster.py [--no-wait]
"""
import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ha_test import Cluster, HAFailure, call  # noqa: E402
from pg import PostgresError  # noqa: E402


def health(node) -> str:
    status = node.health()
    return {200: "active", 429: "standby", 503: "sealed", 501: "not initialised", None: "down"}.get(status,
                                                                                                 str(status))


def show(cluster: Cluster) -> None:
    print("  " + ", ".join(f"{n.id} {n.base} {health(n)}" for n in cluster.nodes))


def until_new_active(cluster: Cluster, old, started: float) -> tuple[object, float]:
    while time.monotonic() - started < 60:
        for node in cluster.nodes:
            if node is not old and node.running() and node.health(timeout=0.5) == 200:
                return node, time.monotonic() - started
        time.sleep(0.05)
    raise HAFailure("no new active node within 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vhsmd", default=os.environ.get("VHSMD", ".build/debug/vhsmd"))
    parser.add_argument("--vhsm", default=os.environ.get("VHSM", ".build/debug/vhsm"))
    parser.add_argument("--no-wait", action="store_true", help="stop after the demonstration")
    options = parser.parse_args()
    args = argparse.Namespace(
        vhsmd=options.vhsmd, vhsm=options.vhsm, fake=False, fake_bug=[], keep=False, table="vhsm_kv_store",
        ha_table="vhsm_ha_locks", lease_ttl=3.0, renew_interval=0.5, retry_interval=0.25, attested_join=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cluster = Cluster(args)
        print("starting PostgreSQL and three nodes on three emulated chips (this takes a minute: each chip makes "
              "its RSA-4096 keys)")
        cluster.setup()
        print(f"cluster up: PostgreSQL {cluster.pg.url}")
        show(cluster)
        members = subprocess.run([args.vhsm, "cluster", "members", cluster.active().base, "--token", cluster.token],
                                 capture_output=True, text=True)
        print(members.stdout.rstrip() or members.stderr.rstrip())
        standby = next(n for n in cluster.nodes if n.health() == 429)
        leader = call("GET", standby.base, "sys/leader").json()
        print(f"{standby.id} (a standby) names the leader: {leader.get('leader_address')} "
              f"(node {leader.get('leader_node_id')})")
        answer = call("POST", standby.base, "secret/data/demo", {"data": {"greeting": "hello"}}, cluster.token)
        print(f"wrote secret/data/demo through {standby.id}: HTTP {answer.status} (its 307 followed to the active)")

        active = cluster.active()
        print(f"failover: kill -9 of the active node {active.id} (PID {active.proc.pid})")
        started = time.monotonic()
        active.proc.kill()
        active.proc.wait()
        new, took = until_new_active(cluster, active, started)
        read = call("GET", new.base, "secret/data/demo", None, cluster.token).json()
        print(f"  {new.id} is active after {took:.2f} s; secret/data/demo reads "
              f"{read.get('data', {}).get('data')}")
        active.start()
        print(f"  {active.id} restarted: {health(active)} (unsealed from its own member entry, no join)")

        active = cluster.active()
        started = time.monotonic()
        answer = call("PUT", active.base, "sys/step-down", None, cluster.token)
        new, took = until_new_active(cluster, active, started)
        print(f"step-down of {active.id}: HTTP {answer.status}; {new.id} is active after {took:.2f} s")
        show(cluster)
        if options.no_wait:
            return 0
        print(f"\nthe cluster runs until Ctrl-C. Root token: {cluster.token}\n"
              f"  export VAULT_ADDR={new.base} VAULT_TOKEN={cluster.token}\n"
              f"  vhsm cluster members $VAULT_ADDR; curl -s $VAULT_ADDR/v1/sys/leader\n"
              f"  logs and chips in {cluster.work}")
        while True:
            time.sleep(3600)
    except (HAFailure, PostgresError) as error:
        print(f"run-cluster: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nrun-cluster: stopping every node and PostgreSQL")
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""gridline-dev: start and stop the local stack (used by make up, make down, make test)."""

from __future__ import annotations

import argparse
import shutil
import sys

from gridline.devstack import services
from gridline.devstack.kafka import KafkaBroker
from gridline.devstack.paths import Paths
from gridline.devstack.postgres import PostgresCluster
from gridline.devstack.prometheus import PrometheusServer, ensure_installed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gridline-dev", description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("infra", "kafka", "postgres", "services"):
        s = sub.add_parser(name)
        s.add_argument(
            "action", choices=["up", "down", "status"] + (["fetch"] if name == "kafka" else [])
        )
    s = sub.add_parser("prometheus", help="Prometheus scraping the services (opt-in)")
    s.add_argument("action", choices=["up", "down", "status", "install"])
    sub.add_parser("down", help="stop Prometheus, services, Kafka and PostgreSQL")
    sub.add_parser("clean", help="stop everything and delete the run directory's data")
    sub.add_parser("status")
    args = p.parse_args(argv)

    paths = Paths.from_env()
    kafka, pg = KafkaBroker(paths), PostgresCluster(paths)
    prometheus = PrometheusServer.from_env(paths)
    action = getattr(args, "action", args.what)
    if args.what in ("down", "clean"):
        prometheus.down()
        services.down(paths)
        kafka.down()
        pg.down()
        if args.what == "clean" and paths.run.exists():
            shutil.rmtree(paths.run)
            print(f"removed {paths.run}")
        return 0
    if args.what == "status" or action == "status":
        for name, state in services.status(paths):
            print(f"{name:8} {state}")
        print(f"{'kafka':8} {kafka.bootstrap}  {'running' if kafka.process.alive else 'stopped'}")
        print(f"{'postgres':8} 127.0.0.1:{pg.port}  {'running' if pg.running() else 'stopped'}")
        if prometheus.process.alive or args.what == "prometheus":
            state = "ready" if prometheus.answers() else "stopped"
            print(f"{'prometheus':8} {prometheus.url}  {state}")
        return 0
    if args.what == "prometheus":
        if action == "install":
            ensure_installed()
        elif action == "up":
            prometheus.up()
        else:
            prometheus.down()
        return 0
    if args.what == "kafka" and action == "fetch":
        kafka.fetch()
    elif args.what in ("infra", "kafka"):
        kafka.up() if action == "up" else kafka.down()
    if args.what in ("infra", "postgres"):
        pg.up() if action == "up" else pg.down()
    if args.what == "services":
        services.up(paths) if action == "up" else services.down(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())

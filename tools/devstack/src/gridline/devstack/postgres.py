"""A private PostgreSQL cluster on 127.0.0.1 (Debian's binaries), unless DATABASE_URL is given."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from gridline.devstack.paths import Paths, port

CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket}'
max_connections = 200
shared_buffers = 256MB
fsync = on
# per-statement CPU and I/O for operators and benchmarks (CREATE EXTENSION pg_stat_statements)
shared_preload_libraries = 'pg_stat_statements'
"""


def _bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if candidates:
        return Path(candidates[-1]).parent
    if shutil.which("pg_config"):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True
        ).stdout.strip()
        if out and Path(out, "initdb").exists():
            return Path(out)
    return None


def _install() -> Path:
    print("installing PostgreSQL (Debian's postgresql package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env)
    bindir = _bindir()
    if bindir is None:
        raise SystemExit("gridline-dev: installed postgresql but found no initdb")
    return bindir


class PostgresCluster:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.port = port("GRIDLINE_PG_PORT", 25432)
        self.external = os.environ.get("GRIDLINE_PG_EXTERNAL") == "1"
        self.home = paths.run / "pg"
        self.data = self.home / "data"
        self.socket = self.home / "socket"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/gridline"

    def _as_postgres(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=check, capture_output=True, text=True
        )

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket.mkdir(parents=True, exist_ok=True)
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.home, "postgres")
        shutil.chown(self.socket, "postgres")
        # The postgres user must be able to reach the cluster's directory.
        for parent in [self.home, *self.home.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
        log = self.paths.logs / "postgres.log"
        log.touch()
        shutil.chown(log, "postgres")

    def up(self) -> None:
        if self.external:
            print("postgres: using DATABASE_URL")
            return
        bindir = _bindir() or _install()
        self._prepare_dirs()
        if not (self.data / "PG_VERSION").exists():
            self._as_postgres(
                str(bindir / "initdb"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-D",
                str(self.data),
            )
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(CONF.format(port=self.port, socket=self.socket))
        if self.running(bindir):
            print(f"postgres: already running on 127.0.0.1:{self.port}")
        else:
            result = self._as_postgres(
                str(bindir / "pg_ctl"),
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-o",
                f"-p {self.port}",
                "-l",
                str(self.paths.logs / "postgres.log"),
                "start",
                check=False,
            )
            if result.returncode != 0:
                raise SystemExit(
                    f"gridline-dev: PostgreSQL did not start:\n{result.stdout}{result.stderr}"
                )
        self._create_database(bindir)
        print(f"postgres: ready, DATABASE_URL={self.url}")

    def running(self, bindir: Path | None = None) -> bool:
        bindir = bindir or _bindir()
        if bindir is None or not (self.data / "PG_VERSION").exists():
            return False
        return (
            self._as_postgres(
                str(bindir / "pg_ctl"), "-D", str(self.data), "status", check=False
            ).returncode
            == 0
        )

    def _create_database(self, bindir: Path) -> None:
        psql = [
            str(bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-tAq",
        ]
        for _ in range(50):
            probe = subprocess.run(
                [*psql, "-c", "SELECT 1 FROM pg_database WHERE datname='gridline'"],
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0:
                if probe.stdout.strip() != "1":
                    subprocess.run(
                        [*psql, "-c", "CREATE DATABASE gridline"], check=True, capture_output=True
                    )
                return
            time.sleep(0.2)
        raise SystemExit(f"gridline-dev: PostgreSQL does not answer on port {self.port}")

    def down(self, mode: str = "fast") -> None:
        """Stop the cluster; mode `immediate` is a crash (no checkpoint, recovery on start)."""
        if self.external:
            return
        bindir = _bindir()
        if bindir is not None and self.running(bindir):
            self._as_postgres(
                str(bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"
            )
            print("postgres: stopped")

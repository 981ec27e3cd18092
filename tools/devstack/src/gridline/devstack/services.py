"""The four services as uvicorn processes with pid files, logs and readiness waits."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from gridline.devstack.paths import Paths, port
from gridline.devstack.processes import ManagedProcess

SERVICES = {"intake": 8000, "routing": 8001, "sla": 8002, "notify": 8003}


KEEP_ALIVE_S = 120


class ServiceProcess(ManagedProcess):
    """One service: `uvicorn gridline.<name>.entrypoints.api:create_app` on 127.0.0.1."""

    def __init__(
        self,
        name: str,
        port: int,
        *,
        env: Mapping[str, str],
        log_path: Path,
        pid_file: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = port
        super().__init__(
            name,
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"gridline.{name}.entrypoints.api:create_app",
                "--factory",
                "--host",
                host,
                "--port",
                str(port),
                "--no-access-log",
                # uvloop and httptools: about 1.75x the default loop and h11 on a POST here
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--timeout-graceful-shutdown",
                "10",
                # Longer than any common client keeps an idle connection (httpx 5 s, aiohttp
                # 15 s, load balancers 60 s, Go 90 s): with uvicorn's 5 s, httpx reusing a
                # connection just as the server closed it got a broken read, and a POST is
                # not retried.
                "--timeout-keep-alive",
                str(KEEP_ALIVE_S),
            ],
            pid_file=pid_file or log_path.with_suffix(".pid"),
            log_path=log_path,
            env=env,
            marker=f"gridline.{name}.entrypoints.api:create_app",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answers(self, path: str = "/readyz") -> bool:
        try:
            return httpx.get(self.url + path, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited during start:\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")


def _env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.startswith("#"):
                values[key.strip()] = value.strip()
    return values


def service_processes(paths: Paths) -> list[ServiceProcess]:
    env = {**_env_file(paths.run / "services.env"), **os.environ}
    return [
        ServiceProcess(
            name,
            port(f"{name.upper()}_PORT", default),
            env=env,
            log_path=paths.logs / f"{name}.log",
            pid_file=paths.pid_file(name),
            host=os.environ.get(f"{name.upper()}_HOST", "127.0.0.1"),
        )
        for name, default in SERVICES.items()
    ]


def up(paths: Paths, timeout: float = 90) -> None:
    processes = service_processes(paths)
    for p in processes:
        if p.alive and p.answers("/healthz"):
            continue
        p.start()
    for p in processes:
        try:
            p.wait_ready(timeout)
        except RuntimeError as exc:
            raise SystemExit(f"gridline-dev: {exc}") from None
        print(f"{p.name:8} ready  {p.url}  (pid {p.pid}, log {p.log_path})")


def down(paths: Paths) -> None:
    for p in reversed(service_processes(paths)):
        if p.alive:
            p.stop(timeout=15)
            print(f"{p.name}: stopped")


def status(paths: Paths) -> list[tuple[str, str]]:
    return [
        (
            p.name,
            f"{p.url}  {'ready' if p.answers() else 'running, not ready' if p.alive else 'stopped'}",
        )
        for p in service_processes(paths)
    ]

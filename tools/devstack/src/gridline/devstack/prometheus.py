"""Prometheus for the local stack: Debian's `prometheus` package, run with our own
configuration and data under the run directory, on 127.0.0.1, stopped by pid.

The package's own service is never used: on a machine with systemd, installing it
starts one on every interface at :9090, so it is stopped and disabled right away."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from gridline.devstack.paths import Paths, port, repo_root
from gridline.devstack.processes import ManagedProcess
from gridline.devstack.services import SERVICES

BINARY = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
DEFAULT_PORT = 9090


def deploy_dir() -> Path:
    return repo_root() / "deploy" / "prometheus"


def installed() -> bool:
    return Path(BINARY).exists() and Path(PROMTOOL).exists()


def ensure_installed() -> None:
    """Install Debian's prometheus package (prometheus and promtool) when missing."""
    if installed():
        return
    print("installing Prometheus (Debian's prometheus package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(install, check=True, env=env)
    if Path("/run/systemd/system").exists():  # systemd started the package's service
        subprocess.run(["systemctl", "disable", "--now", "prometheus.service"], check=False)
    if not installed():
        raise SystemExit("gridline-dev: installed prometheus but found no prometheus/promtool")


def render_config(
    ports: Mapping[str, int],
    *,
    rules_dir: Path | None = None,
    interval: str | None = None,
) -> str:
    """deploy/prometheus/prometheus.yml with the services' ports and absolute rule files;
    `interval` (e.g. "1s") replaces the scrape and evaluation intervals. Plain text
    substitution, so the file keeps its comments and stays the one to copy."""
    source = deploy_dir()
    text = (source / "prometheus.yml").read_text()
    text = text.replace("- rules/*.yml", f"- {rules_dir or source / 'rules'}/*.yml")
    if interval:
        text = re.sub(r"(?m)^(\s*(?:scrape|evaluation)_interval:) \S+", rf"\1 {interval}", text)
    by_default = {str(default): ports[name] for name, default in SERVICES.items()}
    return re.sub(r'"127\.0\.0\.1:(\d+)"', lambda m: f'"127.0.0.1:{by_default[m[1]]}"', text)


class PrometheusServer:
    """One Prometheus process: config and data in `home`, web UI and API on 127.0.0.1."""

    def __init__(
        self,
        home: Path,
        port: int,
        *,
        log_path: Path,
        pid_file: Path,
        ports: Mapping[str, int],
        interval: str | None = None,
    ) -> None:
        self.home = home
        self.port = port
        self.ports = dict(ports)
        self.interval = interval
        self.config = home / "prometheus.yml"
        self.process = ManagedProcess(
            "prometheus",
            [
                BINARY,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=15d",
                "--web.enable-lifecycle",  # POST /-/reload: make up again reads new rules
            ],
            pid_file=pid_file,
            log_path=log_path,
            marker=f"--config.file={self.config}",
        )

    @classmethod
    def from_env(cls, paths: Paths) -> PrometheusServer:
        ports = {name: port(f"{name.upper()}_PORT", default) for name, default in SERVICES.items()}
        return cls(
            paths.run / "prometheus",
            port("GRIDLINE_PROMETHEUS_PORT", DEFAULT_PORT),
            log_path=paths.logs / "prometheus.log",
            pid_file=paths.pid_file("prometheus"),
            ports=ports,
            interval=os.environ.get("GRIDLINE_PROMETHEUS_INTERVAL") or None,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def up(self, timeout: float = 60) -> None:
        ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        self.config.write_text(render_config(self.ports, interval=self.interval))
        if self.process.alive:
            # Running already: read the (possibly changed) configuration and rules again.
            httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()
        else:
            self.process.start()
        deadline = time.monotonic() + timeout
        while not self.answers():
            if not self.process.alive:
                raise SystemExit(f"gridline-dev: Prometheus exited:\n{self.process.log_tail()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"gridline-dev: Prometheus not ready:\n{self.process.log_tail()}")
            time.sleep(0.25)
        print(f"prometheus ready  {self.url}  (pid {self.process.pid}, data {self.home})")

    def down(self) -> None:
        if self.process.alive:
            self.process.stop(timeout=20)
            print("prometheus: stopped")

    def clean(self) -> None:
        self.down()
        shutil.rmtree(self.home, ignore_errors=True)

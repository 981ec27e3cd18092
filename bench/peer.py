"""The peer: Prometheus Alertmanager (Debian's prometheus-alertmanager) on 127.0.0.1, one
route grouping by the alert's unique `id` label with group_wait 0s, so every alert is its
own group and is sent to the bench's webhook receiver at once. State lives under the run dir.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

CONFIG = """\
global:
  resolve_timeout: 1h
route:
  receiver: bench
  group_by: [id]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 24h
receivers:
  - name: bench
    webhook_configs:
      - url: {webhook}
        send_resolved: false
"""


def binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not found:
        raise SystemExit(
            "bench: prometheus-alertmanager is not installed (scripts/bench.sh installs it)"
        )
    return found


def version() -> str:
    out = subprocess.run([binary(), "--version"], capture_output=True, text=True)
    return ((out.stdout or out.stderr).splitlines() or ["?"])[0].strip()


class Alertmanager:
    def __init__(self, home: Path, port: int, webhook: str) -> None:
        self.home, self.port, self.webhook = home, port, webhook
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> int:
        shutil.rmtree(self.home, ignore_errors=True)
        (self.home / "data").mkdir(parents=True)
        config = self.home / "alertmanager.yml"
        config.write_text(CONFIG.format(webhook=self.webhook))
        log = open(self.home / "alertmanager.log", "wb")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [
                binary(),
                f"--config.file={config}",
                f"--storage.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"bench: alertmanager exited; see {self.home / 'alertmanager.log'}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self.proc.pid
            except OSError:
                time.sleep(0.2)
        raise SystemExit("bench: alertmanager not ready after 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

"""Starting and stopping our own processes by pid, never anyone else's."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie has exited; it just has not been reaped yet
        return stat.read_text().split(") ", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class ManagedProcess:
    """A detached process with a pid file. Stopping checks the pid still runs our command
    (the marker appears in its command line), so a recycled pid is never signalled."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        pid_file: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        marker: str,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.pid_file = pid_file
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.marker = marker
        self.user = user
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        if self._popen is not None and not self.user:
            # Started by this object: its Popen knows, even before exec shows the command.
            return self._popen.pid if self._popen.poll() is None else None
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        cmd = _cmdline(pid)
        if cmd is None or not alive(pid) or not any(self.marker in part for part in cmd):
            return None
        return pid

    @property
    def alive(self) -> bool:
        return self.pid is not None

    def start(self) -> int:
        existing = self.pid
        if existing is not None:
            return existing
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["runuser", "-u", self.user, "--", *self.argv] if self.user else self.argv
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        pid = self._popen.pid
        if self.user:  # runuser forks: record the real server process once it exists
            for _ in range(50):
                child = _child_of(pid)
                if child is not None:
                    pid = child
                    break
                time.sleep(0.05)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def send_signal(self, sig: int) -> None:
        pid = self.pid
        if pid is not None:
            os.kill(pid, sig)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Crash it (SIGKILL by default) and wait until it is gone."""
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, sig)
        self._wait_gone(pid, 10)

    def stop(self, timeout: float = 20) -> None:
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5)
        self.pid_file.unlink(missing_ok=True)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen is not None and self._popen.pid == pid:
                self._popen.poll()
            if not alive(pid):
                return True
            time.sleep(0.05)
        return not alive(pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _child_of(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None

"""gridline-dev stops only what it started, by pid, and never a recycled pid."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from gridline.devstack.processes import ManagedProcess, alive

pytestmark = pytest.mark.integration


def sleeper(tmp_path: Path, marker: str = "gridline-test-sleeper") -> ManagedProcess:
    return ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "import time,sys; time.sleep(60)", marker],
        pid_file=tmp_path / "sleeper.pid",
        log_path=tmp_path / "sleeper.log",
        marker=marker,
    )


def test_start_is_idempotent_and_stop_leaves_nothing_running(tmp_path: Path) -> None:
    process = sleeper(tmp_path)
    pid = process.start()
    assert process.start() == pid
    assert alive(pid)
    process.stop(timeout=5)
    assert not alive(pid)
    assert not (tmp_path / "sleeper.pid").exists()


def test_a_pid_file_naming_someone_elses_process_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "sleeper.pid").write_text(f"{os.getpid()}\n")  # this test process: not ours
    process = sleeper(tmp_path)
    assert process.pid is None
    process.stop()  # must not signal the test process
    assert alive(os.getpid())


def test_kill_crashes_the_process_like_a_power_cut(tmp_path: Path) -> None:
    process = sleeper(tmp_path)
    pid = process.start()
    process.kill(signal.SIGKILL)
    assert not alive(pid)
    assert not process.alive

"""CPU time of the processes under test, from /proc/<pid>/stat (utime + stime).

PostgreSQL is a tree: the postmaster plus a backend per connection and its helpers. Its
CPU is the postmaster's own time, the time of every live child, and the postmaster's
cutime + cstime (children that exited and were reaped), so a backend that comes and goes
inside a window is still counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str]:
    # Fields after the command name, which may hold spaces: [0] is state (field 3 of proc(5)).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads)."""
    try:
        f = _fields(pid)
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICK


def tree_seconds(parent: int) -> float:
    """A parent, its live children and its reaped children (cutime + cstime)."""
    try:
        f = _fields(parent)
    except OSError:
        return 0.0
    total = sum(int(x) for x in f[11:15])
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            c = _fields(int(entry.name))
        except OSError:
            continue
        if int(c[1]) == parent:
            total += int(c[11]) + int(c[12])
    return total / TICK


def pid_from_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


Meter = Callable[[], float]


def stack_meters(run_dir: Path) -> dict[str, Meter]:
    """The bench stack's processes by name: four services, the broker JVM, PostgreSQL."""
    meters: dict[str, Meter] = {}
    for name in ("intake", "routing", "sla", "notify", "kafka"):
        pid = pid_from_file(run_dir / "pids" / f"{name}.pid")
        if pid is None:
            raise SystemExit(f"bench: no pid file for {name} in {run_dir / 'pids'}")
        meters[name] = lambda pid=pid: cpu_seconds(pid)  # type: ignore[misc]
    postmaster = pid_from_file(run_dir / "pg" / "data" / "postmaster.pid")
    if postmaster is None:
        raise SystemExit("bench: PostgreSQL's postmaster.pid not found")
    meters["postgres"] = lambda: tree_seconds(postmaster)
    return meters


def snapshot(meters: Mapping[str, Meter]) -> dict[str, float]:
    return {name: meter() for name, meter in meters.items()}


def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}

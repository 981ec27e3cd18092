"""Where the time goes at `max`: one more saturated run of Gridline, after the measured
ones, with a sampling profiler (py-spy) on each service, and PostgreSQL's statement
statistics (pg_stat_statements, preloaded by the local stack) and table counters reset at
its start.

Its figures are in no table above: py-spy takes CPU of its own while it samples. What it
gives is the split: per service, the share of its sampled time by package and the
functions that take most; for PostgreSQL, the statements by execution time and the rows
written by table, per report.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from procs import pid_from_file

SERVICES = ("intake", "routing", "sla", "notify")
OWN = {"intake", "routing", "sla", "notify", "common"}  # gridline/<these>/..., as py-spy names them
RATE_HZ = 50
IDLE = "_worker (concurrent/futures/thread.py"  # a thread pool's worker waiting for work
LOOP = "Runner.run (asyncio/runners.py"  # uvloop's C code: polling, sockets, callbacks


@dataclass
class ServiceProfile:
    samples: int = 0
    packages: Counter[str] = field(default_factory=Counter)  # self samples by package
    functions: Counter[str] = field(default_factory=Counter)  # self samples by function


def package_of(frame: str) -> str:
    """`Connection._do_execute (asyncpg/connection.py:2069)` → asyncpg;
    `parse_submission (intake/domain/submission.py:117)` → gridline."""
    if frame.startswith(LOOP):
        return "event loop (uvloop, in C)"
    where = frame.rpartition(" (")[2].rstrip(")")
    top = where.split("/", 1)[0].split(":", 1)[0].removesuffix(".py")
    if top in OWN:
        return "gridline"
    return top or "?"


def function_of(frame: str) -> str:
    """The frame without its line number: `Connection._do_execute (asyncpg/connection.py)`."""
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0]})" if name else frame


def parse_raw(text: str) -> ServiceProfile:
    """py-spy's raw format: one `frame;frame;...;leaf count` line per distinct stack."""
    p = ServiceProfile()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        if leaf.startswith(IDLE):
            continue
        n = int(count)
        p.samples += n
        p.packages[package_of(leaf)] += n
        p.functions[function_of(leaf)] += n
    return p


class Profiler:
    """py-spy on each service for `seconds`, without pausing it (--nonblocking)."""

    def __init__(self, run_dir: Path, py_spy: str | None = None) -> None:
        self.run_dir = run_dir
        self.py_spy = py_spy or shutil.which("py-spy") or str(Path(".venv/bin/py-spy"))
        self.running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        self.problems: dict[str, str] = {}

    def start(self, seconds: float) -> None:
        for name in SERVICES:
            pid = pid_from_file(self.run_dir / "pids" / f"{name}.pid")
            if pid is None:
                self.problems[name] = "no pid file: is the service running?"
                continue
            out = self.run_dir / f"profile-{name}.txt"
            out.unlink(missing_ok=True)
            cmd = [self.py_spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds))),
                   "-r", str(RATE_HZ), "--nonblocking", "-f", "raw", "-o", str(out)]  # fmt: skip
            try:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except OSError as exc:
                self.problems[name] = f"py-spy did not start ({exc})"
                continue
            self.running[name] = (proc, out)

    def collect(self, timeout: float) -> dict[str, ServiceProfile]:
        profiles = {}
        for name, (proc, out) in self.running.items():
            try:
                _, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if out.exists() and out.stat().st_size:
                profiles[name] = parse_raw(out.read_text(encoding="utf-8", errors="replace"))
            else:
                last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
                self.problems[name] = f"py-spy exited {proc.returncode}: {last[0][:200]}"
        return profiles


@dataclass(frozen=True)
class Statement:
    text: str
    calls: int
    rows: int
    exec_ms: float
    wal_bytes: float


async def reset_counters(url: str) -> None:
    """Statement statistics and this database's table counters start from zero."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
            " SELECT pg_stat_statements_reset(); SELECT pg_stat_reset()"
        )
    finally:
        await conn.close()


@dataclass(frozen=True)
class TableWrites:
    table: str
    inserted: int
    updated: int
    hot: int  # heap-only updates: a new row version and no index entries
    deleted: int


async def read_counters(url: str) -> tuple[list[Statement], list[TableWrites]]:
    """Since reset_counters: the statements by execution time, and the rows written per
    table, most written first."""
    conn = await asyncpg.connect(url)
    try:
        statements = await conn.fetch(
            "SELECT regexp_replace(query, '\\s+', ' ', 'g'), calls, rows, total_exec_time,"
            " wal_bytes FROM pg_stat_statements"
            " WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC"
        )
        tables = await conn.fetch(
            "SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_hot_upd,"
            " n_tup_del FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
            " ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC"
        )
    finally:
        await conn.close()
    return (
        [Statement(r[0], r[1], r[2], r[3], float(r[4])) for r in statements],
        [TableWrites(*r) for r in tables],
    )


def _share(n: float, total: float) -> str:
    return f"{100 * n / total:.0f} %" if total else "–"


def _short(sql: str, width: int = 110) -> str:
    text = sql if len(sql) <= width else sql[: width - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def section(
    seconds: float,
    reports: int,
    cpu_ms: dict[str, float],
    profiles: dict[str, ServiceProfile],
    problems: dict[str, str],
    stmts: Sequence[Statement],
    tables: Sequence[TableWrites] = (),
    top: int = 12,
) -> list[str]:
    out = [
        "## Where the time goes at `max` (profiled, in no table above)",
        "",
        f"One more `max` run of Gridline, {seconds:g} s, after the measured ones: py-spy "
        f"(`py-spy record --nonblocking -r {RATE_HZ} -f raw`) on each service, and "
        "PostgreSQL's `pg_stat_statements` and table counters reset at its start and read after its drain. "
        f"{reports} reports accepted. py-spy's own sampling costs CPU, so this run's figures "
        "are not compared with anything; the shares are what it is for.",
        "",
    ]
    if cpu_ms:
        cells = " | ".join(f"{k} {v:.2f}" for k, v in cpu_ms.items() if k != "receiver")
        out += [f"CPU ms per report in this run (profiler running): {cells}.", ""]
    if profiles:
        packages = ["gridline", "event loop (uvloop, in C)"]
        for p in profiles.values():
            packages += [k for k, _ in p.packages.most_common(6) if k not in packages]
        out += [
            "### Each service's sampled time by package (self time of the innermost frame)",
            "",
            "| service | samples | " + " | ".join(packages) + " | other |",
            "|---|---:|" + "---:|" * (len(packages) + 1),
        ]
        for name, p in profiles.items():
            shown = sum(p.packages[k] for k in packages)
            cells = [_share(p.packages[k], p.samples) for k in packages]
            other = _share(p.samples - shown, p.samples)
            out.append(f"| {name} | {p.samples} | " + " | ".join(cells) + f" | {other} |")
        out += [
            "",
            "`gridline` is the services' own code (gridline.intake, .routing, .sla, .notify, "
            ".common); the event loop's share is uvloop's C code, system calls included.",
            "",
            "### Each service's top functions (self time)",
            "",
            "| service | function | share |",
            "|---|---|---:|",
        ]
        for name, p in profiles.items():
            for fn, n in p.functions.most_common(6):
                out.append(f"| {name} | `{fn}` | {_share(n, p.samples)} |")
        out.append("")
    for name, why in problems.items():
        out += [f"- {name}: no profile: {why}"]
    if problems:
        out.append("")
    if stmts:
        total = sum(s.exec_ms for s in stmts)
        per = max(reports, 1)
        out += [
            f"### PostgreSQL's statements by execution time ({len(stmts)} distinct, "
            f"{total / per * 1000:.0f} µs of execution per report in all)",
            "",
            "| statement | calls | rows per call | µs per report | share | WAL bytes per report |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for s in stmts[:top]:
            out.append(
                f"| {_short(s.text)} | {s.calls} | {s.rows / max(s.calls, 1):.0f} | "
                f"{s.exec_ms / per * 1000:.1f} | {_share(s.exec_ms, total)} | "
                f"{s.wal_bytes / per:.0f} |"
            )
        out += [
            "",
            "Execution time is wall time inside the server (waits on locks and I/O "
            "included), not CPU; it ranks the statements, the CPU table ranks the processes.",
            "",
        ]
    if tables:
        per = max(reports, 1)
        out += [
            "### Rows written per report, by table (the same run)",
            "",
            "| table | inserted | updated | of which HOT | deleted |",
            "|---|---:|---:|---:|---:|",
        ]
        for t in tables[:top]:
            hot = _share(t.hot, t.updated) if t.updated else "–"
            out.append(
                f"| {t.table} | {t.inserted / per:.2f} | {t.updated / per:.2f} | {hot} | "
                f"{t.deleted / per:.2f} |"
            )
        out += [
            "",
            "A HOT (heap-only) update writes a new row version on the same page and no index "
            "entry; any other update writes one in every index of the table.",
            "",
        ]
    return out

"""docs/benchmarks.md is written in sections: each bench script replaces its own section
(between its start and end markers) and leaves the rest as written."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The short commit measured, marked when tracked files differ from it (the page the
    bench is writing does not count: its earlier sections are written in the same run)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=REPO, check=False
        ).stdout.strip()

    dirty = git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md"
    )
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")


def stamp() -> str:
    """`commit abc1234, 2026-11-24 05:00 UTC`: where and when a section was measured."""
    return f"commit {commit()}, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"


def replace_section(page: Path, start: str, end: str, text: str) -> None:
    """Put `text` (which begins with `start` and ends with `end`) in place of the page's
    section between those markers, or at the page's end if it has none."""
    old = page.read_text(encoding="utf-8") if page.exists() else ""
    before, after = old, ""
    if start in old and end in old:
        before, rest = old.split(start, 1)
        after = rest.split(end, 1)[1].strip("\n")
    parts = [before.rstrip("\n"), text.strip("\n"), after]
    page.write_text("\n\n".join(p for p in parts if p) + "\n", encoding="utf-8")

"""Where the local stack keeps its state, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Makefile").exists() and (candidate / "pyproject.toml").exists():
            return candidate
    return here


@dataclass(frozen=True)
class Paths:
    run: Path
    cache: Path

    @classmethod
    def from_env(cls) -> Paths:
        root = repo_root()
        run = Path(os.environ.get("GRIDLINE_RUN_DIR", root / ".run")).resolve()
        cache = Path(os.environ.get("GRIDLINE_CACHE_DIR", root / ".run" / "cache")).resolve()
        return cls(run, cache)

    @property
    def logs(self) -> Path:
        return self.run / "logs"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"


def port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"gridline-dev: {name} must be a port number, got {value!r}")
    return int(value)

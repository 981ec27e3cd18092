#!/usr/bin/env bash
# Creates .venv with every workspace package from uv.lock. Installs uv first if missing
# (into .cache/uv, from the package index, with the machine's python3).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
# Use the machine's Python (3.11+); never download an interpreter.
export UV_PYTHON_DOWNLOADS=never
export UV_PYTHON=${UV_PYTHON:-python3}
uv=$(command -v uv || true)
if [ -z "$uv" ]; then
  uv=.cache/uv/bin/uv
  if [ ! -x "$uv" ]; then
    echo "installing uv $UV_VERSION into .cache/uv"
    python3 -m venv .cache/uv
    .cache/uv/bin/pip install --quiet "uv==$UV_VERSION"
  fi
fi
"$uv" sync --frozen --all-packages

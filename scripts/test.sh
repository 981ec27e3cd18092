#!/usr/bin/env bash
# make test: lint and type-check, then start a private Kafka and PostgreSQL on test ports
# (never the ones make up uses), run the whole suite against them, and stop them again.
set -euo pipefail
cd "$(dirname "$0")/.."

export GRIDLINE_RUN_DIR="$PWD/.run/test"
export GRIDLINE_KAFKA_PORT=${TEST_KAFKA_PORT:-19092}
export GRIDLINE_KAFKA_CONTROLLER_PORT=${TEST_KAFKA_CONTROLLER_PORT:-19093}
export GRIDLINE_PG_PORT=${TEST_PG_PORT:-25433}
export GRIDLINE_KAFKA_BOOTSTRAP="127.0.0.1:$GRIDLINE_KAFKA_PORT"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$GRIDLINE_PG_PORT/gridline"
export GRIDLINE_PG_EXTERNAL=0  # always a private cluster, whatever DATABASE_URL make up uses
DEV=.venv/bin/gridline-dev

if [ -z "${SKIP_LINT:-}" ]; then
echo "== lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
scripts/speccheck.sh
fi

echo "== fresh Kafka and PostgreSQL for the tests ($GRIDLINE_RUN_DIR)"
"$DEV" clean >/dev/null 2>&1 || true
trap '"$DEV" down || true' EXIT
"$DEV" infra up
.venv/bin/gridline topics ensure

echo "== tests"
.venv/bin/pytest "$@"

#!/usr/bin/env bash
# make bench: a private stack on bench ports, measured end to end next to Prometheus
# Alertmanager (the peer), the floors (aiokafka, asyncpg, bare FastAPI) and intake alone
# against a bare FastAPI endpoint, all in one run; results go to docs/benchmarks.md (or bench/run.py's --out).
# Arguments go to bench/run.py, e.g. scripts/bench.sh --rates 100,500 --seconds 5 --skip peer
set -euo pipefail
cd "$(dirname "$0")/.."

export GRIDLINE_RUN_DIR="$PWD/.run/bench"
export GRIDLINE_KAFKA_PORT=29092 GRIDLINE_KAFKA_CONTROLLER_PORT=29093 GRIDLINE_PG_PORT=25434
export GRIDLINE_KAFKA_BOOTSTRAP="127.0.0.1:$GRIDLINE_KAFKA_PORT"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$GRIDLINE_PG_PORT/gridline"
export GRIDLINE_PG_EXTERNAL=0  # always a private cluster, whatever DATABASE_URL make up uses
export INTAKE_PORT=28000 ROUTING_PORT=28001 SLA_PORT=28002 NOTIFY_PORT=28003
export GRIDLINE_ROUTING_URL="http://127.0.0.1:$ROUTING_PORT"
BARE_PORT=28010 RECEIVER_PORT=28020 ALERTMANAGER_PORT=28030 FLOOR_PORT=28040
GL=.venv/bin/gridline DEV=.venv/bin/gridline-dev GO=/usr/local/go/bin/go
CREDS="$GRIDLINE_RUN_DIR/credentials.json" CITY="$GRIDLINE_RUN_DIR/city.geojson"
LOADGEN="$GRIDLINE_RUN_DIR/loadgen"

apt_install() {  # Debian packages the bench needs: wrk, prometheus-alertmanager
  echo "installing $1 (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "$1" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$1" >/dev/null; }
}
command -v wrk >/dev/null || apt_install wrk
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null \
  || apt_install prometheus-alertmanager
[ -x "$GO" ] || GO=$(command -v go) || { echo "bench: Go (1.26) is needed for bench/loadgen"; exit 1; }

"$DEV" clean >/dev/null 2>&1 || true
bare_pid=""
cleanup() {
  [ -n "$bare_pid" ] && kill "$bare_pid" 2>/dev/null || true
  "$DEV" down || true
}
trap cleanup EXIT

mkdir -p "$GRIDLINE_RUN_DIR/logs"
# The load generator and webhook receiver: standard library only, nothing is downloaded.
(cd bench/loadgen && GOTOOLCHAIN=local GOPROXY=off "$GO" build -o "$LOADGEN" .)
"$GL" city generate --seed 1 --out "$CITY"
"$GL" credentials init --city "$CITY" --catalogue config/catalogue.yaml --out "$CREDS" --force
{
  "$GL" credentials env --credentials "$CREDS"
  # notify signs every notification for the bench's receiver (bench/run.py starts it).
  echo "NOTIFY_WEBHOOK_URLS=http://127.0.0.1:$RECEIVER_PORT/gridline"
} > "$GRIDLINE_RUN_DIR/services.env"
"$DEV" infra up
"$GL" topics ensure
"$DEV" services up
"$GL" jurisdiction load "$CITY" --credentials "$CREDS"
# Tagging and duplicate detection stay on (every group commit looks up earlier reports),
# with a 5 cm radius and a 5 s window: the bench's reports lie at random points that come
# round again only after the window, so each opens its own work order (with 1 m, two of
# 36,000 random points now and then fell within it, rightly merged, and no notification).
.venv/bin/python - "$GRIDLINE_RUN_DIR/catalogue.yaml" <<'PY'
import sys, yaml
doc = yaml.safe_load(open("config/catalogue.yaml", encoding="utf-8"))
doc.setdefault("tagging", {}).update(duplicate_radius_m=0.05, duplicate_window_hours=5 / 3600)
yaml.safe_dump(doc, open(sys.argv[1], "w", encoding="utf-8"), allow_unicode=True)
PY
"$GL" catalogue load "$GRIDLINE_RUN_DIR/catalogue.yaml" --credentials "$CREDS"

.venv/bin/python -m uvicorn --app-dir bench bare_app:app --host 127.0.0.1 --port $BARE_PORT \
  --loop uvloop --http httptools --no-access-log --log-level warning \
  > "$GRIDLINE_RUN_DIR/logs/bare.log" 2>&1 &
bare_pid=$!

for _ in $(seq 50); do curl -sf "http://127.0.0.1:$BARE_PORT/docs" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$BARE_PORT/docs" >/dev/null || { echo "the bare app did not start"; exit 1; }
# intake learns the catalogue from Kafka: wait until it lists services.
for _ in $(seq 100); do
  [ "$(curl -sf "http://127.0.0.1:$INTAKE_PORT/open311/v2/services.json" | head -c 2)" = '[{' ] && break; sleep 0.2
done

# The page every section goes to: bench/run.py's --out (docs/benchmarks.md unless given), so
# that a quick trial with --out leaves the committed page alone.
OUT=docs/benchmarks.md
prev=
for a in "$@"; do
  [ "$prev" = --out ] && OUT=$a
  case $a in --out=*) OUT=${a#--out=} ;; esac
  prev=$a
done

.venv/bin/python bench/run.py --run-dir "$GRIDLINE_RUN_DIR" \
  --intake "http://127.0.0.1:$INTAKE_PORT" --bare "http://127.0.0.1:$BARE_PORT" \
  --receiver-port $RECEIVER_PORT --alertmanager-port $ALERTMANAGER_PORT --floor-port $FLOOR_PORT \
  --loadgen "$LOADGEN" \
  --command "make bench${*:+ BENCH_ARGS=\"$*\"}" "$@"
# Routing alone (point-to-grid look-ups in a 7,151-grid city, rule evaluations): its own
# section of the page run.py just wrote.
.venv/bin/python bench/routing_micro.py --append "$OUT" \
  --command "make bench${*:+ BENCH_ARGS=\"$*\"}"
# sla's reads with ten million resolved orders stored, through the running sla's API (its
# own section; several minutes to load them; BENCH_READS_ORDERS=0 leaves it out).
if [ "${BENCH_READS_ORDERS:-10000000}" != 0 ]; then
  .venv/bin/python bench/reads.py --dsn "$DATABASE_URL" --sla "http://127.0.0.1:$SLA_PORT" \
    --orders "${BENCH_READS_ORDERS:-10000000}" --append "$OUT" \
    --command "make bench${*:+ BENCH_ARGS=\"$*\"}"
fi
# sla's deadline scheduler alone (a million open deadlines, a burst due at 13,333/s): the
# stack's services stopped first, so that nothing else takes the CPU or consumes its
# breaches; its own section too (--skip deadlines leaves it out).
"$DEV" services down
.venv/bin/python bench/deadlines.py --append "$OUT" \
  --command "make bench${*:+ BENCH_ARGS=\"$*\"}" "$@"

#!/usr/bin/env bash
# make bench: a private stack on bench ports, intake measured next to a bare FastAPI
# endpoint in the same run; results go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

export GRIDLINE_RUN_DIR="$PWD/.run/bench"
export GRIDLINE_KAFKA_PORT=29092 GRIDLINE_KAFKA_CONTROLLER_PORT=29093 GRIDLINE_PG_PORT=55434
export GRIDLINE_KAFKA_BOOTSTRAP="127.0.0.1:$GRIDLINE_KAFKA_PORT"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$GRIDLINE_PG_PORT/gridline"
export GRIDLINE_PG_EXTERNAL=0  # always a private cluster, whatever DATABASE_URL make up uses
export INTAKE_PORT=28000 ROUTING_PORT=28001 SLA_PORT=28002 NOTIFY_PORT=28003
export GRIDLINE_ROUTING_URL="http://127.0.0.1:$ROUTING_PORT"
BARE_PORT=28010
GL=.venv/bin/gridline DEV=.venv/bin/gridline-dev
CREDS="$GRIDLINE_RUN_DIR/credentials.json" CITY="$GRIDLINE_RUN_DIR/city.geojson"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package), the load generator"
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
"$DEV" clean >/dev/null 2>&1 || true
bare_pid=""
cleanup() {
  [ -n "$bare_pid" ] && kill "$bare_pid" 2>/dev/null || true
  "$DEV" down || true
}
trap cleanup EXIT

mkdir -p "$GRIDLINE_RUN_DIR/logs"
"$GL" city generate --seed 1 --out "$CITY"
"$GL" credentials init --city "$CITY" --catalogue config/catalogue.yaml --out "$CREDS" --force
"$GL" credentials env --credentials "$CREDS" > "$GRIDLINE_RUN_DIR/services.env"
"$DEV" infra up
"$GL" topics ensure
"$DEV" services up
"$GL" jurisdiction load "$CITY" --credentials "$CREDS"
"$GL" catalogue load config/catalogue.yaml --credentials "$CREDS"

.venv/bin/python -m uvicorn --app-dir bench bare_app:app --host 127.0.0.1 --port $BARE_PORT \
  --no-access-log --log-level warning > "$GRIDLINE_RUN_DIR/logs/bare.log" 2>&1 &
bare_pid=$!

read -r LAT LON CODE < <(.venv/bin/python - "$CITY" <<'PY'
import json, sys
from shapely.geometry import shape
city = json.load(open(sys.argv[1]))
f = next(f for f in city["features"] if f["properties"]["grid_kind"] == "comprehensive")
p = shape(f["geometry"]).representative_point()
print(p.y, p.x, "exposed-garbage")
PY
)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$BARE_PORT/docs" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$BARE_PORT/docs" >/dev/null || { echo "the bare app did not start"; exit 1; }
# intake learns the catalogue from Kafka: wait until it lists services.
for _ in $(seq 100); do
  [ "$(curl -sf "http://127.0.0.1:$INTAKE_PORT/open311/v2/services.json" | head -c 2)" = '[{' ] && break; sleep 0.2
done

.venv/bin/python bench/intake_bench.py --intake "http://127.0.0.1:$INTAKE_PORT" --bare "http://127.0.0.1:$BARE_PORT" \
  --api-key "$(.venv/bin/python -c "import json;print(json.load(open('$CREDS'))['open311_api_key'])")" \
  --service-code "$CODE" --lat "$LAT" --lon "$LON" --command "make bench" "$@"

#!/usr/bin/env bash
# The stack's shared clock: simulated time = epoch + (now - epoch) x GRIDLINE_CLOCK_SPEED.
# Epoch and speed are fixed when .run is first used, so deadlines stored in PostgreSQL stay
# meaningful across make down / make up. Prints the clock's lines for services.env.
set -euo pipefail
run_dir=$1
mkdir -p "$run_dir"
[ -f "$run_dir/clock_epoch" ] || date +%s > "$run_dir/clock_epoch"
[ -f "$run_dir/clock_speed" ] || echo "${GRIDLINE_CLOCK_SPEED:-1}" > "$run_dir/clock_speed"
recorded=$(cat "$run_dir/clock_speed")
if [ -n "${GRIDLINE_CLOCK_SPEED:-}" ] && [ "$GRIDLINE_CLOCK_SPEED" != "$recorded" ]; then
  echo "GRIDLINE_CLOCK_SPEED=$GRIDLINE_CLOCK_SPEED, but the data in $run_dir runs at speed $recorded." >&2
  echo "Run 'make clean' first to start a new simulation, or leave GRIDLINE_CLOCK_SPEED unset." >&2
  exit 1
fi
echo "GRIDLINE_CLOCK_SPEED=$recorded"
echo "GRIDLINE_CLOCK_EPOCH=$(cat "$run_dir/clock_epoch")"

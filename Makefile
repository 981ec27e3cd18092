# Gridline: `make up` runs the whole stack here, `make test` runs the whole suite.
# Both install what is missing (uv, the virtual environment, Kafka's jars, PostgreSQL).

SHELL := /bin/bash
.DEFAULT_GOAL := help

export GRIDLINE_RUN_DIR ?= $(CURDIR)/.run
export GRIDLINE_CACHE_DIR ?= $(CURDIR)/.run/cache
export GRIDLINE_KAFKA_PORT ?= 9092
export GRIDLINE_KAFKA_CONTROLLER_PORT ?= 9093
# Below the ephemeral port range (32768-60999): an outgoing connection never holds it.
export GRIDLINE_PG_PORT ?= 25432
export GRIDLINE_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(GRIDLINE_KAFKA_PORT)
ifdef DATABASE_URL
export GRIDLINE_PG_EXTERNAL := 1
endif
export DATABASE_URL ?= postgresql://postgres@127.0.0.1:$(GRIDLINE_PG_PORT)/gridline

VENV := $(CURDIR)/.venv
GL := $(VENV)/bin/gridline
DEV := $(VENV)/bin/gridline-dev
CATALOGUE ?= config/catalogue.yaml
RULES ?= config/rules.yaml
CITY := $(GRIDLINE_RUN_DIR)/city.geojson
CREDS := $(GRIDLINE_RUN_DIR)/credentials.json

.PHONY: help venv up down clean test lint bench docs prometheus

help:
	@echo "make up     start Kafka, PostgreSQL and the four services; load the demo city"
	@echo "make up PROMETHEUS=1   the same, and Prometheus with Gridline's rules on 127.0.0.1:9090"
	@echo "make prometheus        start (or reload) only that Prometheus, beside a running stack"
	@echo "make down   stop everything make up started (data stays)"
	@echo "make clean  stop and delete all local data (.run)"
	@echo "make test   lint, type-check and run every test against a real Kafka and PostgreSQL"
	@echo "make bench  run the benchmarks and write docs/benchmarks.md (quick: BENCH_ARGS=\"--rates 100 --seconds 5 --skip peer,floors,intake\")"

venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock libs/common/pyproject.toml tools/devstack/pyproject.toml tools/operator/pyproject.toml $(wildcard services/*/pyproject.toml)
	scripts/venv.sh
	@touch $@

up: venv
	@mkdir -p $(GRIDLINE_RUN_DIR)
	@test -f $(CITY) || $(GL) city generate --seed 1 --out $(CITY)
	$(GL) credentials init --city $(CITY) --catalogue $(CATALOGUE) --out $(CREDS)
	@scripts/clock.sh $(GRIDLINE_RUN_DIR) > $(GRIDLINE_RUN_DIR)/clock.env
	@{ $(GL) credentials env --credentials $(CREDS); cat $(GRIDLINE_RUN_DIR)/clock.env; } > $(GRIDLINE_RUN_DIR)/services.env
	$(DEV) infra up
	$(GL) topics ensure
	$(DEV) services up
	GRIDLINE_ROUTING_URL=http://127.0.0.1:$${ROUTING_PORT:-8001} $(GL) jurisdiction load --if-none $(CITY) --credentials $(CREDS)
	GRIDLINE_ROUTING_URL=http://127.0.0.1:$${ROUTING_PORT:-8001} $(GL) catalogue load --if-none $(CATALOGUE) --rules $(RULES) --credentials $(CREDS)
	GRIDLINE_ROUTING_URL=http://127.0.0.1:$${ROUTING_PORT:-8001} $(GL) handler-keys load --skip-unknown --credentials $(CREDS)
	GRIDLINE_INTAKE_URL=http://127.0.0.1:$${INTAKE_PORT:-8000} $(GL) partners demo --credentials $(CREDS)
	@if [ -n "$(PROMETHEUS)" ]; then $(DEV) prometheus up; fi
	@$(DEV) status
	@echo "credentials: $(CREDS)"
	@echo "Open311:     http://127.0.0.1:$${INTAKE_PORT:-8000}/open311/v2/discovery.json"

# Prometheus (Debian's package, installed when missing) scraping the stack with
# deploy/prometheus's rules; Grafana is not in Debian, see README "What runs where".
prometheus: venv
	$(DEV) prometheus up

down:
	@if [ -x $(DEV) ]; then $(DEV) down; else echo "nothing to stop (no virtual environment)"; fi

clean:
	@if [ -x $(DEV) ]; then $(DEV) clean; fi
	rm -rf $(GRIDLINE_RUN_DIR)

test: venv
	scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	scripts/speccheck.sh

docs: venv
	$(GL) docs asyncapi --out docs/asyncapi.yaml

bench: venv
	scripts/bench.sh $(BENCH_ARGS)

"""Starts the four services once for the e2e tests, on a clock 1800x faster than real."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gridline.common.policy.catalogue import Catalogue, load_catalogue_text
from gridline.operator.citygen import generate_city
from gridline.operator.cli import main as gridline

from . import stack as stack_module
from .receiver import Receiver
from .stack import SERVICES, Stack, pipeline_state, write_json

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "config" / "catalogue.yaml"
CLOCK_SPEED = 1800.0
KAFKA_OUTAGE_GRACE_S = 8.0


# The conformance check reads back every event the tests before it made, so it comes after
# them. The bursts of 2,000 reports each leave thousands of open orders on the shared stack,
# and on a clock 1800x faster than real their deadlines and warnings keep sla and notify busy
# for minutes; run them last, so that no other test waits behind that backlog.
LATER = ("test_events_conform.py", "test_crash.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LATER.index(name) + 1 if name in LATER else 0

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue_text(CATALOGUE.read_text(encoding="utf-8"))


def no_merging(workdir: Path) -> Path:
    """The demo catalogue with duplicate merging off: tests post many reports at one grid's
    point and expect an order each; test_duplicates switches merging on for itself."""
    doc = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    doc["tagging"]["duplicate_radius_m"] = 0
    path = workdir / "catalogue-no-merging.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver(refuse_first=3)  # the first deliveries fail: notify must retry them
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    city = generate_city(7)
    write_json(workdir / "city.geojson", city)
    creds_path = workdir / "credentials.json"
    assert (
        gridline(
            [
                "credentials",
                "init",
                "--city",
                str(workdir / "city.geojson"),
                "--catalogue",
                str(CATALOGUE),
                "--out",
                str(creds_path),
            ]
        )
        == 0
    )
    creds = json.loads(creds_path.read_text())
    env = {
        **os.environ,
        "GRIDLINE_CLOCK_SPEED": str(CLOCK_SPEED),
        "GRIDLINE_CLOCK_EPOCH": str(time.time()),
        "GRIDLINE_ADMIN_KEY": creds["admin_key"],
        "INTAKE_OPEN311_API_KEYS": creds["open311_api_key"],
        "GRIDLINE_PARTNER_SECRET_KEY": creds["partner_secret_key"],
        "NOTIFY_WEBHOOK_URLS": receiver.url,
        "NOTIFY_WEBHOOK_SECRET": creds["webhook_secret"],
        "NOTIFY_BACKOFF_BASE": "0.2",
        "NOTIFY_BACKOFF_MAX": "1",
        "SLA_METRICS_REFRESH": "0.5",
        "SLA_SCAN_INTERVAL": "0.2",
        # Wall-clock seconds: short, so the broker test sees writes refused within it.
        "INTAKE_KAFKA_OUTAGE_GRACE_S": str(KAFKA_OUTAGE_GRACE_S),
    }
    s = Stack(workdir, env, creds, city)
    # The operator CLI's requests from this process are noise in a failure's output.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stack_module.diagnose = lambda: pipeline_state(s)
    try:
        for service in SERVICES:
            s.start(service)
        s.wait_ready()
        s.load_policy(no_merging(workdir))
        s.register_demo_partner()
        yield s
    finally:
        stack_module.diagnose = None
        s.stop()

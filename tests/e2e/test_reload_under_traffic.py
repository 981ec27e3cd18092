"""Reloading the jurisdiction and the catalogue while reports flow (issue: routing, complete):
nothing is lost, nothing is stranded, and only new orders change. Every report of a steady
stream gets exactly one work order; each order's due time follows the policy it was opened
under (the old grid limit before the switch, the new one after, both seen); an open order
of a category the new catalogue removed still escalates, on its snapshot's limits, and new
reports of that category are refused."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
import time
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier
from gridline.operator.cli import main as gridline

from .conftest import no_merging
from .stack import Stack, wait_until, work_orders_per_report
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e


def orders(report_ids: list[str]) -> list[Any]:
    async def read() -> list[Any]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            return list(
                await conn.fetch(
                    "SELECT report_id, category, tier, policy_version, due_at - assigned_at AS limit"
                    " FROM routing.work_orders WHERE report_id = ANY($1::text[])",
                    report_ids,
                )
            )
        finally:
            await conn.close()

    return asyncio.run(read())


def test_reloading_while_reports_flow_loses_nothing_strands_nothing_changes_only_new_orders(
    stack: Stack, catalogue: Catalogue
) -> None:
    creds = str(stack.workdir / "credentials.json")
    os.environ["GRIDLINE_ROUTING_URL"] = stack.url("routing")
    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    # The two longest grid limits (24 h and 16 h in the demo: 48 s and 32 s on the 1800x
    # clock), so that no order of the test escalates by timeout while it looks.
    at_grid = sorted(
        (c for c in catalogue.categories if c.entry_tier is Tier.GRID),
        key=lambda c: catalogue.time_limit(c.code, Tier.GRID),
    )
    steady, removed = at_grid[-1], at_grid[-2]
    old_limit = catalogue.time_limit(steady.code, Tier.GRID)

    # An order of the category the new catalogue drops, opened before the reload.
    with httpx.Client(timeout=15) as client:
        r = stack.post_report(client, service_code=removed.code, lat=lat, long=lon)
        assert r.status_code == 200, r.text
        doomed = r.json()[0]["service_request_id"]
        wait_until(lambda: stack.request(client, doomed)["expected_datetime"], timeout=60)

    # The new policy: the steady category's grid limit doubled, the other category gone, and
    # the jurisdiction reloaded as a new version (a grid renamed).
    doc = yaml.safe_load(no_merging(stack.workdir).read_text(encoding="utf-8"))
    doc["version"] = f"{doc['version']}-reloaded"
    doc["categories"] = [c for c in doc["categories"] if c["code"] != removed.code]
    for c in doc["categories"]:
        if c["code"] == steady.code:
            c["time_limits_hours"]["grid"] *= 2
    doc["sensors"] = [s for s in doc.get("sensors", []) if s["category"] != removed.code]
    new_catalogue = stack.workdir / "catalogue-reloaded.yaml"
    new_catalogue.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    city = copy.deepcopy(stack.city)
    city["features"][0]["properties"]["grid_name"] += "（更名）"
    new_city = stack.workdir / "city-reloaded.geojson"
    new_city.write_text(json.dumps(city, ensure_ascii=False), encoding="utf-8")

    accepted: list[str] = []
    refused: list[str] = []

    def stream(seconds: float = 6.0, rate: float = 40.0) -> None:
        with httpx.Client(timeout=15) as client:
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < seconds:
                r = stack.post_report(
                    client, service_code=steady.code, lat=lat, long=lon, description=f"flow {i}"
                )
                if r.status_code == 200:
                    accepted.append(r.json()[0]["service_request_id"])
                else:
                    refused.append(r.text)
                i += 1
                time.sleep(max(0.0, started + i / rate - time.monotonic()))

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        time.sleep(2.0)
        assert gridline(["jurisdiction", "load", str(new_city), "--credentials", creds]) == 0
        assert gridline(["catalogue", "load", str(new_catalogue), "--credentials", creds]) == 0
    finally:
        sender.join()
    try:
        assert not refused, refused[:3]
        assert len(accepted) > 150
        # Lost nothing: one work order for every accepted report.
        wait_until(
            lambda: (
                len(work_orders_per_report(os.environ["DATABASE_URL"], accepted)) == len(accepted)
            ),
            timeout=90,
            what="a work order for every report of the stream",
        )
        assert set(work_orders_per_report(os.environ["DATABASE_URL"], accepted).values()) == {1}
        # Only new orders changed: each keeps the limit of the policy it was opened under.
        rows = orders(accepted)
        by_version: dict[str, set[timedelta]] = {}
        for row in rows:
            by_version.setdefault(row["policy_version"], set()).add(row["limit"])
        assert len(by_version) >= 2, "the stream straddled the reload"
        assert set().union(*by_version.values()) == {old_limit, old_limit * 2}
        assert all(len(limits) == 1 for limits in by_version.values()), by_version
        # Nothing stranded: the dropped category's order escalates on its snapshot's limits,
        # and that category takes no new reports.
        with httpx.Client(timeout=15) as client:
            up = client.post(
                f"{stack.url('routing')}/v1/workorders/{doomed}/escalate",
                headers={"authorization": f"Bearer {grid_key}"},
            )
            assert up.status_code == 200, up.text
            assert up.json()["tier"] == "community"
            [row] = orders([doomed])
            assert row["limit"] == catalogue.time_limit(removed.code, Tier.COMMUNITY)
            gone = stack.post_report(client, service_code=removed.code, lat=lat, long=lon)
            assert gone.status_code == 404, gone.text
    finally:  # the session's city and catalogue back
        stack.load_policy(no_merging(stack.workdir))

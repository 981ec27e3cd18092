"""Duplicates (并单) on the running stack: two reports of one category 50 m apart make one
work order, one assignment notification, and both Open311 requests show the same agency
and the merged count. Merging is switched on for this test (the session runs without it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from shapely.geometry import shape

from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.settings import PostgresSettings

from .receiver import Receiver
from .stack import Stack, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "config" / "catalogue.yaml"
CODE = "streetlight-out"  # a category no other e2e test reports
METRE = 1 / 111_195.0  # one metre north in degrees of latitude


def use_catalogue(stack: Stack, client: httpx.Client, path: Path) -> None:
    """Load a catalogue and wait until intake has taken it up (discovery's changeset)."""
    stack.load_policy(path)
    version = load_catalogue_text(path.read_text(encoding="utf-8")).version_hash

    def intake_has_it() -> bool:
        discovery = client.get(f"{stack.url('intake')}/open311/v2/discovery.json").json()
        return bool(discovery.get("changeset") == version)

    wait_until(intake_has_it, what="intake to follow the new catalogue")


def quiet_grid(stack: Stack) -> tuple[float, float]:
    """A point in a comprehensive grid other tests do not report in."""
    used = set(stack.credentials["handler_units"].values())
    feature = next(
        f
        for f in reversed(stack.city["features"])
        if f["properties"]["grid_kind"] == "comprehensive"
        and f["properties"]["grid_id"] not in used
    )
    point = shape(feature["geometry"]).representative_point()
    return point.y, point.x


async def orders_of(database_url: str, report_ids: list[str]) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT w.id, w.report_id, (SELECT count(*) FROM routing.merged_reports m"
            " WHERE m.work_order_id = w.id) AS merged FROM routing.work_orders w"
            " WHERE w.report_id = ANY($1::text[])",
            report_ids,
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def test_two_reports_50_m_apart_share_one_work_order_and_show_the_count(
    stack: Stack, receiver: Receiver, pg_settings: PostgresSettings
) -> None:
    session_catalogue = stack.workdir / "catalogue-no-merging.yaml"
    lat, lon = quiet_grid(stack)
    with httpx.Client(timeout=10) as client:
        use_catalogue(stack, client, CATALOGUE)
        try:
            first = stack.post_report(
                client, service_code=CODE, lat=lat, long=lon, description="路灯不亮"
            )
            assert first.status_code == 200, first.text
            second = stack.post_report(
                client,
                service_code=CODE,
                lat=lat + 50 * METRE,
                long=lon,
                description="The streetlight is out, elderly people walk here at night",
            )
            assert second.status_code == 200, second.text
        finally:
            use_catalogue(stack, client, session_catalogue)
        a = first.json()[0]["service_request_id"]
        b = second.json()[0]["service_request_id"]

        views = wait_until(
            lambda: (
                (v := [stack.request(client, a), stack.request(client, b)])
                and all(x["expected_datetime"] for x in v)
                and all("2 reports merged" in (x["status_notes"] or "") for x in v)
                and v
            ),
            what="both requests to show the assigned order and the merged count",
        )
        assert views[0]["agency_responsible"] == views[1]["agency_responsible"]
        assert views[0]["status_notes"] == views[1]["status_notes"]
        assert views[0]["expected_datetime"] == views[1]["expected_datetime"]

        orders = asyncio.run(orders_of(pg_settings.url, [a, b]))
        assert orders == [{"id": a, "report_id": a, "merged": 1}]
        wait_until(
            lambda: receiver.notification_ids("workorder.assigned").get(a),
            what="the assignment to be notified",
        )
        assigned = receiver.notification_ids("workorder.assigned")
        assert len(assigned[a]) == 1
        assert b not in assigned

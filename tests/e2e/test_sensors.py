"""A sensor's threshold breach through the running stack: it opens one urgent work order at
the grid (due in the severity's share of the category's limit), further breaches join it
while it is open, and once it is resolved the next breach opens a new one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from gridline.common.clock import ScaledClock
from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier

from .receiver import Receiver
from .stack import Stack, wait_until
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e


def stack_now(stack: Stack) -> datetime:
    """The stack's clock (it runs faster than the wall clock): a reading is taken now."""
    return ScaledClock(
        float(stack.env["GRIDLINE_CLOCK_SPEED"]), float(stack.env["GRIDLINE_CLOCK_EPOCH"])
    ).now()


def test_a_breach_opens_an_urgent_order_at_the_grid_once_per_open_order(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    metric = catalogue.sensor_metrics["crowd_density"]
    category = catalogue.category(metric.category)
    assert category.entry_tier is Tier.GRID
    admin = {"X-Api-Key": stack.credentials["admin_key"]}
    url = f"{stack.url('intake')}/v1/sensor-events"

    def reading(value: float) -> dict[str, Any]:
        return {
            "sensor_id": "e2e-crowd-1",
            "metric": metric.code,
            "value": value,
            "observed_at": stack_now(stack).isoformat(),
            "lat": lat,
            "long": lon,
        }

    with httpx.Client(timeout=10) as client:
        calm = client.post(url, json=reading(metric.threshold - 1), headers=admin)
        assert calm.status_code == 200 and calm.json()["breach"] is False, calm.text
        first = client.post(url, json=reading(metric.threshold + 1.5), headers=admin)
        assert first.status_code == 201, first.text
        order = first.json()["work_order_id"]

        assigned = wait_until(
            lambda: next(
                (
                    d.json["event"]["data"]
                    for d in receiver.for_order(order)
                    if d.json["type"] == "workorder.assigned"
                ),
                None,
            ),
            what="the sensor's order to be assigned",
        )
        a = assigned["assignment"]
        assert (assigned["source"], assigned["grid_id"], a["tier"]) == ("sensor", grid_unit, "grid")
        due_in = datetime.fromisoformat(a["due_at"]) - datetime.fromisoformat(a["assigned_at"])
        factor = catalogue.tagging.factor(metric.severity)
        assert factor < 1
        assert due_in == catalogue.time_limit(category.code, Tier.GRID) * factor

        again = client.post(url, json=reading(metric.threshold + 2), headers=admin)
        assert again.status_code == 200, again.text
        assert (again.json()["deduplicated"], again.json()["work_order_id"]) == (True, order)

        # The street's handler, or the department's once the order has climbed past the
        # street (its limits are seconds of real time at the stack's speed).
        for _ in range(3):  # it may climb between the look and the resolve
            _, key = stack.handler_key("street")
            holder = client.get(
                f"{stack.url('routing')}/v1/workorders/{order}",
                headers={"Authorization": f"Bearer {stack.credentials['admin_key']}"},
            ).json()
            if holder["tier"] == "department":
                key = stack.issue_handler_keys(client, [holder["unit_id"]])[holder["unit_id"]]
            resolved = client.post(
                f"{stack.url('routing')}/v1/workorders/{order}/resolve",
                json={"note": "crowd dispersed"},
                headers={"Authorization": f"Bearer {key}"},
            )
            if resolved.status_code != 403:
                break
        assert resolved.status_code == 200, resolved.text
        wait_until(
            lambda: (
                client.get(f"{stack.url('intake')}/v1/reports/{order}", headers=admin).json()[
                    "status"
                ]
                == "closed"
            ),
            what="intake to see the order resolved",
        )
        later = client.post(url, json=reading(metric.threshold + 1), headers=admin)
        assert later.status_code == 201, later.text
        assert later.json()["work_order_id"] != order

"""Deadline warnings on the running stack (1800x clock): sla fires a yellow and a red
warning for an assignment nobody acts on, and notify delivers both as `workorder.warning`
webhooks, the red one naming the holder's supervisor (the grid's community); at the
department tier the red one names the district.

Needs sla to fire DeadlineWarning (issue 10, sla's deadlines): it fails until that lands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier

from .receiver import Receiver
from .stack import Stack, wait_until
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def deliveries(receiver: Receiver, order: str) -> list[dict[str, Any]]:
    return [d.json for d in receiver.for_order(order)]


def warning(receiver: Receiver, order: str, level: str, seq: int) -> dict[str, Any] | None:
    return next(
        (
            b
            for b in deliveries(receiver, order)
            if b["type"] == "workorder.warning"
            and b["level"] == level
            and b["event"]["data"]["assignment_seq"] == seq
        ),
        None,
    )


def test_yellow_then_red_warnings_reach_the_holder_and_the_red_its_supervisor(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    grid_unit, grid_key = stack.handler_key("grid")
    units = stack.credentials["handler_units"]
    community = units["community"]
    _, community_key = stack.handler_key("community")
    _, street_key = stack.handler_key("street")
    district = next(
        f["properties"]["district_id"]
        for f in stack.city["features"]
        if f["properties"]["grid_id"] == grid_unit
    )
    lat, lon = grid_point(stack, grid_unit)
    # Left alone at the grid: the shortest grid limit (1 clock hour, 2 s at 1800x).
    waiting = grid_category(catalogue, longest=False)
    # Whistled up to its department at once: clock hours all the way (16 h there, 32 s).
    climbing = catalogue.category("dirty-road")
    assert waiting.calendar is None and climbing.calendar is None
    assert catalogue.time_limit(climbing.code, Tier.GRID).total_seconds() >= 4 * 3600
    with httpx.Client(timeout=10) as client:
        ids = []
        for category in (waiting, climbing):
            created = stack.post_report(client, service_code=category.code, lat=lat, long=lon)
            assert created.status_code == 200, created.text
            ids.append(created.json()[0]["service_request_id"])
        left, raised = ids
        for order in ids:
            wait_until(
                lambda o=order: stack.request(client, o)["expected_datetime"], what="assignment"
            )
        for key in (grid_key, community_key, street_key):
            moved = client.post(
                f"{stack.url('routing')}/v1/workorders/{raised}/escalate",
                json={"note": "needs the department"},
                headers={"authorization": f"Bearer {key}"},
            )
            assert moved.status_code == 200, moved.text
        assert moved.json()["tier"] == "department"

    # The grid's assignment: yellow, then red naming the community.
    red = wait_until(
        lambda: warning(receiver, left, "red", 1), timeout=60, what="the grid's red warning"
    )
    yellow = warning(receiver, left, "yellow", 1)
    assert yellow is not None, deliveries(receiver, left)
    assigned = next(b for b in deliveries(receiver, left) if b["type"] == "workorder.assigned")
    kinds = [(b["type"], b.get("level")) for b in deliveries(receiver, left)]
    assert kinds.index(("workorder.assigned", None)) < kinds.index(("workorder.warning", "yellow"))
    assert kinds.index(("workorder.warning", "yellow")) < kinds.index(("workorder.warning", "red"))
    assignment = assigned["event"]["data"]["assignment"]
    for body in (yellow, red):
        data = body["event"]["data"]
        # A warning is no move of the order: the version of its assignment's event.
        assert data["version"] == assigned["event"]["data"]["version"]
        assert (data["tier"], data["unit_id"]) == ("grid", grid_unit)
        assert moment(data["due_at"]) == moment(assignment["due_at"])
        assert waiting.name_zh in body["message"]["zh-CN"]
        assert waiting.name_en in body["message"]["en"]
        assert "+08:00" in body["message"]["en"]  # the due time in the city's zone
    assert "黄牌预警" in yellow["message"]["zh-CN"] and "Yellow warning" in yellow["message"]["en"]
    assert yellow["recipients"] == [{"unit_id": grid_unit, "role": "holder"}]
    assert red["event"]["data"]["supervisor_id"] == community == assignment["supervisor_id"]
    assert red["recipients"] == [
        {"unit_id": grid_unit, "role": "holder"},
        {"unit_id": community, "role": "supervisor"},
    ]
    assert "红牌预警" in red["message"]["zh-CN"] and community in red["message"]["zh-CN"]
    assert community in red["message"]["en"]

    # At the department tier nothing escalates: the red warning goes to the district.
    at_department = wait_until(
        lambda: next(
            (
                b
                for b in deliveries(receiver, raised)
                if b["type"] == "workorder.warning"
                and b["level"] == "red"
                and b["event"]["data"]["tier"] == "department"
            ),
            None,
        ),
        timeout=90,
        what="the department's red warning",
    )
    data = at_department["event"]["data"]
    assert (data["unit_id"], data["supervisor_id"]) == (climbing.department, district)
    assert {"unit_id": district, "role": "supervisor"} in at_department["recipients"]
    # Its version is that of the escalation that made the department's assignment, and it
    # arrives after that escalation.
    to_department = next(
        b
        for b in deliveries(receiver, raised)
        if b["type"] == "workorder.escalated"
        and b["event"]["data"]["assignment"]["tier"] == "department"
    )
    assert data["version"] == to_department["event"]["data"]["version"]
    assert moment(data["due_at"]) == moment(to_department["event"]["data"]["assignment"]["due_at"])

"""The lifecycle on the running stack (clock 1800x): a department a street calls in that
does not report in within its limit is escalated to the district, and a street resolving
its grid's order is counted as a street resolution."""

from __future__ import annotations

import httpx
import pytest

from gridline.common.policy.catalogue import Catalogue

from .receiver import Receiver
from .stack import Stack, wait_until
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e


def test_a_department_that_does_not_report_in_is_escalated_and_a_street_resolution_counts(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    grid_unit, _ = stack.handler_key("grid")
    street_unit, street_key = stack.handler_key("street")
    department, department_key = stack.handler_key("department")
    district = next(
        f["properties"]["district_id"]
        for f in stack.city["features"]
        if f["properties"]["grid_id"] == grid_unit
    )
    lat, lon = grid_point(stack, grid_unit)
    category = grid_category(catalogue, longest=True)
    routing = f"{stack.url('routing')}/v1/workorders"
    as_street = {"authorization": f"Bearer {street_key}"}
    with httpx.Client(timeout=10) as client:
        counted_before = (
            stack.metric(
                client,
                "sla",
                "gridline_workorders_resolved_total",
                street_id=street_unit,
                tier="street",
                category=category.code,
            )
            or 0
        )
        created = stack.post_report(client, service_code=category.code, lat=lat, long=lon)
        assert created.status_code == 200, created.text
        order_id = created.json()[0]["service_request_id"]
        wait_until(lambda: stack.request(client, order_id)["expected_datetime"], what="assignment")

        called = client.post(
            f"{routing}/{order_id}/call-in",
            json={"department_id": department, "note": "需要专业力量 needs the department"},
            headers=as_street,
        )
        assert called.status_code == 200, called.text
        assert (called.json()["unit_id"], called.json()["call_department_id"]) == (
            grid_unit,
            department,
        )
        again = client.post(
            f"{routing}/{order_id}/call-in", json={"department_id": department}, headers=as_street
        )
        assert again.status_code == 409 and "one call at a time" in again.json()["detail"]

        # The report-in limit (2 h) passes in about 4 s of the accelerated clock.
        order = wait_until(
            lambda: (
                (o := client.get(f"{routing}/{order_id}", headers=as_street).json())[
                    "call_escalated_at"
                ]
                and o
            ),
            timeout=60,
            what="the call to escalate to the district",
        )
        escalation = order["history"][-1]
        assert escalation["event_type"] == "gridline.workorder.call_escalated.v1"
        assert (escalation["detail"]["to"], escalation["detail"]["actor"]) == (district, "sla")
        assert order["state"] == "open" and order["unit_id"] == grid_unit  # the holder keeps it

        late = client.post(
            f"{routing}/{order_id}/report-in", headers={"authorization": f"Bearer {department_key}"}
        )
        assert late.status_code == 200, late.text
        assert late.json()["reported_in_at"] is not None

        resolved = client.post(
            f"{routing}/{order_id}/resolve", json={"note": "街道办结"}, headers=as_street
        )
        assert resolved.status_code == 200, resolved.text
        assert (resolved.json()["tier"], resolved.json()["resolved_tier"]) == ("grid", "street")
        wait_until(
            lambda: (
                (
                    stack.metric(
                        client,
                        "sla",
                        "gridline_workorders_resolved_total",
                        street_id=street_unit,
                        tier="street",
                        category=category.code,
                    )
                    or 0
                )
                >= counted_before + 1
            ),
            what="the resolution counted for the street tier",
        )

    wait_until(
        lambda: (
            {"workorder.department_called_in", "workorder.call_escalated"}
            <= {d.json["type"] for d in receiver.for_order(order_id)}
        ),
        what="the call-in and its escalation delivered as webhooks",
    )
    # The reporter's timeline tells the moves too (intake follows them from the events).
    key = {"X-Api-Key": stack.credentials["open311_api_key"]}

    def timeline_kinds() -> set[str]:
        with httpx.Client(timeout=10) as client:
            got = client.get(f"{stack.url('intake')}/v1/reports/{order_id}/timeline", headers=key)
        assert got.status_code == 200, got.text
        return {e["kind"] for e in got.json()["entries"]}

    wait_until(
        lambda: (
            {"assigned", "called_in", "call_escalated", "reported_in", "resolved"}
            <= timeline_kinds()
        ),
        what="the moves on the reporter's timeline",
    )

"""What a reporter sees of the lifecycle's further moves: the request's status and notes,
and the timeline's entries and summary state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gridline.common.events import (
    DepartmentCalledIn,
    WorkOrderAccepted,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderReturned,
)
from gridline.intake.domain import status, timeline

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")


def ref(version: int) -> dict[str, Any]:
    return {
        "work_order_id": "wo1",
        "report_id": "r1",
        "version": version,
        "category": "exposed-garbage",
        "category_name_en": "Exposed garbage",
        "category_name_zh": "暴露垃圾",
        "street_id": "s1",
        "district_id": "d1",
        "policy_version": "p",
    }


def test_accept_return_cancel_and_close_set_the_requests_status() -> None:
    accepted = WorkOrderAccepted(
        **ref(2),
        tier="grid",
        unit_id="g1",
        unit_name="网格一",
        assignment_seq=1,
        accepted_at=AT,
        due_at=AT + timedelta(hours=8),
    )
    view = status.lifecycle_view(accepted, TZ)
    assert view is not None and view.status == "open"
    assert view.status_notes.startswith("Accepted (签收) at tier grid")
    assert view.expected_datetime == AT + timedelta(hours=8)

    returned = WorkOrderReturned(
        **ref(3),
        reason="wrong grid",
        by_unit_id="g1",
        from_tier="grid",
        from_unit_id="g1",
        grid_id=None,
        community_id=None,
        assignment=None,
        triage_unit_id="d1",
        triage_unit_name="天宁区",
        returned_at=AT,
    )
    view = status.lifecycle_view(returned, TZ)
    assert view is not None and (view.status, view.agency_responsible) == ("open", "天宁区")
    assert "returned (退回): wrong grid" in view.status_notes

    cancelled = WorkOrderCancelled(
        **ref(4),
        reason="duplicate",
        by_unit_id="g1",
        unit_id="g1",
        unit_name="网格一",
        cancelled_at=AT,
    )
    view = status.lifecycle_view(cancelled, TZ)
    assert view is not None and view.status == "closed"
    assert view.status_notes == "Cancelled (作废) as duplicate."

    closed = WorkOrderClosed(
        **ref(4),
        reason="confirmed",
        unit_id="g1",
        unit_name="网格一",
        resolved_at=AT,
        closed_at=AT,
    )
    view = status.lifecycle_view(closed, TZ)
    assert view is not None and view.status_notes.startswith("Closed (结案)")

    entries = [
        timeline.of_lifecycle(e, f"ev{i}", AT)
        for i, e in enumerate([accepted, returned, cancelled])
    ]
    assert [e.kind for e in entries] == ["accepted", "returned", "cancelled"]
    assert timeline.summary(entries).state == "cancelled"


def test_a_call_in_leaves_the_status_and_adds_an_entry() -> None:
    called = DepartmentCalledIn(
        **ref(2),
        call_seq=1,
        department_id="dept-water",
        department_name_zh="水务局",
        department_name_en="Water Authority",
        called_by_unit_id="s1",
        called_at=AT,
        report_in_due_at=AT + timedelta(hours=2),
    )
    assert status.lifecycle_view(called, TZ) is None
    entry = timeline.of_lifecycle(called, "ev", AT)
    assert (entry.kind, entry.detail["department_id"]) == ("called_in", "dept-water")


def test_a_closed_or_cancelled_order_takes_no_feedback() -> None:
    from gridline.intake.domain.feedback import FeedbackRefused, refuse_unless_resolved

    refuse_unless_resolved("closed", "Resolved at tier grid (网格) by g1.")
    for notes in (
        "Closed (结案): the reporter confirmed the resolution.",
        "Cancelled (作废) as invalid.",
    ):
        with pytest.raises(FeedbackRefused, match="final"):
            refuse_unless_resolved("closed", notes)

"""notify's words for the lifecycle's further moves: each has its kind and says, in
Chinese and English, what happened and to whom."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridline.common.events import (
    Assignment,
    DepartmentCalledIn,
    DepartmentCallEscalated,
    DepartmentReportedIn,
    LifecycleEvent,
    WorkOrderAccepted,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderReturned,
)
from gridline.notify.domain import messages

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
REF: dict[str, Any] = {
    "work_order_id": "wo1",
    "report_id": "r1",
    "version": 3,
    "category": "waterlogging",
    "category_name_en": "Waterlogging",
    "category_name_zh": "路面积水",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p",
    "time_zone": "Asia/Shanghai",
}
DEPT = {
    "department_id": "dept-water",
    "department_name_zh": "水务局",
    "department_name_en": "Water Authority",
}
SOON = AT + timedelta(hours=2)


def events() -> list[tuple[LifecycleEvent, str, str, str]]:
    """(event, kind, a word of its Chinese, a word of its English)."""
    again = Assignment(
        seq=2,
        tier="grid",
        unit_id="g2",
        unit_name="网格二",
        unit_level="grid",
        assigned_at=AT,
        due_at=SOON,
    )
    return [
        (
            WorkOrderAccepted(
                **REF,
                tier="grid",
                unit_id="g1",
                unit_name="网格一",
                assignment_seq=1,
                accepted_at=AT,
                due_at=SOON,
            ),
            "workorder.accepted",
            "签收",
            "accepted by 网格一",
        ),
        (
            WorkOrderReturned(
                **REF,
                reason="不属本网格",
                by_unit_id="g1",
                from_tier="grid",
                from_unit_id="g1",
                grid_id="g2",
                community_id="c2",
                assignment=again,
                returned_at=AT,
            ),
            "workorder.returned",
            "退回",
            "due 2026-11-02T11:00+08:00",
        ),
        (
            WorkOrderCancelled(
                **REF,
                reason="duplicate",
                by_unit_id="g1",
                unit_id="g1",
                unit_name="网格一",
                cancelled_at=AT,
            ),
            "workorder.cancelled",
            "作废",
            "cancelled as duplicate",
        ),
        (
            WorkOrderClosed(
                **REF,
                reason="feedback_window",
                unit_id="g1",
                unit_name="网格一",
                resolved_at=AT,
                closed_at=AT,
            ),
            "workorder.closed",
            "结案",
            "feedback window passed",
        ),
        (
            DepartmentCalledIn(
                **REF,
                **DEPT,
                call_seq=1,
                called_by_unit_id="s1",
                called_at=AT,
                report_in_due_at=SOON,
            ),
            "workorder.department_called_in",
            "吹哨",
            "report in by 2026-11-02T11:00+08:00",
        ),
        (
            DepartmentReportedIn(**REF, **DEPT, call_seq=1, reported_in_at=SOON, late=True),
            "workorder.department_reported_in",
            "报到（逾期）",
            "reported in late",
        ),
        (
            DepartmentCallEscalated(
                **REF,
                **DEPT,
                call_seq=1,
                report_in_due_at=SOON,
                escalated_at=SOON,
                to_unit_id="d1",
                to_unit_name="天宁区",
            ),
            "workorder.call_escalated",
            "天宁区 督办",
            "escalated to 天宁区",
        ),
    ]


@pytest.mark.parametrize(("event", "kind", "zh", "en"), events())
def test_each_lifecycle_move_has_its_kind_and_words(
    event: LifecycleEvent, kind: str, zh: str, en: str
) -> None:
    assert messages.kind(event) == kind
    words = messages.render(event)
    assert zh in words["zh-CN"] and "wo1" in words["zh-CN"], words
    assert en in words["en"] and "Waterlogging" in words["en"], words

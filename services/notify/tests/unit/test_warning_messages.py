"""notify's words for sla's deadline warnings: yellow and red, in Chinese and English, with
the holder, the category and the due time in the order's zone; a red one names the
supervisor, in its words and among the body's recipients. Other kinds' bodies are as
they were."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridline.common.events import Assignment, DeadlineWarning, WorkOrderAssigned, envelope_for
from gridline.notify.domain import messages

pytestmark = pytest.mark.unit

DUE = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 11:00 in Shanghai
REF: dict[str, Any] = {
    "work_order_id": "wo1",
    "report_id": "r1",
    "version": 1,
    "category": "waterlogging",
    "category_name_en": "Waterlogging on a road",
    "category_name_zh": "路面积水",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p",
    "time_zone": "Asia/Shanghai",
}


def warning(level: str, **changes: Any) -> DeadlineWarning:
    fields: dict[str, Any] = {
        **REF,
        "level": level,
        "assignment_seq": 1,
        "tier": "street",
        "unit_id": "s1",
        "unit_name": "天宁街道",
        "supervisor_id": "dept-water" if level == "red" else None,
        "due_at": DUE,
        "warned_at": DUE if level == "red" else DUE - timedelta(minutes=48),
    }
    return DeadlineWarning(**(fields | changes))


def body(event: Any) -> dict[str, Any]:
    envelope = envelope_for(event, source="/test", time=DUE)
    [raw] = messages.bodies(event, envelope, ["n1"])
    out: dict[str, Any] = json.loads(raw)
    return out


def test_a_yellow_warning_names_the_holder_the_category_and_the_local_due_time() -> None:
    event = warning("yellow")
    assert messages.kind(event) == "workorder.warning"
    words = messages.render(event)
    assert words["zh-CN"] == (
        "黄牌预警：工单 wo1（路面积水）由街道 天宁街道 办理，将于 2026-11-30T11:00+08:00 到期，"
        "请尽快办结。"
    )
    assert words["en"] == (
        "Yellow warning: work order wo1 (Waterlogging on a road) held by 天宁街道 (street)"
        " is due 2026-11-30T11:00+08:00."
    )


def test_a_red_warning_at_the_due_time_names_the_supervisor_told_as_well() -> None:
    words = messages.render(warning("red"))
    assert words["zh-CN"].startswith("红牌预警：工单 wo1（路面积水）由街道 天宁街道 办理")
    assert "已到办结时限 2026-11-30T11:00+08:00" in words["zh-CN"]
    assert words["zh-CN"].endswith("已同时告知上级 dept-water 督办。")
    assert words["en"] == (
        "Red warning: work order wo1 (Waterlogging on a road) held by 天宁街道 (street)"
        " reached its due time, 2026-11-30T11:00+08:00. Supervisor dept-water is told too."
    )
    # A red share below 1 fires before the due time: the words say it is still to come.
    early = messages.render(warning("red", warned_at=DUE - timedelta(minutes=10)))
    assert "将于 2026-11-30T11:00+08:00 到期" in early["zh-CN"]
    assert "is due 2026-11-30T11:00+08:00" in early["en"]


def test_a_department_s_red_warning_goes_to_its_district() -> None:
    event = warning("red", tier="department", unit_id="dept-water", unit_name="水务局")
    event = event.model_copy(update={"supervisor_id": "d1"})
    words = messages.render(event)
    assert "由职能部门 水务局 办理" in words["zh-CN"] and "上级 d1" in words["zh-CN"]
    assert body(event)["recipients"] == [
        {"unit_id": "dept-water", "role": "holder"},
        {"unit_id": "d1", "role": "supervisor"},
    ]


def test_a_warnings_body_has_its_level_and_recipients_and_the_event_as_sent() -> None:
    yellow, red = body(warning("yellow")), body(warning("red"))
    assert list(yellow) == [
        "id",
        "type",
        "work_order_id",
        "level",
        "recipients",
        "message",
        "event",
    ]
    assert (yellow["type"], yellow["level"]) == ("workorder.warning", "yellow")
    assert yellow["recipients"] == [{"unit_id": "s1", "role": "holder"}]
    assert red["level"] == "red"
    assert red["recipients"] == [
        {"unit_id": "s1", "role": "holder"},
        {"unit_id": "dept-water", "role": "supervisor"},
    ]
    assert red["event"]["type"] == "gridline.sla.deadline_warning.v1"
    assert red["event"]["data"]["supervisor_id"] == "dept-water"
    assert red["message"] == messages.render(warning("red"))


def test_the_other_kinds_bodies_keep_their_fields() -> None:
    assigned = WorkOrderAssigned(
        **REF,
        source="citizen",
        lat=31.7,
        lon=119.9,
        opened_at=DUE,
        assignment=Assignment(
            seq=1,
            tier="street",
            unit_id="s1",
            unit_name="天宁街道",
            unit_level="street",
            assigned_at=DUE,
            due_at=DUE,
        ),
    )
    assert list(body(assigned)) == ["id", "type", "work_order_id", "message", "event"]

"""A notification from a work-order event or a deadline warning: its words, in zh-CN and
English, and the JSON body each subscription receives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridline.common.events import (
    DeadlineWarning,
    DepartmentCalledIn,
    DepartmentCallEscalated,
    DepartmentReportedIn,
    Envelope,
    LifecycleEvent,
    WorkOrderAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderEvent,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)

TIER_ZH = {"grid": "网格", "community": "社区", "street": "街道", "department": "职能部门"}
REASON = {
    "timeout": ("超时未办结，自动上报", "the time limit passed"),
    "whistle": ("处置人员吹哨上报", "the handler called it beyond its authority"),
    "rule": ("按规则上报", "a routing rule required it"),
}


def local(at: datetime, zone: str) -> str:
    """A due time as the people of the city read it: their zone, to the minute."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return at.astimezone(tz).isoformat(timespec="minutes")


Notified = WorkOrderEvent | LifecycleEvent | DeadlineWarning
CANCEL_ZH = {"duplicate": "重复", "invalid": "无效"}


def kind(event: Notified) -> str:
    return {
        WorkOrderAssigned: "workorder.assigned",
        WorkOrderEscalated: "workorder.escalated",
        WorkOrderResolved: "workorder.resolved",
        WorkOrderReopened: "workorder.reopened",
        WorkOrderAccepted: "workorder.accepted",
        WorkOrderReturned: "workorder.returned",
        WorkOrderCancelled: "workorder.cancelled",
        WorkOrderClosed: "workorder.closed",
        DepartmentCalledIn: "workorder.department_called_in",
        DepartmentReportedIn: "workorder.department_reported_in",
        DepartmentCallEscalated: "workorder.call_escalated",
        DeadlineWarning: "workorder.warning",
    }[type(event)]


LEVEL = {"yellow": ("黄牌预警", "Yellow warning"), "red": ("红牌预警", "Red warning")}


def render_warning(event: DeadlineWarning) -> dict[str, str]:
    """{"zh-CN": ..., "en": ...} for a yellow or red warning: the holder, the category, the
    due time in the order's zone; a red one names the supervisor told as well."""
    cat_zh, cat_en, wo = event.category_name_zh, event.category_name_en, event.work_order_id
    level_zh, level_en = LEVEL[event.level]
    due = local(event.due_at, event.time_zone)
    unit, tier = event.unit_name, event.tier
    if event.warned_at >= event.due_at:
        when_zh, when_en = f"已到办结时限 {due}", f"reached its due time, {due}"
    else:
        when_zh, when_en = f"将于 {due} 到期", f"is due {due}"
    zh = f"{level_zh}：工单 {wo}（{cat_zh}）由{TIER_ZH[tier]} {unit} 办理，{when_zh}，请尽快办结。"
    en = f"{level_en}: work order {wo} ({cat_en}) held by {unit} ({tier}) {when_en}."
    if event.level == "red" and event.supervisor_id:
        zh += f"已同时告知上级 {event.supervisor_id} 督办。"
        en += f" Supervisor {event.supervisor_id} is told too."
    return {"zh-CN": zh, "en": en}


def recipients(event: DeadlineWarning) -> list[dict[str, str]]:
    """Who a warning is for: the holder, and for a red one its supervisor (the next tier's
    unit; the district for a department)."""
    out = [{"unit_id": event.unit_id, "role": "holder"}]
    if event.level == "red" and event.supervisor_id:
        out.append({"unit_id": event.supervisor_id, "role": "supervisor"})
    return out


def render_lifecycle(event: LifecycleEvent) -> dict[str, str]:
    """{"zh-CN": ..., "en": ...} for one of the lifecycle's further moves."""
    cat_zh, cat_en, wo = event.category_name_zh, event.category_name_en, event.work_order_id
    if isinstance(event, WorkOrderAccepted):
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）已由{TIER_ZH[event.tier]} {event.unit_name} 签收。",
            "en": f"Work order {wo} ({cat_en}) accepted by {event.unit_name} ({event.tier}).",
        }
    if isinstance(event, WorkOrderReturned):
        a = event.assignment
        if a is None:
            unit = event.triage_unit_name or event.triage_unit_id or ""
            return {
                "zh-CN": f"工单 {wo}（{cat_zh}）被退回（{event.reason}），已交 {unit} 人工分拨。",
                "en": f"Work order {wo} ({cat_en}) returned ({event.reason}); awaits triage at {unit}.",
            }
        due = local(a.due_at, event.time_zone)
        zh, en = a.unit_name_zh or a.unit_name, a.unit_name_en or a.unit_name
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）被退回（{event.reason}），已改派至{TIER_ZH[a.tier]} {zh}，请于 {due} 前办结。",
            "en": f"Work order {wo} ({cat_en}) returned ({event.reason}) and assigned again to {en} ({a.tier}); due {due}.",
        }
    if isinstance(event, WorkOrderCancelled):
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）因{CANCEL_ZH[event.reason]}已作废。",
            "en": f"Work order {wo} ({cat_en}) cancelled as {event.reason}.",
        }
    if isinstance(event, WorkOrderClosed):
        why_zh, why_en = (
            ("报告人确认办结", "the reporter confirmed the resolution")
            if event.reason == "confirmed"
            else ("评价期满无异议", "the feedback window passed without a rejection")
        )
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）已结案：{why_zh}。",
            "en": f"Work order {wo} ({cat_en}) closed: {why_en}.",
        }
    zh, en = event.department_name_zh, event.department_name_en
    if isinstance(event, DepartmentCalledIn):
        due = local(event.report_in_due_at, event.time_zone)
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）吹哨：请 {zh} 于 {due} 前报到。",
            "en": f"Work order {wo} ({cat_en}): {en} is called in and must report in by {due}.",
        }
    if isinstance(event, DepartmentReportedIn):
        late_zh, late_en = ("（逾期）", " late") if event.late else ("", "")
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）：{zh} 已报到{late_zh}。",
            "en": f"Work order {wo} ({cat_en}): {en} reported in{late_en}.",
        }
    due = local(event.report_in_due_at, event.time_zone)
    return {
        "zh-CN": f"工单 {wo}（{cat_zh}）：{zh} 未在 {due} 前报到，已提请 {event.to_unit_name} 督办。",
        "en": f"Work order {wo} ({cat_en}): {en} did not report in by {due}; escalated to {event.to_unit_name}.",
    }


def render(event: Notified) -> dict[str, str]:
    """{"zh-CN": ..., "en": ...} for one event."""
    if isinstance(event, DeadlineWarning):
        return render_warning(event)
    if not isinstance(
        event, WorkOrderAssigned | WorkOrderEscalated | WorkOrderReopened | WorkOrderResolved
    ):
        return render_lifecycle(event)
    cat_zh, cat_en, wo = event.category_name_zh, event.category_name_en, event.work_order_id
    if isinstance(event, WorkOrderAssigned):
        a = event.assignment
        if a is None:
            unit = event.triage_unit_name or event.triage_unit_id or ""
            return {
                "zh-CN": f"工单 {wo}（{cat_zh}）不在任何网格内，已交 {unit} 人工分拨。",
                "en": f"Work order {wo} ({cat_en}) lies in no grid and awaits manual triage at {unit}.",
            }
        due = local(a.due_at, event.time_zone)
        zh, en = a.unit_name_zh or a.unit_name, a.unit_name_en or a.unit_name
        return {
            "zh-CN": f"新工单 {wo}（{cat_zh}）已派至{TIER_ZH[a.tier]} {zh}，请于 {due} 前办结。",
            "en": f"New work order {wo} ({cat_en}) assigned to {en} ({a.tier}); due {due}.",
        }
    if isinstance(event, WorkOrderEscalated):
        a = event.assignment
        why_zh, why_en = REASON[event.reason]
        due = local(a.due_at, event.time_zone)
        zh, en = a.unit_name_zh or a.unit_name, a.unit_name_en or a.unit_name
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）因{why_zh}，由{TIER_ZH[event.from_tier]}升级至{TIER_ZH[a.tier]} {zh}，请于 {due} 前办结。",
            "en": f"Work order {wo} ({cat_en}) escalated from {event.from_tier} to {a.tier}, {en}, because {why_en}; due {due}.",
        }
    if isinstance(event, WorkOrderReopened):
        a = event.assignment
        due = local(a.due_at, event.time_zone)
        zh, en = a.unit_name_zh or a.unit_name, a.unit_name_en or a.unit_name
        if event.reason == "recurred":
            return {
                "zh-CN": f"工单 {wo}（{cat_zh}）办结后问题复发，已重新打开并派至{TIER_ZH[a.tier]} {zh}，请于 {due} 前办结。",
                "en": f"Work order {wo} ({cat_en}) reopened: the problem came back after its resolution; assigned again to {en} ({a.tier}); due {due}.",
            }
        return {
            "zh-CN": f"工单 {wo}（{cat_zh}）的办结结果未获报告人认可，已重新打开并派至{TIER_ZH[a.tier]} {zh}，请于 {due} 前办结。",
            "en": f"Work order {wo} ({cat_en}) reopened: the reporter rejected its resolution; assigned again to {en} ({a.tier}); due {due}.",
        }
    zh, en = event.unit_name_zh or event.unit_name, event.unit_name_en or event.unit_name
    return {
        "zh-CN": f"工单 {wo}（{cat_zh}）已由{TIER_ZH[event.tier]} {zh} 办结。",
        "en": f"Work order {wo} ({cat_en}) resolved at the {event.tier} tier by {en}.",
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def bodies(event: Notified, envelope: Envelope, notification_ids: Sequence[str]) -> list[bytes]:
    """One body per notification id: {"id", "type", "work_order_id", "message", "event"},
    the event being the CloudEvents envelope as sent; a warning has "level" and
    "recipients" too (after "work_order_id"; the other kinds' bodies are as they were). The
    bodies differ only in their id, so the rest is serialised once, by pydantic's own JSON
    encoder for the envelope."""
    warning = (
        b',"level":' + _json(event.level) + b',"recipients":' + _json(recipients(event))
        if isinstance(event, DeadlineWarning)
        else b""
    )
    rest = b"".join(
        (
            b',"type":',
            _json(kind(event)),
            b',"work_order_id":',
            _json(event.work_order_id),
            warning,
            b',"message":',
            _json(render(event)),
            b',"event":',
            envelope.model_dump_json().encode(),
            b"}",
        )
    )
    return [b'{"id":' + _json(nid) + rest for nid in notification_ids]

"""A partner's status callback from a TipStatusChanged: its words in zh-CN and English,
its JSON body, and whether the partner can be called back at all.

The body names the tip by the partner's own ids (report, rider) and never carries a
person's name or phone number: the event has none to give."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from gridline.common.events import TipStatusChanged
from gridline.notify.domain.messages import TIER_ZH, local

TYPE = "tip.status_changed"
SUBSCRIPTION_PREFIX = "partner:"


def subscription(partner_id: str) -> str:
    """The deliveries' subscription of a partner's callbacks."""
    return SUBSCRIPTION_PREFIX + partner_id


def partner_of(subscription_name: str) -> str | None:
    """The partner a subscription calls back, or None for a configured webhook."""
    if subscription_name.startswith(SUBSCRIPTION_PREFIX):
        return subscription_name[len(SUBSCRIPTION_PREFIX) :]
    return None


@dataclass(frozen=True, slots=True)
class Partner:
    """What notify knows of a partner: `updated_at` is that of the newest PartnerUpdated
    followed, None while only its tips were seen (its callbacks are then parked, not
    dropped)."""

    partner_id: str
    active: bool
    callback_url: str | None
    secret_versions: tuple[int, ...]
    updated_at: datetime | None

    def followed(self, since: datetime | None) -> bool:
        """Whether notify has followed the partner as far as `since`, the partner's
        `updated_at` when the tip's change was emitted (None: as far as it is known).
        The two topics are consumed independently: a callback URL set just before the
        tip may not have arrived yet, and the callback then waits for it."""
        if self.updated_at is None:
            return False
        return since is None or self.updated_at >= since

    def why_not_called(self) -> str | None:
        """None when a callback can go out now, else why it cannot (a dead delivery's
        reason)."""
        if not self.active:
            return "partner revoked"
        if not self.callback_url:
            return "partner has no callback URL"
        if not self.secret_versions:
            return "partner has no signing secret version"
        return None


def render(tip: TipStatusChanged) -> dict[str, str]:
    """{"zh-CN": ..., "en": ...} for one status change of a tip."""
    r, wo = tip.report_id, tip.work_order_id
    cat_zh = tip.category_name_zh or tip.category
    cat_en = tip.category_name_en or tip.category
    unit = tip.unit_name or ""
    tier_zh = TIER_ZH.get(tip.tier or "", "")
    due = local(tip.due_at, tip.time_zone) if tip.due_at else None
    due_zh = f"，请于 {due} 前办结" if due else ""
    due_en = f"; due {due}" if due else ""
    if tip.status == "assigned":
        zh = f"您的随手拍 {r} 已立为工单 {wo}（{cat_zh}），派至{tier_zh} {unit}{due_zh}。"
        en = f"Your tip {r} is work order {wo} ({cat_en}), assigned to {unit} ({tip.tier}){due_en}."
    elif tip.status == "triage":
        zh = f"您的随手拍 {r} 已立为工单 {wo}（{cat_zh}），正在人工分拨。"
        en = f"Your tip {r} is work order {wo} ({cat_en}) and awaits manual triage."
    elif tip.status == "escalated":
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）已升级至{tier_zh} {unit}{due_zh}。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} was escalated to {unit} ({tip.tier}){due_en}."
    elif tip.status == "accepted":
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）已由{tier_zh} {unit} 签收{due_zh}。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} was accepted by {unit} ({tip.tier}){due_en}."
    elif tip.status == "returned":
        where_zh = f"改派至{tier_zh} {unit}{due_zh}" if tip.tier else f"交 {unit} 人工分拨"
        where_en = (
            f"placed again with {unit} ({tip.tier}){due_en}"
            if tip.tier
            else f"awaits manual triage at {unit}"
        )
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）被退回（位置或类别有误），{where_zh}。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} was returned as in the wrong place or category and {where_en}."
    elif tip.status == "cancelled":
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）已作废（重复或无效），不计积分。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} was cancelled as a duplicate or invalid; it earns no points."
    elif tip.status == "closed":
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）已结案。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} is closed."
    elif tip.status == "reopened":
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）已重新打开，派至{tier_zh} {unit}{due_zh}。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} was reopened and assigned to {unit} ({tip.tier}){due_en}."
    else:
        by_zh = f"由{tier_zh} {unit} " if unit else ""
        by_en = f" by {unit}" if unit else ""
        zh = f"您的随手拍 {r} 所在工单 {wo}（{cat_zh}）已{by_zh}办结。"
        en = f"Work order {wo} ({cat_en}) of your tip {r} was resolved{by_en}."
        if tip.points:
            zh = zh[:-1] + f"，奖励 {tip.points} 积分。"
            en = en[:-1] + f"; {tip.points} points credited."
    if tip.duplicate:
        zh += "（该问题已有人上报，您的随手拍已并入同一工单。）"
        en += " (The problem had been reported already; your tip joined that work order.)"
    return {"zh-CN": zh, "en": en}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body(tip: TipStatusChanged, notification_id: str) -> bytes:
    """The callback's JSON body (UTF-8, compact)."""
    fields: dict[str, object] = {
        "id": notification_id,
        "type": TYPE,
        "report_id": tip.report_id,
        "rider_id": tip.rider_id,
        "work_order_id": tip.work_order_id,
        "status": tip.status,
        "duplicate": tip.duplicate,
        "category": tip.category,
        "tier": tip.tier,
        "unit_name": tip.unit_name,
        "due_at": _iso(tip.due_at),
        "points": tip.points,
        "changed_at": _iso(tip.changed_at),
        "message": render(tip),
    }
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()

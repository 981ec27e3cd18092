"""What an Open311 client sees of a work order: status, agency and notes in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

TIER_WORDS = {
    "grid": "grid (网格)",
    "community": "community (社区)",
    "street": "street (街道)",
    "department": "department (职能部门)",
}


def local(at: datetime, tz: ZoneInfo) -> str:
    """A due time as the city reads it: local time, to the minute, with its offset."""
    return at.astimezone(tz).isoformat(timespec="minutes")


@dataclass(frozen=True)
class RequestStatus:
    status: str  # open | closed
    agency_responsible: str
    expected_datetime: datetime | None
    status_notes: str


def assigned(unit_name: str, tier: str, due_at: datetime, tz: ZoneInfo) -> RequestStatus:
    return RequestStatus(
        "open",
        unit_name,
        due_at,
        f"Assigned at tier {TIER_WORDS[tier]} to {unit_name}; due {local(due_at, tz)}.",
    )


def held_for_triage(unit_name: str, reason: str | None) -> RequestStatus:
    why = f": {reason}" if reason else ""
    return RequestStatus(
        "open",
        unit_name,
        None,
        f"Held for manual triage at district {unit_name}{why}.",
    )


def escalated(
    unit_name: str, from_tier: str, tier: str, reason: str, due_at: datetime, tz: ZoneInfo
) -> RequestStatus:
    because = {
        "timeout": "the time limit passed",
        "whistle": "the handler called it beyond its authority (吹哨)",
        "rule": "a routing rule required it",
    }[reason]
    return RequestStatus(
        "open",
        unit_name,
        due_at,
        f"Escalated from tier {TIER_WORDS[from_tier]} to tier {TIER_WORDS[tier]}, {unit_name}, "
        f"because {because}; due {local(due_at, tz)}.",
    )


def resolved(unit_name: str, tier: str, note: str | None, due_at: datetime) -> RequestStatus:
    extra = f" Note: {note}" if note else ""
    return RequestStatus(
        "closed", unit_name, due_at, f"Resolved at tier {TIER_WORDS[tier]} by {unit_name}.{extra}"
    )


def received_notice(entry_tier: str, department_en: str, department_zh: str) -> str:
    """What a reporter is told on acceptance: who will handle it first (zh-CN and English)."""
    who = {
        "grid": ("the grid worker of the grid that holds this location", "所在网格的网格员"),
        "community": ("the community (社区) that holds this location", "所在社区"),
        "street": ("the street office (街道) that holds this location", "所在街道"),
        "department": (department_en, department_zh),
    }[entry_tier]
    return f"Received; it goes to {who[0]}. 已受理，将交{who[1]}处置。"

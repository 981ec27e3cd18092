"""A report's timeline and the reporter's feedback, on the real PostgreSQL: redelivered
events add nothing; feedback is taken only on a resolution, once each, and a rejection in
the window is announced (outbox) so that routing reopens the order."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gridline.common.clock import ManualClock
from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    EventData,
    FeedbackGiven,
    ReportTags,
    WorkOrderAssigned,
    WorkOrderReopened,
    WorkOrderResolved,
    envelope_for,
)
from gridline.common.pg import Pool
from gridline.intake import report_cases
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain.feedback import FeedbackRefused
from gridline.intake.domain.keys import KeyRing, Role
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KEYS = KeyRing.of({Role.OPEN311_CLIENT: ["client-key"]})
REF: dict[str, Any] = {
    "category": "exposed-garbage",
    "category_name_en": "Exposed garbage",
    "category_name_zh": "暴露垃圾",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p1",
}


def assignment(seq: int, at: datetime) -> Assignment:
    return Assignment(
        seq=seq,
        tier="grid",
        unit_id="g1",
        unit_name="Grid 7",
        unit_level="grid",
        assigned_at=at,
        due_at=at + timedelta(hours=8),
    )


def assigned(order: str) -> WorkOrderAssigned:
    return WorkOrderAssigned(
        work_order_id=order,
        report_id=order,
        version=1,
        **REF,
        source="citizen",
        grid_id="g1",
        community_id="c1",
        lat=31.78,
        lon=119.95,
        opened_at=AT,
        assignment=assignment(1, AT),
    )


def resolved(order: str, version: int, at: datetime) -> WorkOrderResolved:
    return WorkOrderResolved(
        work_order_id=order,
        report_id=order,
        version=version,
        **REF,
        tier="grid",
        unit_id="g1",
        unit_name="Grid 7",
        resolved_by_unit_id="g1",
        opened_at=AT,
        resolved_at=at,
        due_at=AT + timedelta(hours=8),
    )


def reopened(order: str, version: int, at: datetime) -> WorkOrderReopened:
    return WorkOrderReopened(
        work_order_id=order,
        report_id=order,
        version=version,
        **REF,
        feedback_id="fb",
        resolved_tier="grid",
        resolved_at=at,
        source="citizen",
        opened_at=AT,
        assignment=assignment(2, at),
    )


def incoming(event_id: str, event: EventData, at: datetime) -> Incoming[Any]:
    return Incoming(event, envelope_for(event, source="/test", time=at, event_id=event_id))


async def file_reports(pool: Pool, intake: Intake, n: int) -> list[Accepted]:
    commit: GroupCommit[Accepted] = GroupCommit(pool, intake.store_accepted, wait=0, max_rows=64)
    writer = asyncio.create_task(commit.run())
    submission = Submission("exposed-garbage", 31.78, 119.95, "", None, None, *[None] * 6)
    try:
        return [await intake.submit(commit, submission, "citizen") for _ in range(n)]
    finally:
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer


async def apply(pool: Pool, intake: Intake, *events: Incoming[Any]) -> None:
    """As the consumer does: one transaction, one call for the mixed work-order events."""
    async with pool.acquire() as conn, conn.transaction():
        await intake.on_work_order(conn, list(events))


async def timeline(pool: Pool, report_id: str, credential: str = "client-key") -> list[str]:
    view = await report_cases.read(pool, report_id, credential, KEYS)
    return [e.kind for e in view.entries]


async def feedback_events(pool: Pool) -> list[tuple[str, FeedbackGiven]]:
    rows = await pool.fetch("SELECT key, payload FROM outbox ORDER BY id")
    found = []
    for row in rows:
        envelope = json.loads(row["payload"])
        if envelope["type"] == FeedbackGiven.TYPE:
            found.append((row["key"], FeedbackGiven.model_validate(envelope["data"])))
    return found


async def give(
    intake: Intake, pool: Pool, report_id: str, outcome: Any, credential: str = "client-key"
) -> report_cases.FeedbackTaken:
    return await report_cases.give_feedback(
        intake,
        pool,
        report_id,
        credential,
        KEYS,
        outcome=outcome,
        satisfaction=2,
        comment="still there",
    )


async def test_the_timeline_is_kept_from_events_and_a_redelivery_adds_nothing(pool: Pool) -> None:
    intake = Intake(ManualClock(AT), "/gridline/intake")
    (report,) = await file_reports(pool, intake, 1)
    rid = report.request_id
    later = AT + timedelta(minutes=30)
    events = [
        incoming("a1", assigned(rid), AT + timedelta(minutes=1)),
        incoming("r1", resolved(rid, 2, later), later),
        incoming("x1", assigned("elsewhere"), AT),  # an order not reported here
    ]
    await apply(pool, intake, *events)
    await apply(pool, intake, *events)  # redelivered
    await apply(pool, intake, events[1])

    assert await timeline(pool, rid) == ["received", "tagged", "assigned", "resolved"]
    assert await pool.fetchval("SELECT count(*) FROM timeline") == 4
    view = await report_cases.read(pool, rid, "client-key", KEYS)
    # Received and tagged were written with the report, at acceptance, from its event.
    received, tagged = view.entries[:2]
    assert (received.at, received.detail) == (
        report.requested_at,
        {"source": "citizen", "service_code": "exposed-garbage"},
    )
    submitted_id = await pool.fetchval(
        "SELECT event_id FROM outbox WHERE key = $1 AND topic = 'gridline.reports'", rid
    )
    assert received.entry_id == f"{submitted_id}:received"
    assert tagged.detail == ReportTags().model_dump(mode="json")
    assert view.summary.state == "resolved"
    assert view.summary.tier == "grid"
    assert view.summary.tags == tagged.detail
    assert view.summary.counts == {
        "escalations": 0,
        "resolutions": 1,
        "reopenings": 0,
        "feedback": 0,
    }
    resolved_entry = view.entries[-1]
    assert resolved_entry.at == later
    assert resolved_entry.detail["unit_name"] == "Grid 7"


async def test_a_report_is_read_with_a_client_key_or_its_own_token_only(pool: Pool) -> None:
    intake = Intake(ManualClock(AT), "/gridline/intake")
    mine, other = await file_reports(pool, intake, 2)
    assert await timeline(pool, mine.request_id, credential=mine.token) == ["received", "tagged"]
    with pytest.raises(report_cases.NotAllowed):
        await report_cases.read(pool, mine.request_id, other.token, KEYS)
    with pytest.raises(report_cases.NotAllowed):
        await report_cases.read(pool, "no-such-report", "guess", KEYS)
    with pytest.raises(report_cases.ReportNotFound):
        await report_cases.read(pool, "no-such-report", "client-key", KEYS)


async def test_feedback_waits_for_the_resolution_and_is_taken_once_per_resolution(
    pool: Pool,
) -> None:
    clock = ManualClock(AT)
    intake = Intake(clock, "/gridline/intake")
    (report,) = await file_reports(pool, intake, 1)
    rid = report.request_id
    await apply(pool, intake, incoming("a1", assigned(rid), AT))

    with pytest.raises(FeedbackRefused, match="the work order is open"):
        await give(intake, pool, rid, "reject")
    assert await feedback_events(pool) == []

    resolved_at = AT + timedelta(hours=1)
    await apply(pool, intake, incoming("r1", resolved(rid, 2, resolved_at), resolved_at))
    clock.advance(timedelta(hours=5))
    taken = await give(intake, pool, rid, "reject", credential=report.token)
    assert taken.reopens is True
    assert "reopened" in taken.message

    with pytest.raises(FeedbackRefused, match="already given"):
        await give(intake, pool, rid, "confirm")
    ((key, event),) = await feedback_events(pool)
    assert key == rid
    assert (event.feedback_id, event.report_id, event.work_order_id) == (
        taken.feedback_id,
        rid,
        rid,
    )
    assert (event.outcome, event.satisfaction, event.reopen) == ("reject", 2, True)
    assert (event.resolved_version, event.given_at) == (2, AT + timedelta(hours=5))
    stored = await pool.fetchrow("SELECT comment, reopens FROM feedback")
    assert dict(stored) == {"comment": "still there", "reopens": True}
    # The comment stays in intake: the event carries the outcome and score only.
    assert "still there" not in await pool.fetchval(
        "SELECT string_agg(convert_from(payload, 'UTF8'), '') FROM outbox"
    )

    # Routing reopens the order: intake's view is open again, and after a new resolution
    # feedback is taken again.
    back = AT + timedelta(hours=5, minutes=1)
    await apply(pool, intake, incoming("o1", reopened(rid, 3, back), back))
    row = await pool.fetchrow("SELECT status, status_notes FROM requests")
    assert row["status"] == "open"
    assert row["status_notes"].startswith("Reopened: the reporter rejected the resolution.")
    with pytest.raises(FeedbackRefused, match="the work order is open"):
        await give(intake, pool, rid, "confirm")
    again = back + timedelta(hours=1)
    await apply(pool, intake, incoming("r2", resolved(rid, 4, again), again))
    confirmed = await give(intake, pool, rid, "confirm")
    assert confirmed.reopens is False
    assert [e.resolved_version for _, e in await feedback_events(pool)] == [2, 4]
    assert await timeline(pool, rid) == [
        "received",
        "tagged",
        "assigned",
        "resolved",
        "feedback",
        "reopened",
        "resolved",
        "feedback",
    ]


async def test_a_rejection_after_the_window_is_recorded_and_reopens_nothing(pool: Pool) -> None:
    clock = ManualClock(AT)
    intake = Intake(clock, "/gridline/intake")
    (report,) = await file_reports(pool, intake, 1)
    rid = report.request_id
    await apply(
        pool, intake, incoming("a1", assigned(rid), AT), incoming("r1", resolved(rid, 2, AT), AT)
    )
    clock.advance(timedelta(hours=72, seconds=1))  # the default window is 72 hours

    taken = await give(intake, pool, rid, "reject")

    assert taken.reopens is False
    assert "not reopened" in taken.message
    ((_, event),) = await feedback_events(pool)
    assert (event.outcome, event.reopen) == ("reject", False)
    assert await pool.fetchval("SELECT reopens FROM feedback") is False

"""The native API's use cases for one report: who may read it, its status and timeline,
and the reporter's feedback on its resolution (stored with its event: the outbox)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridline.common.events import FeedbackGiven
from gridline.common.ids import new_id
from gridline.common.pg import Outgoing, Pool, add_to_outbox
from gridline.common.policy.catalogue import FeedbackRules
from gridline.intake.adapters import reports
from gridline.intake.domain import feedback, timeline
from gridline.intake.domain.keys import KeyRing
from gridline.intake.handlers import Intake


class ReportNotFound(Exception):
    """No report has that id."""


class NotAllowed(Exception):
    """The credential is neither a client key nor this report's token (403)."""


@dataclass(frozen=True)
class ReportView:
    row: Any
    entries: list[timeline.Entry]
    summary: timeline.Summary


@dataclass(frozen=True)
class FeedbackTaken:
    feedback_id: str
    work_order_id: str
    resolved_version: int
    reopens: bool
    message: str
    given_at: datetime


def _allowed(credential: str, keys: KeyRing, token: str) -> bool:
    """A client key reads every report; a report's token (returned when it was filed)
    reads that one report only."""
    return keys.role_of(credential) is not None or hmac.compare_digest(
        credential.encode(), token.encode()
    )


def _check(row: Any, request_id: str, credential: str, keys: KeyRing) -> None:
    """An unknown id with a credential that is not a client key is refused like a wrong
    token: report ids are not revealed to strangers."""
    if row is None and keys.role_of(credential) is not None:
        raise ReportNotFound(f"report {request_id} not found")
    if row is None or not _allowed(credential, keys, row["token"]):
        raise NotAllowed("the key is not valid, nor is it this report's token")


async def read(pool: Pool, request_id: str, credential: str, keys: KeyRing) -> ReportView:
    """A report, its timeline and their summary."""
    async with pool.acquire() as conn:
        row = await reports.report(conn, request_id)
        _check(row, request_id, credential, keys)
        entries = await reports.entries(conn, row["work_order_id"], request_id)
    return ReportView(row, entries, timeline.summary(entries))


async def give_feedback(
    intake: Intake,
    pool: Pool,
    request_id: str,
    credential: str,
    keys: KeyRing,
    *,
    outcome: feedback.Outcome,
    satisfaction: int,
    comment: str,
) -> FeedbackTaken:
    """Take the reporter's feedback on the current resolution; the feedback row, its
    timeline entry and its FeedbackGiven event commit together. Raises FeedbackRefused."""
    catalogue = intake.policy.catalogue
    rules = catalogue.model.feedback if catalogue else FeedbackRules()
    now = intake.clock.now()
    async with pool.acquire() as conn, conn.transaction():
        # Locked: two concurrent feedbacks on one resolution cannot both be taken.
        row = await reports.report(conn, request_id, lock=True)
        _check(row, request_id, credential, keys)
        feedback.refuse_unless_resolved(row["status"], row["status_notes"])
        version: int = row["event_version"]
        work_order_id: str = row["work_order_id"]
        resolved_at = await reports.resolved_at(
            conn, work_order_id, timeline.work_order_rank(version)
        )
        if resolved_at is None:  # closed views are written with their resolution's entry
            raise feedback.FeedbackRefused("the resolution is not recorded yet; try again shortly")
        verdict = feedback.verdict(
            outcome, resolved_at=resolved_at, now=now, window_hours=rules.reopen_window_hours
        )
        feedback_id = new_id()
        stored = await reports.add_feedback(
            conn,
            feedback_id=feedback_id,
            request_id=request_id,
            work_order_id=work_order_id,
            resolved_version=version,
            outcome=outcome,
            satisfaction=satisfaction,
            comment=comment,
            reopens=verdict.reopens,
            given_at=now,
        )
        if not stored:
            raise feedback.already_given(version)
        event = FeedbackGiven(
            feedback_id=feedback_id,
            report_id=request_id,
            work_order_id=work_order_id,
            resolved_version=version,
            outcome=outcome,
            satisfaction=satisfaction,
            reopen=verdict.reopens,
            given_at=now,
        )
        # The event's id is the feedback's: the timeline entry and the event name each other.
        await add_to_outbox(conn, intake.source, [Outgoing(event, now, feedback_id)])
        entry = timeline.of_feedback(
            feedback_id,
            work_order_id,
            request_id,
            version,
            now,
            {"outcome": outcome, "satisfaction": satisfaction, "reopens": verdict.reopens},
        )
        await reports.add_entries(conn, [entry])
    return FeedbackTaken(feedback_id, work_order_id, version, verdict.reopens, verdict.message, now)

"""Timelines and feedback rules as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridline.intake.domain import feedback, timeline
from gridline.intake.domain.timeline import Entry

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def entry(kind: str, rank: int, minutes: int, **detail: object) -> Entry:
    return Entry(f"{kind}-{rank}", "wo1", None, kind, rank, AT + timedelta(minutes=minutes), detail)


def test_entries_follow_cause_not_clocks_and_the_summary_reads_the_latest_move() -> None:
    wo = timeline.work_order_rank
    entries = [
        entry("reopened", wo(3), 50, state="open", tier="community"),
        entry("feedback", timeline.feedback_rank(2), 51),  # a clock a little ahead
        entry("resolved", wo(2), 40, state="resolved", tier="grid"),
        entry("assigned", wo(1), 1, state="open", tier="grid"),
        entry("tagged", timeline.TAGGED_RANK, 0, severity="urgent"),
        entry("received", timeline.RECEIVED_RANK, 0),
    ]
    kinds = [e.kind for e in timeline.in_order(entries)]
    assert kinds == ["received", "tagged", "assigned", "resolved", "feedback", "reopened"]
    summary = timeline.summary(entries)
    assert (summary.state, summary.tier, summary.tags) == (
        "open",
        "community",
        {"severity": "urgent"},
    )
    assert summary.counts == {"escalations": 0, "resolutions": 1, "reopenings": 1, "feedback": 1}
    assert timeline.summary([]).state == "received"


@pytest.mark.parametrize(
    ("outcome", "after", "reopens"),
    [
        ("reject", timedelta(hours=72), True),
        ("reject", timedelta(hours=72, seconds=1), False),
        ("confirm", timedelta(hours=1), False),
    ],
)
def test_only_a_rejection_within_the_window_reopens(
    outcome: feedback.Outcome, after: timedelta, reopens: bool
) -> None:
    verdict = feedback.verdict(outcome, resolved_at=AT, now=AT + after, window_hours=72)
    assert verdict.reopens is reopens


def test_feedback_before_the_resolution_is_refused_naming_the_state() -> None:
    with pytest.raises(feedback.FeedbackRefused, match=r"is open \(Assigned at tier grid\)"):
        feedback.refuse_unless_resolved("open", "Assigned at tier grid")

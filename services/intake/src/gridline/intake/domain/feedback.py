"""A reporter's feedback on a resolution: when it is taken, and whether it reopens the order.

Feedback is taken only while the work order is resolved, once per report and resolution
(after a reopening and a new resolution it is taken again). A rejection at most the
catalogue's `feedback.reopen_window_hours` after the resolution reopens the order; a later
one is recorded and reopens nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Outcome = Literal["confirm", "reject"]
MAX_COMMENT = 1000


class FeedbackRefused(Exception):
    """Feedback cannot be taken now (409); the message names the work order's state."""


@dataclass(frozen=True)
class Verdict:
    reopens: bool
    message: str


def refuse_unless_resolved(status: str, status_notes: str | None) -> None:
    """Intake's view of the order says `closed` while it is resolved, and once it was
    closed (结案) or cancelled (作废), which its notes say: those take no feedback."""
    if status == "closed" and status_notes and status_notes.startswith(("Closed", "Cancelled")):
        raise FeedbackRefused(f"the work order is final ({status_notes}); feedback is not taken")
    if status != "closed":
        now = f" ({status_notes})" if status_notes else ""
        raise FeedbackRefused(
            f"the work order is {status}{now}; feedback is taken once it is resolved"
        )


def already_given(resolved_version: int) -> FeedbackRefused:
    return FeedbackRefused(
        f"feedback on this resolution (work order version {resolved_version}) was already "
        "given; it is taken again only after the order is reopened and resolved anew"
    )


def verdict(
    outcome: Outcome, *, resolved_at: datetime, now: datetime, window_hours: float
) -> Verdict:
    """What the feedback does: only a rejection within the window reopens the order."""
    if outcome == "confirm":
        return Verdict(False, "Thank you: the resolution is confirmed.")
    window = timedelta(hours=window_hours)
    if now - resolved_at <= window:
        return Verdict(
            True,
            "Recorded: the resolution is rejected within the reopening window "
            f"({window_hours:g} hours), so the work order is reopened.",
        )
    return Verdict(
        False,
        f"Recorded; the rejection came more than {window_hours:g} hours after the "
        "resolution, so the work order is not reopened.",
    )

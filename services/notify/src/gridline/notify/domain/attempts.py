"""What one attempt to deliver a notification leads to: delivered, tried again later, or
given up."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gridline.notify.domain.signing import backoff_seconds


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Outcome:
    notification_id: str
    subscription: str
    attempts: int  # including this one
    verdict: Verdict
    error: str | None = None
    retry_in: float = 0.0  # seconds until the next attempt, for Verdict.RETRY


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff_base: float
    backoff_max: float

    def judge(
        self, notification_id: str, subscription: str, attempts: int, error: str | None
    ) -> Outcome:
        """The outcome of attempt number `attempts`, which failed with `error` (or not)."""
        if error is None:
            return Outcome(notification_id, subscription, attempts, Verdict.DELIVERED)
        if attempts >= self.max_attempts:
            return Outcome(notification_id, subscription, attempts, Verdict.DEAD, error)
        delay = backoff_seconds(attempts, self.backoff_base, self.backoff_max)
        return Outcome(notification_id, subscription, attempts, Verdict.RETRY, error, delay)

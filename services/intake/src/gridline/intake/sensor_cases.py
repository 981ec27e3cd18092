"""Sensors' use case: a breach opens one work order per sensor and metric at a time.

Readings under the threshold store nothing. A breach is a report (source=sensor, the
metric's category and severity) stored through intake's own store path, so it gets its
ReportSubmitted event, timeline, duplicate merging (并单) and idempotency like any report.
While the order a sensor's breach opened is open, further breaches of that sensor and
metric open nothing: they are counted on the sensor's row. Once the order is resolved
(work-order events keep requests.status), the next breach opens a new one.

A breach is stored in its own transaction under a per-sensor advisory lock, not through
the group commit: breaches are rare next to citizens' reports, and the check and the
insert must not interleave with another breach of the same sensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from gridline.common.events import ReportTags
from gridline.common.pg import Pool
from gridline.intake.adapters import sensors
from gridline.intake.domain.idempotency import Claim, Once
from gridline.intake.domain.submission import Submission
from gridline.intake.handlers import Intake, KeyTaken


@dataclass(frozen=True)
class Breach:
    sensor_id: str
    metric: str
    value: float
    observed_at: datetime


@dataclass(frozen=True)
class Taken:
    """What a breach did: opened a report (with its token), or was counted against the
    sensor's open order (`deduplicated`, `readings` so far)."""

    report_id: str
    work_order_id: str
    deduplicated: bool
    readings: int
    token: str | None = None


async def take_breach(
    intake: Intake,
    pool: Pool,
    breach: Breach,
    submission: Submission,
    tags: ReportTags,
    once: Once | None = None,
    answer: Callable[[Taken], bytes] = lambda _: b"",
) -> Taken:
    """Open the sensor's work order, or count the breach against the open one. With
    `once`, the new report is stored only if its Idempotency-Key is claimed (else
    KeyTaken), and `answer` is remembered with the key."""
    accepted = intake.accept(submission, "sensor", tags)
    if once is not None:  # the answer names the work order: set once the report is stored
        accepted = replace(accepted, claim=Claim(once, accepted.request_id, 201, b""))
    async with pool.acquire() as conn, conn.transaction():
        await sensors.lock(conn, breach.sensor_id, breach.metric)
        held = await sensors.count_if_open(
            conn, breach.sensor_id, breach.metric, breach.value, breach.observed_at
        )
        if held is not None:
            return Taken(held.report_id, held.work_order_id, True, held.readings)
        if await intake.store_accepted(conn, [accepted]):
            raise KeyTaken(once)  # rolls back: another request holds the key
        work_order_id = await sensors.record_order(
            conn,
            breach.sensor_id,
            breach.metric,
            accepted.request_id,
            breach.value,
            breach.observed_at,
            accepted.requested_at,
        )
        taken = Taken(accepted.request_id, work_order_id, False, 1, accepted.token)
        if once is not None:
            await sensors.remember_answer(conn, once, answer(taken))
    return taken

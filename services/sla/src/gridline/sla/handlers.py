"""sla's use cases: follow work-order events, fire breaches once, measure the tiers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gridline.common.clock import Clock
from gridline.common.consumer import Incoming
from gridline.common.events import (
    Assignment,
    DeadlineBreached,
    DepartmentCalledIn,
    DepartmentReportedIn,
    LifecycleEvent,
    PolicyActivated,
    ReportInBreached,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderClosed,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    WorkOrderReturned,
)
from gridline.common.ids import stable_id
from gridline.common.pg import Connection, Outgoing, Pool, add_to_outbox
from gridline.common.policy.catalogue import CatalogueModel, Targets
from gridline.common.policy.tiers import Tier
from gridline.sla import measuring
from gridline.sla.adapters import report_in, store, warnings
from gridline.sla.domain import measures
from gridline.sla.domain.attainment import Attainment, attainment
from gridline.sla.domain.counts import Tally

SCHEMA = "sla"
# The events that start an assignment's clock.
AssignmentEvent = WorkOrderAssigned | WorkOrderEscalated | WorkOrderReopened

WINDOWS: dict[str, timedelta] = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def counted(r: store.Resolution) -> measures.Counted:
    """A resolution as the tallies count it (its due time unknown if it was stored before
    migration 0005)."""
    return measures.Counted(
        measures.scopes_of(r.grid_id, r.community_id, r.street_id, r.district_id),
        r.category,
        r.day,
        Tier(r.tier),
        None if r.due_at is None else r.resolved_at <= r.due_at,
        (r.resolved_at - r.opened_at).total_seconds(),
        r.resolved_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0),
    )


def breach_event_id(order_id: str, seq: int) -> str:
    """The same breach always has the same id, so even a re-fired one is applied once."""
    return stable_id("breach", order_id, seq)


def _breach(r: Any, now: datetime) -> Outgoing:
    event = DeadlineBreached(
        work_order_id=r["work_order_id"],
        assignment_seq=r["assignment_seq"],
        tier=r["tier"],
        unit_id=r["unit_id"],
        due_at=r["due_at"],
        breached_at=now,
    )
    return Outgoing(event, now, breach_event_id(r["work_order_id"], r["assignment_seq"]))


def _missed(r: Any, now: datetime) -> Outgoing:
    event = ReportInBreached(
        work_order_id=r["work_order_id"],
        call_seq=r["call_seq"],
        department_id=r["department_id"],
        due_at=r["due_at"],
        breached_at=now,
    )
    return Outgoing(event, now, stable_id("report-in", r["work_order_id"], r["call_seq"]))


Claim = Callable[[Connection, datetime, int, datetime | None], Awaitable[list[Any]]]
# What the scheduler fires, by kind: the claim, the event of a claimed row, its due column.
# Warnings first: a red one due with its breach (warnings.red 1.0) fires before the breach
# in the same round, never lost to the escalation that replaces its assignment.
FIRING: dict[str, tuple[Claim, Callable[[Any, datetime], Outgoing], str]] = {
    "warnings": (warnings.claim_due, warnings.event_of, "warn_at"),
    "deadlines": (store.claim_due, _breach, "due_at"),
    "report_ins": (report_in.claim_due, _missed, "due_at"),
}


@dataclass
class Sla:
    clock: Clock
    source: str
    bucket_seconds: list[float]

    async def on_policies(self, conn: Connection, events: list[Incoming[PolicyActivated]]) -> None:
        """A catalogue put into effect brings its tier targets (defaults where it has none).
        Each catalogue sets every tier, so the last of the batch decides. A jurisdiction or
        catalogue also brings the units rankings list (measuring.policies)."""
        await measuring.policies(conn, [e.data for e in events])
        catalogues = [
            e.data for e in events if e.data.kind == "catalogue" and e.data.catalogue is not None
        ]
        if not catalogues:
            return
        latest = catalogues[-1]
        targets = Targets.model_validate((latest.catalogue or {}).get("targets") or {})
        zone = str(
            (latest.catalogue or {}).get("timezone")
            or CatalogueModel.model_fields["timezone"].default
        )
        await store.set_targets(conn, latest.version, targets.model_dump(), zone)

    async def on_assignments(
        self, conn: Connection, events: list[Incoming[AssignmentEvent]]
    ) -> None:
        """Arm each new assignment's deadline (a reopened order's too: its clock restarts);
        count openings, escalations and reopenings."""
        deadlines: dict[str, store.Deadline] = {}
        warned: dict[str, list[warnings.PendingWarning]] = {}
        tally = Tally()
        for incoming in events:
            event = incoming.data
            if isinstance(event, WorkOrderEscalated):
                a: Assignment | None = event.assignment
                tally.escalated(event.from_tier, event.assignment.tier, event.reason)
            elif isinstance(event, WorkOrderReopened):
                a = event.assignment
                tally.reopened(event.street_id, event.resolved_tier, event.category)
            else:
                a = event.assignment
                if event.version <= 1:  # assigned after triage: opened already counted
                    tally.opened(event.street_id, event.category, event.source)
            if a is None:
                continue
            # One row per order in one upsert; the consumer sends each order once per call,
            # and should it not, the newest assignment is the one that counts.
            known = deadlines.get(event.work_order_id)
            if known is None or known.seq < a.seq:
                deadlines[event.work_order_id] = store.Deadline(
                    event.work_order_id, a.seq, a.tier, a.unit_id, a.due_at
                )
                warned[event.work_order_id] = warnings.of_assignment(event, a)
        await store.set_deadlines(conn, list(deadlines.values()))
        await self._arm_warnings(conn, deadlines, warned)
        await store.add_to_counters(conn, tally.items())
        await measuring.assignments(conn, events)

    async def on_resolutions(
        self, conn: Connection, events: list[Incoming[WorkOrderResolved]]
    ) -> None:
        """Disarm the deadlines; count each resolution once, however often it is delivered.
        A reopened order resolved again counts once more (its latest resolution is the one
        attainment sees); the reopening itself is counted as rework."""
        resolved = {e.data.work_order_id: e.data for e in reversed(events)}  # first one wins
        await store.clear_deadlines(conn, list(resolved))
        await warnings.disarm(conn, list(resolved))
        stored = {
            r.work_order_id: store.Resolution(
                r.work_order_id,
                r.counted_tier,  # the resolver's tier, not the order's
                r.category,
                r.street_id,
                r.district_id,
                r.opened_at,
                r.resolved_at,
                r.version,
                r.grid_id,
                r.community_id,
                r.due_at,
                measures.local_day(r.resolved_at, r.time_zone),
            )
            for r in resolved.values()
        }
        fresh, replaced = await store.record_resolutions(conn, list(stored.values()))
        added = [counted(stored[order_id]) for order_id in sorted(fresh)]
        removed = [counted(r) for r in replaced]
        await store.add_to_tallies(conn, measures.changes(added, removed))
        await store.add_to_hourly(conn, measures.hourly_changes(added, removed))
        tally = Tally()
        for order_id in sorted(fresh):
            r = resolved[order_id]
            seconds = (r.resolved_at - r.opened_at).total_seconds()
            tally.resolved(r.street_id, r.counted_tier, r.category, seconds, self.bucket_seconds)
        await store.add_to_counters(conn, tally.items())
        await report_in.disarm(conn, [(order_id, None) for order_id in resolved])
        await measuring.resolutions(
            conn,
            [resolved[order_id] for order_id in sorted(fresh)],
            added,
            removed,
        )

    async def on_lifecycle(self, conn: Connection, events: list[Incoming[LifecycleEvent]]) -> None:
        """Stop an order's deadlines when it is cancelled or closed, or returned (its new
        assignment's deadline armed, none while held for triage); keep the report-in
        deadline of a department called in until it reports in."""
        deadlines: dict[str, store.Deadline] = {}
        warned: dict[str, list[warnings.PendingWarning]] = {}
        stopped: list[str] = []
        calls: list[report_in.ReportInDeadline] = []
        answered: list[tuple[str, int | None]] = []
        for incoming in events:
            e = incoming.data
            if isinstance(e, WorkOrderReturned) and e.assignment is not None:
                a = e.assignment
                deadlines[e.work_order_id] = store.Deadline(
                    e.work_order_id, a.seq, a.tier, a.unit_id, a.due_at
                )
                warned[e.work_order_id] = warnings.of_assignment(e, a)
            elif isinstance(e, WorkOrderReturned | WorkOrderCancelled | WorkOrderClosed):
                deadlines.pop(e.work_order_id, None)
                warned.pop(e.work_order_id, None)
                stopped.append(e.work_order_id)
                if not isinstance(e, WorkOrderReturned):
                    answered.append((e.work_order_id, None))
            elif isinstance(e, DepartmentCalledIn):
                calls.append(
                    report_in.ReportInDeadline(
                        e.work_order_id, e.call_seq, e.department_id, e.report_in_due_at
                    )
                )
            elif isinstance(e, DepartmentReportedIn):
                answered.append((e.work_order_id, e.call_seq))
        await store.clear_deadlines(conn, stopped)
        await warnings.disarm(conn, stopped)
        await store.set_deadlines(conn, list(deadlines.values()))
        await self._arm_warnings(conn, deadlines, warned)
        await report_in.arm(conn, calls)
        await report_in.disarm(conn, answered)
        await measuring.lifecycle(conn, events)

    async def fire_due_deadlines(self, pool: Pool, limit: int = 500) -> int:
        """Emit one breach per passed deadline, in the transaction that marks it fired."""
        return (await self.fire("deadlines", pool, limit))[0]

    async def fire_due_warnings(self, pool: Pool, limit: int = 500) -> int:
        """Emit one DeadlineWarning per passed yellow or red point (a red one names the
        holder's supervisor: the district for a department)."""
        return (await self.fire("warnings", pool, limit))[0]

    async def fire_due_report_ins(self, pool: Pool, limit: int = 500) -> int:
        """Emit one ReportInBreached per call whose department did not report in."""
        return (await self.fire("report_ins", pool, limit))[0]

    async def fire(
        self, kind: str, pool: Pool, limit: int, after: datetime | None = None
    ) -> tuple[int, datetime | None]:
        """One round of a kind (FIRING's keys): claim what is due (from `after` on, if
        given) and mark it fired (one statement), emit its events, all in one transaction:
        the event and the mark commit together, or neither does and the deadline fires
        later under the same event id. Returns how many fired and the latest due time."""
        claim, event_of, due = FIRING[kind]
        now = self.clock.now()
        async with pool.acquire() as conn, conn.transaction():
            rows = await claim(conn, now, limit, after)
            if not rows:
                return 0, None
            await add_to_outbox(conn, self.source, [event_of(r, now) for r in rows])
        return len(rows), max(r[due] for r in rows)

    @staticmethod
    async def _arm_warnings(
        conn: Connection,
        deadlines: dict[str, store.Deadline],
        warned: dict[str, list[warnings.PendingWarning]],
    ) -> None:
        """After set_deadlines: the warnings of the assignments just armed (older ones'
        stop; an assignment older than the order's stored one arms none)."""
        await warnings.arm(
            conn,
            [(d.work_order_id, d.seq) for d in deadlines.values()],
            [w for order_id in deadlines for w in warned.get(order_id, [])],
        )

    async def attainment(self, conn: Connection) -> dict[str, list[Attainment]]:
        """/metrics' attainment per window, summed from the hourly rows: the window's
        whole UTC hours up to and including the current one (1d: the last 24 hours); hours
        older than the longest window are dropped."""
        hour = self.clock.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        result: dict[str, list[Attainment]] = {}
        for name, length in WINDOWS.items():
            since = hour - length + timedelta(hours=1)
            result[name] = attainment(await store.hourly_sums(conn, since))
        await store.drop_hours_before(conn, hour - max(WINDOWS.values()))
        return result

    async def measures(
        self,
        conn: Connection,
        *,
        scope: str,
        category: str,
        window: str | None,
        month: str | None,
    ) -> tuple[date, date, measures.Figures]:
        """The figures of one scope and category over a window or a month, summed from the
        tallies (raises MeasureProblem for a question that cannot be answered as asked,
        UnknownScope for a unit sla never heard of)."""
        measures.check_scope(scope)
        today = await measuring.today(conn, self.clock.now())
        first, last = measures.window_days(today, window, month)
        await measuring.require_known(conn, scope)
        total = await store.tally_sum(conn, scope, category, first, last)
        targets = await store.targets(conn) or Targets().model_dump()
        return first, last, measures.figures(total, targets)

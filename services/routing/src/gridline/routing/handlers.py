"""Routing's event handlers: each applies a whole batch of consumed events in the
consumer's transaction, deciding per event with the pure domain and writing set-based."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from gridline.common.clock import Clock
from gridline.common.consumer import AfterCommit, Incoming, Rejected, idempotent
from gridline.common.events import (
    DeadlineBreached,
    FeedbackGiven,
    ReportSubmitted,
    WorkOrderEscalated,
    WorkOrderReopened,
)
from gridline.common.pg import Connection
from gridline.routing.adapters import store
from gridline.routing.adapters.events import Change, assigned, escalated, record, reopened
from gridline.routing.adapters.lifecycle_events import closed
from gridline.routing.domain.lifecycle import close
from gridline.routing.domain.placement import Report, explanation, open_for_report, order_limits
from gridline.routing.domain.workorder import (
    WorkOrder,
    breach_applies,
    escalate,
    reopen,
    reopen_applies,
)
from gridline.routing.metrics import RoutingMetrics
from gridline.routing.policy_cache import PolicyHolder
from gridline.routing.snapshots import Snapshots


@dataclass
class EventHandlers:
    clock: Clock
    source: str
    metrics: RoutingMetrics
    policy: PolicyHolder
    # Escalations and reopenings read the policy each order was opened under.
    snapshots: Snapshots | None = field(default=None)

    def __post_init__(self) -> None:
        if self.snapshots is None:
            self.snapshots = Snapshots(self.policy)

    @idempotent
    async def reports_submitted(
        self, conn: Connection, events: list[Incoming[ReportSubmitted]]
    ) -> AfterCommit:
        """Open one work order per new report, and record each duplicate (并单) on the open
        order intake merged it into, opening nothing and emitting nothing for it: one
        look-up of the reports that already have an order, one of the merged-into orders,
        one insert of the orders, one of the merged reports, one outbox write and one
        history insert. Idempotent (no inbox row): a report that has its order, or is
        recorded as merged, is applied again as nothing."""
        policy = self.policy.require()
        reports = [e.data for e in events]
        # A report re-sent under another event id already has its order: open nothing.
        seen = await store.reports_with_orders(conn, [r.report_id for r in reports])
        now = self.clock.now()
        opened: list[tuple[WorkOrder, str]] = []
        changes: list[Change] = []
        merged: list[tuple[str, str, str, datetime]] = []
        to_open = []
        for r in reports:
            if r.report_id in seen:
                continue
            seen.add(r.report_id)
            if r.duplicate_of is not None:
                merged.append((r.report_id, r.duplicate_of, r.source, now))
            else:
                to_open.append(r)
        # Only the reports that open an order are placed: one look-up for all of them.
        places = policy.places_of([(r.lon, r.lat) for r in to_open])
        for r, place in zip(to_open, places, strict=True):
            new = open_for_report(report_of(r), policy, now, place)
            opened.append((new.order, r.description))
            first = new.raised_from or new.order
            change = assigned(first, policy, triage_reason=new.triage_reason)
            tags = {"severity": r.tags.severity, "flags": r.tags.flags}
            why = {"routing": explanation(new, policy)}
            changes.append(replace(change, detail={**change.detail, **tags, **why}))
            if new.raised_from is not None:  # a rule moved it above its category's entry
                changes.append(escalated(first, new.order, policy, reason="rule", note=None))
        # Events of one order share a key, so the order a duplicate joins was opened by an
        # earlier event: in an earlier batch, or in this one.
        wanted = {order_id for _, order_id, _, _ in merged}
        known = {o.id for o, _ in opened}
        missing = wanted - known - await store.existing(conn, sorted(wanted - known))
        if missing:
            raise Rejected(f"duplicate of unknown work order(s) {', '.join(sorted(missing))}")
        await store.insert(conn, opened)
        joined = await store.merge_reports(conn, merged)
        await record(conn, self.source, changes)

        def count() -> None:
            for order, _ in opened:
                self.metrics.opened.labels(order.state.value).inc()
            self.metrics.merged.inc(joined)
            self.metrics.count_escalations(
                c.event for c in changes if isinstance(c.event, WorkOrderEscalated)
            )

        return count

    async def deadlines_breached(
        self, conn: Connection, events: list[Incoming[DeadlineBreached]]
    ) -> AfterCommit:
        """Escalate every order whose current assignment breached: the orders locked in one
        statement, one update, one outbox write and one history insert. A late breach of an
        assignment that already moved on changes nothing."""
        breaches = [e.data for e in events]
        orders = await store.lock(conn, sorted({b.work_order_id for b in breaches}))
        for b in breaches:
            if b.work_order_id not in orders:
                raise Rejected(f"deadline breach for unknown work order {b.work_order_id}")
        assert self.snapshots is not None
        snapshots = await self.snapshots.of_orders(conn, orders.values())
        now = self.clock.now()
        changes: list[Change] = []
        for b in breaches:
            order = orders[b.work_order_id]
            if not breach_applies(order, b.assignment_seq):
                continue
            policy = snapshots[order.policy_version]
            moved = escalate(order, time_limit=order_limits(order, policy), now=now)
            orders[order.id] = moved
            changes.append(escalated(order, moved, policy, reason="timeout", note=None))
        await store.update(conn, list({c.order.id: c.order for c in changes}.values()))
        await record(conn, self.source, changes)
        return lambda: self.metrics.count_escalations(
            c.event for c in changes if isinstance(c.event, WorkOrderEscalated)
        )

    async def feedback_given(
        self, conn: Connection, events: list[Incoming[FeedbackGiven]]
    ) -> AfterCommit | None:
        """Reopen every order whose resolution a reporter rejected within the window, and
        close (结案) every one a reporter confirmed: the orders locked in one statement, one
        update, one outbox write, one history insert. Feedback on a resolution the order
        has moved past (a redelivery under another event id, a second reporter of a
        merged order) changes nothing."""
        wanted = [e.data for e in events if e.data.reopen or e.data.outcome == "confirm"]
        if not wanted:
            return None
        orders = await store.lock(conn, sorted({f.work_order_id for f in wanted}))
        for f in wanted:
            if f.work_order_id not in orders:
                raise Rejected(f"feedback for unknown work order {f.work_order_id}")
        assert self.snapshots is not None
        snapshots = await self.snapshots.of_orders(conn, orders.values())
        now = self.clock.now()
        changes: list[Change] = []
        for f in wanted:
            order = orders[f.work_order_id]
            if not reopen_applies(order, f.resolved_version):
                continue
            policy = snapshots[order.policy_version]
            if f.reopen:
                moved = reopen(order, time_limit=order_limits(order, policy), now=now)
                changes.append(reopened(order, moved, policy, feedback_id=f.feedback_id))
            else:
                moved = close(order, reason="confirmed", now=now)
                changes.append(closed(moved, policy, reason="confirmed", feedback_id=f.feedback_id))
            orders[order.id] = moved
        await store.update(conn, [c.order for c in changes])
        await record(conn, self.source, changes)
        reopenings = sum(isinstance(c.event, WorkOrderReopened) for c in changes)
        return lambda: self.metrics.reopened.inc(reopenings)


def report_of(event: ReportSubmitted) -> Report:
    """What routing needs of a report to open its order, tags included."""
    tags = event.tags
    return Report(
        event.work_order_id,
        event.report_id,
        event.service_code,
        event.source,
        event.lat,
        event.lon,
        needs_triage=tags.needs_triage,
        confidence=tags.confidence,
        candidates=tuple(tags.candidates),
        severity=tags.severity,
        flags=tuple(tags.flags),
        labels=tuple(tags.labels),
        submitted_at=event.submitted_at,
    )

"""The lifecycle's use cases: accept, return, cancel, call-in, report-in (handlers' HTTP
commands), the call's escalation on a missed report-in (an sla event) and the close sweep.

Each locks the order, decides with the pure domain (domain/lifecycle.py) and writes the
order, its event (outbox, keyed by work order) and its history row in one transaction,
through the same helpers as commands.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gridline.common.consumer import AfterCommit, Incoming, Rejected
from gridline.common.events import ReportInBreached
from gridline.common.pg import Connection
from gridline.routing.adapters import lifecycle_events as said
from gridline.routing.adapters import store
from gridline.routing.adapters.events import Change, record, reopened
from gridline.routing.authorisation import Forbidden
from gridline.routing.commands import Commands
from gridline.routing.domain import lifecycle
from gridline.routing.domain.placement import order_limits
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.scope import Action
from gridline.routing.domain.workorder import Place, TransitionRefused, WorkOrder, reopen

# A department's time to report in when the catalogue gives none (report_in_hours).
DEFAULT_REPORT_IN = timedelta(hours=2)


def report_in_limit(policy: Policy, department_id: str) -> timedelta:
    """The department's report-in limit: the catalogue's `report_in_hours` where the
    department has one, else two hours."""
    department = policy.catalogue.departments_by_id.get(department_id)
    hours = department.report_in_hours if department is not None else None
    return timedelta(hours=hours) if hours else DEFAULT_REPORT_IN


@dataclass
class Moves:
    commands: Commands

    def _unit(self, key_unit: str | None, move: str) -> str:
        if key_unit is None:
            raise Forbidden(f"{move} needs a handler key bound to a unit")
        return key_unit

    async def _apply(self, conn: Connection, change: Change) -> WorkOrder:
        await store.update(conn, [change.order])
        await record(conn, self.commands.source, [change])
        return change.order

    async def accept(self, order_id: str, key_unit: str | None) -> WorkOrder:
        unit = self._unit(key_unit, "accept")
        async with self.commands._transaction() as conn:
            order = await self.commands._locked(conn, order_id, unit, Action.ACCEPT)
            policy = await self.commands._snapshot(conn, order)
            done = lifecycle.accept(order, by_unit=unit, now=self.commands.clock.now())
            return await self._apply(conn, said.accepted(done, policy, by_unit=unit))

    async def return_order(
        self,
        order_id: str,
        key_unit: str | None,
        reason: str,
        grid_id: str | None,
        category: str | None,
    ) -> WorkOrder:
        """Returned as in the wrong place or category: placed again at the target (grid
        and/or category; the other kept) or, with neither, held for triage at the district."""
        unit = self._unit(key_unit, "return")
        # The target is placed under the policy in effect (a grid and category that exist now).
        policy = self.commands.policy.require()
        now = self.commands.clock.now()
        async with self.commands._transaction() as conn:
            order = await self.commands._locked(conn, order_id, unit, Action.RETURN)
            if grid_id is None and category is None:
                district = order.place.district_id or policy.jurisdiction.default_district_id()
                moved = lifecycle.return_to_triage(order, district_id=district, now=now)
            else:
                moved = _placed_again(order, policy, grid_id, category, now=now)
            change = said.returned(order, moved, policy, by_unit=unit, reason=reason)
            return await self._apply(conn, change)

    async def cancel(
        self,
        order_id: str,
        key_unit: str | None,
        reason: lifecycle.CancelReason,
        note: str | None,
    ) -> WorkOrder:
        """A duplicate or invalid report; the admin key may cancel too."""
        async with self.commands._transaction() as conn:
            order = await self.commands._locked(conn, order_id, key_unit, Action.CANCEL)
            policy = await self.commands._snapshot(conn, order)
            gone = lifecycle.cancel(order, reason=reason, now=self.commands.clock.now())
            change = said.cancelled(
                gone, policy, by_unit=key_unit or "admin", reason=reason, note=note
            )
            return await self._apply(conn, change)

    async def reopen_recurred(
        self, order_id: str, key_unit: str | None, note: str | None
    ) -> WorkOrder:
        """The problem came back after its resolution (复发): a unit whose subtree holds the
        order reopens it, assigned anew to the tier that resolved it; counted as rework.
        A closed order is final: a recurrence then is a new report."""
        unit = self._unit(key_unit, "reopen")
        async with self.commands._transaction() as conn:
            order = await self.commands._locked(conn, order_id, unit, Action.RESOLVE)
            policy = await self.commands._snapshot(conn, order)
            again = reopen(
                order, time_limit=order_limits(order, policy), now=self.commands.clock.now()
            )
            change = reopened(order, again, policy, recurred_by=unit, note=note)
            return await self._apply(conn, change)

    async def call_in(
        self, order_id: str, key_unit: str | None, department_id: str, note: str | None
    ) -> WorkOrder:
        unit = self._unit(key_unit, "call-in")
        policy = self.commands.policy.require()
        if department_id not in policy.catalogue.departments_by_id:
            raise TransitionRefused(f"department {department_id!r} is not in the catalogue")
        async with self.commands._transaction() as conn:
            order = await self.commands._locked(conn, order_id, unit, Action.CALL_IN)
            called = lifecycle.call_in(
                order,
                department_id=department_id,
                by_unit=unit,
                by_level=policy.unit_level(unit),
                report_in_limit=report_in_limit(policy, department_id),
                now=self.commands.clock.now(),
            )
            return await self._apply(conn, said.called_in(called, policy, note=note))

    async def report_in(self, order_id: str, key_unit: str | None) -> WorkOrder:
        """The called department's key reports in; it reaches the order it was called to,
        not only its own."""
        unit = self._unit(key_unit, "report-in")
        async with self.commands._transaction() as conn:
            # A called department is in the order's scope (domain/scope.called_in).
            order = await self.commands._locked(conn, order_id, unit, Action.ACCEPT)
            policy = await self.commands._snapshot(conn, order)
            done = lifecycle.report_in(order, by_unit=unit, now=self.commands.clock.now())
            return await self._apply(conn, said.reported_in(done, policy))

    # -- the stack's own moves -----------------------------------------------------------

    async def reports_in_breached(
        self, conn: Connection, events: list[Incoming[ReportInBreached]]
    ) -> AfterCommit | None:
        """Escalate to the district every call whose department did not report in: the
        orders locked in one statement, one update, one outbox write, one history insert.
        A breach of a call that was answered, or of an older call, changes nothing."""
        breaches = [e.data for e in events]
        orders = await store.lock(conn, sorted({b.work_order_id for b in breaches}))
        for b in breaches:
            if b.work_order_id not in orders:
                raise Rejected(f"report-in breach for unknown work order {b.work_order_id}")
        policy = self.commands.policy.require()
        now = self.commands.clock.now()
        changes: list[Change] = []
        for b in breaches:
            order = orders[b.work_order_id]
            if not lifecycle.call_overdue_applies(order, b.call_seq):
                continue
            up = lifecycle.escalate_call(order, now=now)
            orders[order.id] = up
            changes.append(said.call_escalated(up, policy, now=now))
        await store.update(conn, list({c.order.id: c.order for c in changes}.values()))
        await record(conn, self.commands.source, changes)
        return None

    async def close_after_window(self, limit: int = 500) -> int:
        """Close resolved orders whose feedback window passed without a rejection, in
        batches: one locking read, one update, one outbox write, one history insert."""
        policy = self.commands.policy.require()
        window = timedelta(hours=policy.catalogue.model.feedback.reopen_window_hours)
        now = self.commands.clock.now()
        async with self.commands._transaction() as conn:
            orders = await store.lock_resolved_before(conn, now - window, limit)
            changes = [
                said.closed(
                    lifecycle.close(o, reason="feedback_window", now=now),
                    policy,
                    reason="feedback_window",
                    feedback_id=None,
                )
                for o in orders
                if lifecycle.close_due(o, window=window, now=now)
            ]
            await store.update(conn, [c.order for c in changes])
            await record(conn, self.commands.source, changes)
        return len(changes)


def _placed_again(
    order: WorkOrder, policy: Policy, grid_id: str | None, code: str | None, *, now: datetime
) -> WorkOrder:
    """The return's target under the policy in effect: a grid of the jurisdiction and a
    category of the catalogue (each defaulting to the order's own)."""
    place = order.place
    if grid_id is not None:
        grid = policy.jurisdiction.grids.get(grid_id)
        if grid is None:
            raise TransitionRefused(
                f"grid {grid_id} is not in jurisdiction {policy.jurisdiction.version}"
            )
        place = Place(grid.grid_id, grid.community_id, grid.street_id, grid.district_id)
    category_code = code or order.category
    category = policy.catalogue.categories_by_code.get(category_code)
    if category is None:
        raise TransitionRefused(
            f"category {category_code!r} is not in the catalogue; send a service_code from"
            " services.json"
        )
    return lifecycle.return_to(
        order,
        place=place,
        category=category_code,
        department_id=category.department,
        entry=category.entry_tier,
        time_limit=policy.time_limits(category_code),
        now=now,
    )

"""sla's use cases: follow work-order events, fire breaches once, measure the tiers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gridline.common.clock import Clock
from gridline.common.events import (
    DeadlineBreached,
    Envelope,
    PolicyActivated,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderResolved,
)
from gridline.common.ids import stable_id
from gridline.common.pg import Connection, Outgoing, Pool, add_to_outbox
from gridline.common.policy.catalogue import Targets
from gridline.common.policy.tiers import Tier
from gridline.sla.adapters import store
from gridline.sla.domain.attainment import Attainment, ResolvedCount, attainment

SCHEMA = "sla"
NONE = "none"  # label value where an order has no street (held for triage)

WINDOWS: dict[str, timedelta] = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def breach_event_id(order_id: str, seq: int) -> str:
    """The same breach always has the same id, so even a re-fired one is applied once."""
    return stable_id("breach", order_id, seq)


@dataclass
class Sla:
    clock: Clock
    source: str
    bucket_seconds: list[float]

    async def on_policy(self, conn: Connection, event: PolicyActivated, _: Envelope) -> None:
        """A catalogue put into effect brings its tier targets (defaults where it has none)."""
        if event.kind != "catalogue" or event.catalogue is None:
            return
        targets = Targets.model_validate(event.catalogue.get("targets") or {})
        await store.set_targets(conn, event.version, targets.model_dump())

    async def on_assigned(self, conn: Connection, event: WorkOrderAssigned, _: Envelope) -> None:
        a = event.assignment
        if a is not None:
            await store.set_deadline(conn, event.work_order_id, a.seq, a.tier, a.unit_id, a.due_at)
        if event.version > 1:
            return  # assigned after triage: opened already counted
        await store.increment(
            conn,
            "gridline_workorders_opened_total",
            {
                "street_id": event.street_id or NONE,
                "category": event.category,
                "source": event.source,
            },
        )

    async def on_escalated(self, conn: Connection, event: WorkOrderEscalated, _: Envelope) -> None:
        a = event.assignment
        await store.set_deadline(conn, event.work_order_id, a.seq, a.tier, a.unit_id, a.due_at)
        await store.increment(
            conn,
            "gridline_escalations_total",
            {"from_tier": event.from_tier, "to_tier": a.tier, "reason": event.reason},
        )

    async def on_resolved(self, conn: Connection, event: WorkOrderResolved, _: Envelope) -> None:
        await store.clear_deadline(conn, event.work_order_id)
        fresh = await store.record_resolution(
            conn,
            event.work_order_id,
            event.tier,
            event.category,
            event.street_id,
            event.district_id,
            event.opened_at,
            event.resolved_at,
        )
        if not fresh:
            return
        await store.increment(
            conn,
            "gridline_workorders_resolved_total",
            {"street_id": event.street_id or NONE, "tier": event.tier, "category": event.category},
        )
        seconds = (event.resolved_at - event.opened_at).total_seconds()
        hist = "gridline_workorder_resolution_seconds"
        for bound in [*self.bucket_seconds, float("inf")]:
            if seconds <= bound:
                await store.increment(
                    conn, f"{hist}_bucket", {"tier": event.tier, "le": _le(bound)}
                )
        await store.increment(conn, f"{hist}_sum", {"tier": event.tier}, seconds)
        await store.increment(conn, f"{hist}_count", {"tier": event.tier})

    async def fire_due_deadlines(self, pool: Pool, limit: int = 500) -> int:
        """Emit one breach per passed deadline, in the transaction that marks it fired."""
        now = self.clock.now()
        async with pool.acquire() as conn, conn.transaction():
            rows = await store.claim_due(conn, now, limit)
            for r in rows:
                event = DeadlineBreached(
                    work_order_id=r["work_order_id"],
                    assignment_seq=r["assignment_seq"],
                    tier=r["tier"],
                    unit_id=r["unit_id"],
                    due_at=r["due_at"],
                    breached_at=now,
                )
                await add_to_outbox(
                    conn,
                    self.source,
                    [
                        Outgoing(
                            event, now, breach_event_id(r["work_order_id"], r["assignment_seq"])
                        )
                    ],
                )
            if rows:
                await store.mark_fired(conn, [r["work_order_id"] for r in rows], now)
        return len(rows)

    async def attainment(self, conn: Connection) -> dict[str, list[Attainment]]:
        now = self.clock.now()
        result: dict[str, list[Attainment]] = {}
        for name, length in WINDOWS.items():
            rows = await store.resolved_counts(conn, now - length)
            result[name] = attainment(
                ResolvedCount(r["district_id"], r["street_id"], Tier(r["tier"]), r["n"])
                for r in rows
            )
        return result


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))

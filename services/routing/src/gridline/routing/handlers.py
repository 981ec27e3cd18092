"""Routing's use cases: one async method per command or event, each in one transaction."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

from gridline.common.clock import Clock
from gridline.common.consumer import NotReadyYet, Rejected
from gridline.common.events import (
    Assignment,
    DeadlineBreached,
    Envelope,
    PolicyActivated,
    ReportSubmitted,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderResolved,
)
from gridline.common.pg import Connection, Outgoing, add_to_outbox
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.common.policy.jurisdiction import Jurisdiction, parse_jurisdiction
from gridline.common.policy.tiers import Tier
from gridline.routing.adapters import store
from gridline.routing.domain.authority import may_act
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import (
    Place,
    State,
    TransitionRefused,
    WorkOrder,
    assign_from_triage,
    breach_applies,
    escalate,
    open_order,
    resolve,
)
from gridline.routing.metrics import RoutingMetrics

SCHEMA = "routing"


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class PolicyHolder:
    """The jurisdiction and catalogue in effect in this process; swapped atomically."""

    jurisdiction: Jurisdiction | None = None
    catalogue: Catalogue | None = None

    @property
    def current(self) -> Policy | None:
        if self.jurisdiction is None or self.catalogue is None:
            return None
        return Policy(self.jurisdiction, self.catalogue)


@dataclass
class Routing:
    clock: Clock
    source: str
    metrics: RoutingMetrics
    policy: PolicyHolder = field(default_factory=PolicyHolder)

    # -- policy ------------------------------------------------------------------------

    async def load_policy(self, conn: Connection) -> None:
        """Take up the latest stored jurisdiction and catalogue: after a restart, and when
        another routing instance loaded a new one."""
        holder = self.policy
        version = await store.latest_version(conn, "jurisdiction")
        if version is not None and (
            holder.jurisdiction is None or holder.jurisdiction.version != version
        ):
            doc = await store.latest_policy(conn, "jurisdiction")
            holder.jurisdiction = await asyncio.to_thread(parse_jurisdiction, doc)
        version = await store.latest_version(conn, "catalogue")
        if version is not None and (
            holder.catalogue is None or holder.catalogue.version_hash != version
        ):
            holder.catalogue = parse_catalogue(await store.latest_policy(conn, "catalogue"))

    async def _unchanged(self, conn: Connection, kind: str, version: str) -> bool:
        """Loading the version already in effect again changes nothing and emits nothing."""
        return await store.latest_version(conn, kind) == version

    async def activate_jurisdiction(
        self, conn: Connection, jurisdiction: Jurisdiction, doc: dict[str, Any]
    ) -> None:
        if await self._unchanged(conn, "jurisdiction", jurisdiction.version):
            return
        now = self.clock.now()
        await store.save_policy(conn, "jurisdiction", jurisdiction.version, doc, now)
        districts = {u.unit_id: u.name for u in jurisdiction.units_at("district")}
        event = PolicyActivated(
            kind="jurisdiction",
            version=jurisdiction.version,
            activated_at=now,
            extent=jurisdiction.extent_geojson(),
            districts=districts,
        )
        await add_to_outbox(conn, self.source, [Outgoing(event, now)])

    async def activate_catalogue(self, conn: Connection, catalogue: Catalogue) -> None:
        if await self._unchanged(conn, "catalogue", catalogue.version_hash):
            return
        now = self.clock.now()
        doc = catalogue.to_dict()
        await store.save_policy(conn, "catalogue", catalogue.version_hash, doc, now)
        event = PolicyActivated(
            kind="catalogue", version=catalogue.version_hash, activated_at=now, catalogue=doc
        )
        await add_to_outbox(conn, self.source, [Outgoing(event, now)])

    def _require_policy(self) -> Policy:
        policy = self.policy.current
        if policy is None:
            raise NotReadyYet("no jurisdiction and catalogue loaded yet")
        return policy

    # -- events ------------------------------------------------------------------------

    async def on_report_submitted(
        self, conn: Connection, report: ReportSubmitted, _: Envelope
    ) -> None:
        policy = self._require_policy()
        if await store.exists_for_report(conn, report.report_id):
            return  # already opened under another event id (e.g. a re-sent report)
        now = self.clock.now()
        place = policy.place_of(report.lon, report.lat)
        category = policy.catalogue.categories_by_code.get(report.service_code)
        triage_reason = None
        if category is None:
            # The catalogue changed after intake accepted it: hold, never drop.
            triage_reason = (
                f"category {report.service_code!r} is not in catalogue {policy.catalogue.version}"
            )
            place = Place(None, None, None, place.district_id)
        elif place.grid_id is None:
            triage_reason = "the location lies inside the city but in no grid"
        order = open_order(
            order_id=report.work_order_id,
            report_id=report.report_id,
            category=report.service_code,
            department_id=category.department if category else "",
            source=report.source,
            lat=report.lat,
            lon=report.lon,
            place=place,
            entry=category.entry_tier if category else Tier.GRID,
            time_limit=policy.time_limits(report.service_code) if category else {},
            now=now,
            policy_version=policy.version,
        )
        if order.state is State.TRIAGE and not order.unit_id:
            order = _with_unit(order, policy.jurisdiction.default_district_id())
        await store.insert(conn, order, report.description)
        await self._emit_assigned(conn, order, policy, now, triage_reason)
        self.metrics.opened.labels(order.state.value).inc()

    async def _emit_assigned(
        self,
        conn: Connection,
        order: WorkOrder,
        policy: Policy,
        now: Any,
        triage_reason: str | None,
    ) -> None:
        triage = order.state is State.TRIAGE
        event = WorkOrderAssigned(
            **self._ref(order, policy),
            source=order.source,
            grid_id=order.place.grid_id,
            community_id=order.place.community_id,
            lat=order.lat,
            lon=order.lon,
            opened_at=order.opened_at,
            assignment=None if triage else self._assignment(order, policy),
            triage_unit_id=order.unit_id if triage else None,
            triage_unit_name=policy.unit_name(order.unit_id) if triage else None,
            triage_reason=triage_reason,
        )
        await self._emit(conn, order, event, now, {"triage_reason": triage_reason})

    async def on_deadline_breached(
        self, conn: Connection, breach: DeadlineBreached, _: Envelope
    ) -> None:
        order = await store.get(conn, breach.work_order_id, for_update=True)
        if order is None:
            raise Rejected(f"deadline breach for unknown work order {breach.work_order_id}")
        if not breach_applies(order, breach.assignment_seq):
            return
        policy = self._require_policy()
        await self._escalate(conn, order, policy, reason="timeout", note=None)

    # -- commands (handler API) --------------------------------------------------------

    async def authorise(self, conn: Connection, key: str) -> str:
        unit = await store.unit_of_key(conn, key_digest(key))
        if unit is None:
            raise Forbidden("unknown handler key")
        return unit

    async def get_order(self, conn: Connection, order_id: str, key_unit: str | None) -> WorkOrder:
        order = await store.get(conn, order_id)
        if order is None:
            raise NotFound(f"work order {order_id} not found")
        if key_unit is not None:
            self._check_scope(key_unit, order)
        return order

    async def resolve(
        self, conn: Connection, order_id: str, key_unit: str, note: str | None
    ) -> WorkOrder:
        policy = self._require_policy()
        order = await self._locked(conn, order_id, key_unit)
        now = self.clock.now()
        resolved = resolve(order, now=now)
        assert order.tier is not None and order.due_at is not None
        await store.update(conn, resolved)
        event = WorkOrderResolved(
            **self._ref(resolved, policy),
            tier=order.tier.value,
            unit_id=order.unit_id,
            **self._unit_names(order.unit_id, policy),
            resolved_by_unit_id=key_unit,
            opened_at=order.opened_at,
            resolved_at=now,
            due_at=order.due_at,
            note=note,
        )
        await self._emit(conn, resolved, event, now, {"by": key_unit, "note": note})
        self.metrics.resolved.labels(order.tier.value).inc()
        return resolved

    async def assign(
        self,
        conn: Connection,
        order_id: str,
        key_unit: str | None,
        grid_id: str,
        service_code: str | None,
    ) -> WorkOrder:
        """Manual triage: put an order held at its district into a grid (and category)."""
        policy = self._require_policy()
        order = await store.get(conn, order_id, for_update=True)
        if order is None:
            raise NotFound(f"work order {order_id} not found")
        if key_unit is not None:
            self._check_scope(key_unit, order)
        grid = policy.jurisdiction.grids.get(grid_id)
        if grid is None:
            raise TransitionRefused(
                f"grid {grid_id} is not in jurisdiction {policy.jurisdiction.version}"
            )
        code = service_code or order.category
        category = policy.catalogue.categories_by_code.get(code)
        if category is None:
            raise TransitionRefused(
                f"category {code!r} is not in the catalogue; send a service_code from services.json"
            )
        now = self.clock.now()
        moved = assign_from_triage(
            order,
            place=Place(grid.grid_id, grid.community_id, grid.street_id, grid.district_id),
            category=code,
            department_id=category.department,
            entry=category.entry_tier,
            time_limit=policy.time_limits(code),
            now=now,
        )
        await store.update(conn, moved)
        await self._emit_assigned(conn, moved, policy, now, None)
        return moved

    async def whistle(
        self, conn: Connection, order_id: str, key_unit: str, note: str | None
    ) -> WorkOrder:
        """The holder declares the matter beyond its tier's authority (吹哨)."""
        policy = self._require_policy()
        order = await self._locked(conn, order_id, key_unit)
        return await self._escalate(conn, order, policy, reason="whistle", note=note)

    # -- helpers -----------------------------------------------------------------------

    async def _locked(self, conn: Connection, order_id: str, key_unit: str) -> WorkOrder:
        order = await store.get(conn, order_id, for_update=True)
        if order is None:
            raise NotFound(f"work order {order_id} not found")
        self._check_scope(key_unit, order)
        return order

    def _check_scope(self, key_unit: str, order: WorkOrder) -> None:
        policy = self._require_policy()
        if not may_act(key_unit, order, policy.ancestors):
            raise Forbidden(
                f"this key is bound to unit {key_unit}; work order {order.id} is held by "
                f"{order.unit_id}, outside that unit's subtree"
            )

    async def _escalate(
        self, conn: Connection, order: WorkOrder, policy: Policy, *, reason: str, note: str | None
    ) -> WorkOrder:
        now = self.clock.now()
        moved = escalate(order, time_limit=policy.time_limits(order.category), now=now)
        assert order.tier is not None and moved.tier is not None
        await store.update(conn, moved)
        event = WorkOrderEscalated(
            **self._ref(moved, policy),
            reason=reason,
            note=note,
            from_tier=order.tier.value,
            from_unit_id=order.unit_id,
            assignment=self._assignment(moved, policy),
        )
        await self._emit(
            conn, moved, event, now, {"reason": reason, "from": order.unit_id, "note": note}
        )
        self.metrics.escalated.labels(order.tier.value, moved.tier.value, reason).inc()
        return moved

    async def _emit(
        self, conn: Connection, order: WorkOrder, event: Any, now: Any, detail: dict[str, Any]
    ) -> None:
        await add_to_outbox(conn, self.source, [Outgoing(event, now)])
        await store.record_history(conn, order, event.TYPE, {**detail, "unit_id": order.unit_id})

    @staticmethod
    def _ref(order: WorkOrder, policy: Policy) -> dict[str, Any]:
        category = policy.catalogue.categories_by_code.get(order.category)
        return {
            "work_order_id": order.id,
            "report_id": order.report_id,
            "version": order.version,
            "category": order.category,
            "category_name_en": category.name_en if category else order.category,
            "category_name_zh": category.name_zh if category else order.category,
            "street_id": order.place.street_id,
            "district_id": order.place.district_id,
            "policy_version": order.policy_version,
            "time_zone": policy.catalogue.timezone,
        }

    @staticmethod
    def _unit_names(unit_id: str, policy: Policy) -> dict[str, str]:
        zh, en = policy.unit_names(unit_id)
        return {"unit_name": policy.unit_name(unit_id), "unit_name_zh": zh, "unit_name_en": en}

    @staticmethod
    def _assignment(order: WorkOrder, policy: Policy) -> Assignment:
        assert order.tier is not None and order.due_at is not None
        return Assignment(
            seq=order.assignment_seq,
            tier=order.tier.value,
            unit_id=order.unit_id,
            **Routing._unit_names(order.unit_id, policy),
            unit_level=policy.unit_level(order.unit_id),
            assigned_at=order.assigned_at,
            due_at=order.due_at,
        )


def _with_unit(order: WorkOrder, unit_id: str) -> WorkOrder:
    from dataclasses import replace

    return replace(order, unit_id=unit_id)


__all__ = ["Forbidden", "NotFound", "Routing", "TransitionRefused", "key_digest"]

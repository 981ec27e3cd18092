"""Routing's commands and queries for the HTTP API: what handlers and the admin do.

Each opens its connection in one place (`_transaction` for writes, `_reading` for reads),
decides with the pure domain and writes the order, its events and its history together.
Refusals are exceptions the API maps to HTTP in one place: NotFound, Forbidden, NoKey,
TransitionRefused, UnknownUnits and PolicyNotLoaded.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridline.common.clock import Clock
from gridline.common.events import WorkOrderEscalated
from gridline.common.pg import Connection, Pool
from gridline.common.policy.catalogue import Catalogue
from gridline.routing import policy_cache
from gridline.routing.adapters import keys, store
from gridline.routing.adapters.events import Change, assigned, escalated, record, resolved
from gridline.routing.authorisation import (
    Forbidden,
    NoKey,
    check_scope,
    check_triage_target,
    unit_of_key,
)
from gridline.routing.domain.authority import units_in_view
from gridline.routing.domain.duties import (
    OutsideDutyList,
    resolver_duty_refusal,
    unknown_local_units,
)
from gridline.routing.domain.jurisdiction import Jurisdiction
from gridline.routing.domain.lifecycle import tier_of_level
from gridline.routing.domain.placement import order_limits, place_in_grid
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.scope import Action
from gridline.routing.domain.workorder import WorkOrder, escalate, resolve
from gridline.routing.metrics import RoutingMetrics
from gridline.routing.policy_cache import PolicyHolder
from gridline.routing.snapshots import Snapshots


class NotFound(Exception):
    """No work order has that id."""


class UnknownUnits(Exception):
    """Handler keys name units that neither the jurisdiction nor the catalogue has, or
    digests of revoked keys (a revoked key is never bound again)."""


@dataclass
class Commands:
    pool: Pool
    clock: Clock
    source: str
    metrics: RoutingMetrics
    policy: PolicyHolder
    admin_key: str | None
    # The policy each order was opened under; bootstrap shares one with the event handlers.
    snapshots: Snapshots | None = field(default=None)

    def __post_init__(self) -> None:
        if self.snapshots is None:
            self.snapshots = Snapshots(self.policy)

    async def _snapshot(self, conn: Connection, order: WorkOrder) -> Policy:
        assert self.snapshots is not None
        return await self.snapshots.of(conn, order)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """Commits when the block ends; rolls back everything if it raises (a refusal too)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn:
            yield conn

    # -- who asks ----------------------------------------------------------------------

    async def identify(self, key: str | None) -> str | None:
        """The unit a handler key is bound to; None for the admin key, which sees every
        order. The policy comes first: without it no key can be checked against units."""
        policy = self.policy.require()
        if key is None:
            raise NoKey("send a handler key as 'Authorization: Bearer <key>'")
        if self.admin_key and hmac.compare_digest(key.encode(), self.admin_key.encode()):
            return None
        async with self._reading() as conn:
            return await unit_of_key(conn, key, policy, self.clock.now())

    # -- queries -----------------------------------------------------------------------

    async def work_order(
        self, order_id: str, key_unit: str | None
    ) -> tuple[WorkOrder, list[dict[str, Any]], int]:
        """One order, its history and how many reports it has (duplicates merged into it),
        if the key may see it."""
        self.policy.require()
        async with self._reading() as conn:
            order = await store.get(conn, order_id)
            if order is None:
                raise NotFound(f"work order {order_id} not found")
            check_scope(await self._snapshot(conn, order), key_unit, order, Action.READ)
            history = await store.history(conn, order_id)
            return order, history, await store.report_count(conn, order_id)

    async def open_orders(
        self, key_unit: str | None, limit: int, state: str | None = None
    ) -> list[WorkOrder]:
        """Unresolved orders in the key's view (every one for admin), soonest due first;
        only those in `state` (open or triage) when given."""
        policy = self.policy.require()
        units = None if key_unit is None else units_in_view(key_unit, policy)
        async with self._reading() as conn:
            return await store.list_open(conn, units, limit, state)

    # -- handler commands --------------------------------------------------------------

    async def resolve(self, order_id: str, key_unit: str | None, note: str | None) -> WorkOrder:
        unit = _handler(key_unit)
        self.policy.require()
        async with self._transaction() as conn:
            order = await self._locked(conn, order_id, unit, Action.RESOLVE)
            policy = await self._snapshot(conn, order)
            current = self.policy.require()
            refusal = resolver_duty_refusal(policy, current, unit, order)
            if refusal is not None:
                raise OutsideDutyList(refusal)
            # The tier of the unit that resolved it, not of the order (a street resolving
            # its grid's order counts as a street resolution); the key's unit is one of the
            # policy in effect.
            by_tier = tier_of_level(current.unit_level(unit))
            done = resolve(order, now=self.clock.now(), by_tier=by_tier)
            await self._write(conn, resolved(order, done, policy, by_unit=unit, note=note))
        assert done.resolved_tier is not None
        self.metrics.resolved.labels(done.resolved_tier.value).inc()
        return done

    async def whistle(self, order_id: str, key_unit: str | None, note: str | None) -> WorkOrder:
        """The holder declares the matter beyond its tier's authority (吹哨)."""
        unit = _handler(key_unit)
        self.policy.require()
        async with self._transaction() as conn:
            order = await self._locked(conn, order_id, unit, Action.ESCALATE)
            policy = await self._snapshot(conn, order)
            moved = escalate(order, time_limit=order_limits(order, policy), now=self.clock.now())
            change = escalated(order, moved, policy, reason="whistle", note=note, actor=unit)
            await self._write(conn, change)
        assert isinstance(change.event, WorkOrderEscalated)
        self.metrics.count_escalations([change.event])
        return moved

    async def assign(
        self, order_id: str, key_unit: str | None, grid_id: str, service_code: str | None
    ) -> WorkOrder:
        """Manual triage: put an order held at its district into a grid (and category)."""
        self.policy.require()
        async with self._transaction() as conn:
            order = await self._locked(conn, order_id, key_unit, Action.TRIAGE)
            policy = await self._snapshot(conn, order)
            check_triage_target(policy, key_unit, grid_id)
            moved = place_in_grid(
                order, policy, grid_id=grid_id, service_code=service_code, now=self.clock.now()
            )
            await self._write(conn, assigned(moved, policy, triage_reason=None))
        return moved

    async def _locked(
        self,
        conn: Connection,
        order_id: str,
        key_unit: str | None,
        action: Action = Action.RESOLVE,
    ) -> WorkOrder:
        """The order, locked, if the key may do `action` to it under its snapshot."""
        order = (await store.lock(conn, [order_id])).get(order_id)
        if order is None:
            raise NotFound(f"work order {order_id} not found")
        check_scope(await self._snapshot(conn, order), key_unit, order, action)
        return order

    async def _write(self, conn: Connection, change: Change) -> None:
        await store.update(conn, [change.order])
        await record(conn, self.source, [change])

    # -- admin commands ----------------------------------------------------------------

    async def bind_handler_keys(
        self,
        bindings: Sequence[tuple[str, str]],
        *,
        skip_unknown: bool,
        expires_at: Sequence[datetime | None] | None = None,
    ) -> tuple[int, list[str], list[str]]:
        """Bind (key digest, unit) pairs, each expiring at its `expires_at` (never when
        None); returns how many were bound, the unit ids skipped because the policy in
        effect does not know them, and those whose key was revoked (never bound again)."""
        policy = self.policy.require()
        expiry = list(expires_at) if expires_at is not None else [None] * len(bindings)
        unknown = [unit for _, unit in bindings if not policy.knows_unit(unit)]
        async with self._transaction() as conn:
            dead = await keys.revoked_among(conn, [digest for digest, _ in bindings])
            revoked = [unit for digest, unit in bindings if digest in dead]
            if (unknown or revoked) and not skip_unknown:
                problems = [f"unknown unit ids: {', '.join(unknown)}"] if unknown else []
                if revoked:
                    problems.append(f"revoked keys of units {', '.join(revoked)} (issue new ones)")
                raise UnknownUnits(
                    f"{'; '.join(problems)}; load the jurisdiction and catalogue that have"
                    " the units first, or send skip_unknown"
                )
            live = [
                (digest, unit, until)
                for (digest, unit), until in zip(bindings, expiry, strict=True)
                if unit not in unknown and digest not in dead
            ]
            await keys.bind(conn, live, self.clock.now())
        return len(live), unknown, revoked

    async def activate_jurisdiction(self, jurisdiction: Jurisdiction, doc: dict[str, Any]) -> None:
        async with self._transaction() as conn:
            await policy_cache.store_jurisdiction(
                conn, self.source, jurisdiction, doc, self.clock.now()
            )
            await self._revoke_keys_of_lost_units(conn, jurisdiction=jurisdiction)
        self.policy.jurisdiction = jurisdiction

    async def activate_catalogue(self, catalogue: Catalogue) -> None:
        jurisdiction = self.policy.jurisdiction
        if jurisdiction is not None and catalogue.duty_lists is not None:
            levels = {
                u.unit_id: u.level
                for level in ("street", "community")
                for u in jurisdiction.units_at(level)
            }
            unknown = unknown_local_units(catalogue.duty_lists, levels)
            if unknown:
                raise UnknownUnits(
                    f"duty_lists.local names units that are no street or community of"
                    f" jurisdiction {jurisdiction.version}: {', '.join(unknown)}"
                )
        async with self._transaction() as conn:
            await policy_cache.store_catalogue(conn, self.source, catalogue, self.clock.now())
            await self._revoke_keys_of_lost_units(conn, catalogue=catalogue)
        self.policy.catalogue = catalogue

    async def _revoke_keys_of_lost_units(
        self,
        conn: Connection,
        *,
        jurisdiction: Jurisdiction | None = None,
        catalogue: Catalogue | None = None,
    ) -> list[str]:
        """A key survives a reload only while its unit exists: the keys of units the new
        policy lacks are revoked with it, so a unit id reused later inherits none."""
        j = jurisdiction or self.policy.jurisdiction
        c = catalogue or self.policy.catalogue
        if j is None or c is None:
            return []
        new = Policy(j, c)
        return await keys.revoke_unknown_units(
            conn, new.knows_unit, f"unit not in policy {new.version}", self.clock.now()
        )


def _handler(key_unit: str | None) -> str:
    """Resolving and whistling are a unit's acts: the admin key holds no tier."""
    if key_unit is None:
        raise Forbidden("resolve and escalate need a handler key bound to a unit")
    return key_unit

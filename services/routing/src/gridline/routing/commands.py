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
from dataclasses import dataclass
from typing import Any

from gridline.common.clock import Clock
from gridline.common.events import WorkOrderEscalated
from gridline.common.pg import Connection, Pool
from gridline.common.policy.catalogue import Catalogue
from gridline.routing import policy_cache
from gridline.routing.adapters import store
from gridline.routing.adapters.events import Change, assigned, escalated, record, resolved
from gridline.routing.authorisation import Forbidden, NoKey, check_scope, unit_of_key
from gridline.routing.domain.authority import units_in_view
from gridline.routing.domain.jurisdiction import Jurisdiction
from gridline.routing.domain.lifecycle import tier_of_level
from gridline.routing.domain.placement import place_in_grid
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder, escalate, resolve
from gridline.routing.metrics import RoutingMetrics
from gridline.routing.policy_cache import PolicyHolder


class NotFound(Exception):
    """No work order has that id."""


class UnknownUnits(Exception):
    """Handler keys name units that neither the jurisdiction nor the catalogue has."""


@dataclass
class Commands:
    pool: Pool
    clock: Clock
    source: str
    metrics: RoutingMetrics
    policy: PolicyHolder
    admin_key: str | None

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
        self.policy.require()
        if key is None:
            raise NoKey("send a handler key as 'Authorization: Bearer <key>'")
        if self.admin_key and hmac.compare_digest(key.encode(), self.admin_key.encode()):
            return None
        async with self._reading() as conn:
            return await unit_of_key(conn, key)

    # -- queries -----------------------------------------------------------------------

    async def work_order(
        self, order_id: str, key_unit: str | None
    ) -> tuple[WorkOrder, list[dict[str, Any]], int]:
        """One order, its history and how many reports it has (duplicates merged into it),
        if the key may see it."""
        policy = self.policy.require()
        async with self._reading() as conn:
            order = await store.get(conn, order_id)
            if order is None:
                raise NotFound(f"work order {order_id} not found")
            check_scope(policy, key_unit, order)
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
        policy = self.policy.require()
        async with self._transaction() as conn:
            order = await self._locked(conn, policy, order_id, unit)
            # The tier of the unit that resolved it, not of the order (a street resolving
            # its grid's order counts as a street resolution).
            by_tier = tier_of_level(policy.unit_level(unit))
            done = resolve(order, now=self.clock.now(), by_tier=by_tier)
            await self._write(conn, resolved(order, done, policy, by_unit=unit, note=note))
        assert done.resolved_tier is not None
        self.metrics.resolved.labels(done.resolved_tier.value).inc()
        return done

    async def whistle(self, order_id: str, key_unit: str | None, note: str | None) -> WorkOrder:
        """The holder declares the matter beyond its tier's authority (吹哨)."""
        unit = _handler(key_unit)
        policy = self.policy.require()
        async with self._transaction() as conn:
            order = await self._locked(conn, policy, order_id, unit)
            moved = escalate(
                order, time_limit=policy.time_limits(order.category), now=self.clock.now()
            )
            change = escalated(order, moved, policy, reason="whistle", note=note, actor=unit)
            await self._write(conn, change)
        assert isinstance(change.event, WorkOrderEscalated)
        self.metrics.count_escalations([change.event])
        return moved

    async def assign(
        self, order_id: str, key_unit: str | None, grid_id: str, service_code: str | None
    ) -> WorkOrder:
        """Manual triage: put an order held at its district into a grid (and category)."""
        policy = self.policy.require()
        async with self._transaction() as conn:
            order = await self._locked(conn, policy, order_id, key_unit)
            moved = place_in_grid(
                order, policy, grid_id=grid_id, service_code=service_code, now=self.clock.now()
            )
            await self._write(conn, assigned(moved, policy, triage_reason=None))
        return moved

    async def _locked(
        self, conn: Connection, policy: Policy, order_id: str, key_unit: str | None
    ) -> WorkOrder:
        order = (await store.lock(conn, [order_id])).get(order_id)
        if order is None:
            raise NotFound(f"work order {order_id} not found")
        check_scope(policy, key_unit, order)
        return order

    async def _write(self, conn: Connection, change: Change) -> None:
        await store.update(conn, [change.order])
        await record(conn, self.source, [change])

    # -- admin commands ----------------------------------------------------------------

    async def bind_handler_keys(
        self, keys: Sequence[tuple[str, str]], *, skip_unknown: bool
    ) -> tuple[int, list[str]]:
        """Bind (key digest, unit) pairs; returns how many were bound and the unit ids
        skipped because the policy in effect does not know them."""
        policy = self.policy.require()
        unknown = [unit for _, unit in keys if not policy.knows_unit(unit)]
        if unknown and not skip_unknown:
            raise UnknownUnits(
                f"unknown unit ids: {', '.join(unknown)}; load the jurisdiction and catalogue"
                " that have them first, or send skip_unknown"
            )
        known = [(digest, unit) for digest, unit in keys if unit not in unknown]
        async with self._reading() as conn:
            await store.put_handler_keys(conn, known)  # executemany is atomic by itself
        return len(known), unknown

    async def activate_jurisdiction(self, jurisdiction: Jurisdiction, doc: dict[str, Any]) -> None:
        async with self._transaction() as conn:
            await policy_cache.store_jurisdiction(
                conn, self.source, jurisdiction, doc, self.clock.now()
            )
        self.policy.jurisdiction = jurisdiction

    async def activate_catalogue(self, catalogue: Catalogue) -> None:
        async with self._transaction() as conn:
            await policy_cache.store_catalogue(conn, self.source, catalogue, self.clock.now())
        self.policy.catalogue = catalogue


def _handler(key_unit: str | None) -> str:
    """Resolving and whistling are a unit's acts: the admin key holds no tier."""
    if key_unit is None:
        raise Forbidden("resolve and escalate need a handler key bound to a unit")
    return key_unit

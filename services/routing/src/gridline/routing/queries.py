"""The order queries: orders by unit, state, category and due time, one order's history
with who did what and why, and a unit's work queue. Scoped by the key: a unit sees its
subtree (a department what it holds and its categories), the admin key everything."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from gridline.routing.adapters import queries
from gridline.routing.adapters.queries import OrderFilter
from gridline.routing.authorisation import Forbidden
from gridline.routing.commands import Commands
from gridline.routing.domain.authority import units_in_view
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder


class BadCursor(ValueError):
    """The cursor was not one this API gave out."""


def encode_cursor(order: WorkOrder) -> str:
    due = order.due_at.isoformat() if order.due_at else None
    return base64.urlsafe_b64encode(json.dumps([due, order.id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        due, order_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return (None if due is None else datetime.fromisoformat(due)), str(order_id)
    except (ValueError, TypeError) as exc:
        raise BadCursor(f"cursor {cursor!r} is not one this API gave out") from exc


@dataclass(frozen=True)
class Page:
    orders: list[WorkOrder]
    next_cursor: str | None


def actor_of(event_type: str, detail: dict[str, Any]) -> str:
    """Who made a move, from its history row: the resolving or whistling unit, sla for a
    timeout, the reporter for a reopening, routing for an assignment."""
    if detail.get("actor"):
        return str(detail["actor"])
    if detail.get("by"):
        return str(detail["by"])
    reason = detail.get("reason")
    if reason == "timeout":
        return "sla"
    if reason == "feedback":
        return "reporter"
    if reason == "whistle" and detail.get("from"):
        return str(detail["from"])
    return "routing"


@dataclass
class OrderQueries:
    commands: Commands

    def _view(self, key_unit: str | None, policy: Policy) -> tuple[list[str] | None, str | None]:
        """(units whose held orders the key sees, department whose categories it reads)."""
        if key_unit is None:
            return None, None
        department = key_unit if key_unit in policy.catalogue.departments_by_id else None
        return units_in_view(key_unit, policy), department

    async def find(
        self,
        key_unit: str | None,
        wanted: OrderFilter,
        unit: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Orders in the key's view matching `wanted`; `unit` narrows to that unit's
        subtree, which must lie in the key's view."""
        policy = self.commands.policy.require()
        units, department = self._view(key_unit, policy)
        if unit is not None:
            if not policy.knows_unit(unit):
                raise Forbidden(f"unit {unit} is not in the policy in effect ({policy.version})")
            narrowed = units_in_view(unit, policy)
            if units is not None and unit not in units:
                raise Forbidden(f"unit {unit} lies outside this key's unit {key_unit}'s subtree")
            units, department = narrowed, None
        f = replace(wanted, units=units, department=department)
        if cursor is not None:
            f = replace(f, after=decode_cursor(cursor))
        async with self.commands.pool.acquire() as conn:
            orders = await queries.find(conn, f, limit + 1)
        more = len(orders) > limit
        orders = orders[:limit]
        return Page(orders, encode_cursor(orders[-1]) if more else None)

    async def queue(self, key_unit: str | None, unit: str, limit: int, cursor: str | None) -> Page:
        """The orders `unit` itself holds and has not finished, soonest due first."""
        policy = self.commands.policy.require()
        if not policy.knows_unit(unit):
            raise Forbidden(f"unit {unit} is not in the policy in effect ({policy.version})")
        if key_unit is not None and key_unit != unit and key_unit not in policy.ancestors(unit):
            raise Forbidden(
                f"unit {unit}'s queue lies outside this key's unit {key_unit}'s subtree"
            )
        f = OrderFilter(units=[unit], unfinished=True)
        if cursor is not None:
            f = replace(f, after=decode_cursor(cursor))
        async with self.commands.pool.acquire() as conn:
            orders = await queries.find(conn, f, limit + 1)
        more = len(orders) > limit
        orders = orders[:limit]
        return Page(orders, encode_cursor(orders[-1]) if more else None)

    async def history(
        self, order_id: str, key_unit: str | None
    ) -> tuple[WorkOrder, list[dict[str, Any]]]:
        """Every move of the order: its event, when, who (actor), why (reason), the note
        and the explanation stored with it."""
        order, rows, _ = await self.commands.work_order(order_id, key_unit)
        entries = [
            {
                "version": r["version"],
                "event_type": r["event_type"],
                "at": r["at"],
                "actor": actor_of(r["event_type"], r["detail"]),
                "reason": r["detail"].get("reason"),
                "note": r["detail"].get("note"),
                "unit_id": r["detail"].get("unit_id"),
                "detail": r["detail"],
            }
            for r in rows
        ]
        return order, entries

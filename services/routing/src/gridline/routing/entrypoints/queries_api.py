"""Routing's order queries over HTTP: search, one order's history, a unit's work queue.
Paged with limit and cursor; scoped by the key (a unit's subtree; admin: the city)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Security
from pydantic import BaseModel, Field

from gridline.common.http import answers
from gridline.routing.adapters.queries import OrderFilter
from gridline.routing.domain.workorder import State
from gridline.routing.entrypoints.api import BEARER, UNAVAILABLE, Service, _key_unit
from gridline.routing.entrypoints.views import WorkOrderView
from gridline.routing.queries import OrderQueries, Page

QUERY: dict[str, Any] = {
    "tags": ["queries"],
    "dependencies": [Security(BEARER)],
    "responses": answers(
        {
            400: "the cursor is not one this API gave out",
            401: "no key",
            403: "the key is unknown, revoked or expired, or the unit or order lies outside"
            " its unit's reach",
            404: "no such work order",
            503: UNAVAILABLE,
        }
    ),
}
Limit = Annotated[int, Query(ge=1, le=500, description="orders per page")]
Cursor = Annotated[
    str | None, Query(description="next_cursor of the previous page; absent: the first page")
]


class WorkOrderPage(BaseModel):
    items: list[WorkOrderView]
    next_cursor: str | None = Field(description="Send as `cursor` for the next page; null: last.")


class HistoryEntry(BaseModel):
    version: int = Field(description="The order's version this move made.")
    event_type: str
    at: datetime
    actor: str = Field(description="Who moved it: a unit id, sla (timeout), reporter, routing.")
    reason: str | None
    note: str | None
    unit_id: str | None = Field(description="The unit holding the order after the move.")
    detail: dict[str, Any] = Field(description="Everything stored with the move: its explanation.")


class WorkOrderHistory(BaseModel):
    order: WorkOrderView
    history: list[HistoryEntry]


def add_routes(app: FastAPI) -> None:
    def page(svc: Any, result: Page) -> WorkOrderPage:
        return WorkOrderPage(
            items=[WorkOrderView.of(o, svc.policy.current) for o in result.orders],
            next_cursor=result.next_cursor,
        )

    @app.get("/v1/search/workorders", response_model=WorkOrderPage, **QUERY)
    async def search_work_orders(
        request: Request,
        svc: Service,
        unit_id: Annotated[
            str | None, Query(description="held in this unit's subtree (a department: by it)")
        ] = None,
        state: Annotated[list[State] | None, Query(description="any of these states")] = None,
        category: Annotated[list[str] | None, Query(description="any of these categories")] = None,
        due_before: Annotated[datetime | None, Query(description="due before this time")] = None,
        due_after: Annotated[
            datetime | None, Query(description="due at or after this time")
        ] = None,
        overdue: Annotated[
            bool, Query(description="only unfinished orders past their due time")
        ] = False,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> WorkOrderPage:
        """Work orders in the key's view, soonest due first (those without a due time,
        held for triage, last), filtered by unit, state, category and due time."""
        key_unit = await _key_unit(request, svc)
        wanted = OrderFilter(
            states=[s.value for s in state or []],
            categories=category or [],
            due_before=due_before,
            due_after=due_after,
            overdue_at=svc.runtime.clock.now() if overdue else None,
        )
        result = await OrderQueries(svc.commands).find(key_unit, wanted, unit_id, limit, cursor)
        return page(svc, result)

    # `:path`: a unit id may hold a "/" (sent as %2F, which the server decodes before
    # routing), and the route must still find its "/queue".
    @app.get("/v1/units/{unit_id:path}/queue", response_model=WorkOrderPage, **QUERY)
    async def unit_work_queue(
        unit_id: Annotated[str, Path(description="the unit's id, percent-encoded")],
        request: Request,
        svc: Service,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> WorkOrderPage:
        """A unit's work queue: the unfinished orders it holds itself, soonest due first.
        The unit's key, a key above it, or the admin key."""
        key_unit = await _key_unit(request, svc)
        return page(svc, await OrderQueries(svc.commands).queue(key_unit, unit_id, limit, cursor))

    @app.get("/v1/workorders/{order_id}/history", response_model=WorkOrderHistory, **QUERY)
    async def work_order_history(order_id: str, request: Request, svc: Service) -> WorkOrderHistory:
        """One order with every move made on it: event, time, actor, reason, note and the
        explanation stored with it, oldest first."""
        key_unit = await _key_unit(request, svc)
        order, entries = await OrderQueries(svc.commands).history(order_id, key_unit)
        return WorkOrderHistory(
            order=WorkOrderView.of(order, svc.policy.current),
            history=[HistoryEntry.model_validate(e) for e in entries],
        )

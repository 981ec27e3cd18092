"""Routing's HTTP API: handler commands on work orders and the admin policy loader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from gridline.common.auth import bearer, require_admin
from gridline.common.http import answers, service_app
from gridline.common.policy.catalogue import CatalogueInvalid, parse_catalogue
from gridline.common.policy.jurisdiction import JurisdictionInvalid, parse_jurisdiction
from gridline.routing import handlers
from gridline.routing.adapters import store
from gridline.routing.bootstrap import RoutingService, bootstrap
from gridline.routing.config import RoutingSettings
from gridline.routing.domain.workorder import TransitionRefused, WorkOrder


class WorkOrderView(BaseModel):
    id: str
    report_id: str
    category: str
    state: str
    tier: str | None
    unit_id: str
    unit_name: str
    assignment_seq: int
    assigned_at: datetime
    due_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    grid_id: str | None
    community_id: str | None
    street_id: str | None
    district_id: str | None
    lat: float
    lon: float
    version: int
    policy_version: str
    history: list[dict[str, Any]] | None = None


class HandlerAction(BaseModel):
    note: str | None = Field(
        default=None, max_length=2000, description="Shown in the order's history."
    )


class Triage(BaseModel):
    grid_id: str = Field(min_length=1, description="The grid that should hold the order.")
    service_code: str | None = Field(
        default=None, description="A category from services.json, to correct it."
    )


class HandlerKey(BaseModel):
    unit_id: str = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex digest of the key.")


class HandlerKeys(BaseModel):
    keys: list[HandlerKey] = Field(min_length=1)
    skip_unknown: bool = Field(
        default=False,
        description="Bind the keys of units in effect and list the others as skipped "
        "instead of refusing the whole request with 422.",
    )


BEARER = HTTPBearer(
    auto_error=False,
    description="`Authorization: Bearer <key>`: a handler key (bound to one unit) or the admin key.",
)


UNAVAILABLE = "the policy is not loaded yet, or the database is unavailable; nothing was changed"
WORK: dict[str, Any] = {
    "tags": ["work orders"],
    "dependencies": [Security(BEARER)],
    "responses": answers(
        {
            401: "no key",
            403: "the key is unknown, or the order is outside its unit's subtree",
            404: "no such work order",
            409: "the order's state does not allow this move",
            503: UNAVAILABLE,
        }
    ),
}
ADMIN: dict[str, Any] = {
    "tags": ["admin"],
    "dependencies": [Security(BEARER)],
    "responses": answers({401: "no key", 403: "not the admin key", 503: UNAVAILABLE}),
}


@contextmanager
def _refusals_as_http() -> Iterator[None]:
    """The domain's refusals as HTTP: unknown order 404, outside the key's unit 403, a move
    the order's state does not allow 409. Raised inside the transaction, so it rolls back."""
    try:
        yield
    except handlers.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except handlers.Forbidden as exc:
        raise HTTPException(403, str(exc)) from None
    except TransitionRefused as exc:
        raise HTTPException(409, str(exc)) from None


def _service(request: Request) -> RoutingService:
    svc: RoutingService = request.app.state.service
    return svc


Service = Annotated[RoutingService, Depends(_service)]


def _view(
    order: WorkOrder, svc: RoutingService, history: list[dict[str, Any]] | None = None
) -> WorkOrderView:
    policy = svc.routing.policy.current
    p = order.place
    return WorkOrderView(
        id=order.id,
        report_id=order.report_id,
        category=order.category,
        state=order.state.value,
        tier=order.tier.value if order.tier else None,
        unit_id=order.unit_id,
        unit_name=policy.unit_name(order.unit_id) if policy else order.unit_id,
        assignment_seq=order.assignment_seq,
        assigned_at=order.assigned_at,
        due_at=order.due_at,
        opened_at=order.opened_at,
        resolved_at=order.resolved_at,
        grid_id=p.grid_id,
        community_id=p.community_id,
        street_id=p.street_id,
        district_id=p.district_id,
        lat=order.lat,
        lon=order.lon,
        version=order.version,
        policy_version=order.policy_version,
        history=history,
    )


async def _key_unit(request: Request, svc: RoutingService) -> str | None:
    """The unit a handler key is bound to; None for the admin key (sees everything)."""
    token = bearer(request)
    if token is None:
        raise HTTPException(401, "send a handler key as 'Authorization: Bearer <key>'")
    if svc.settings.admin_key and token == svc.settings.admin_key:
        return None
    async with svc.runtime.pool.acquire() as conn:
        try:
            return await svc.routing.authorise(conn, token)
        except handlers.Forbidden as exc:
            raise HTTPException(403, str(exc)) from None


def _policy_loaded(svc: RoutingService) -> None:
    if svc.routing.policy.current is None:
        raise HTTPException(
            503,
            "no jurisdiction and catalogue loaded yet; run gridline jurisdiction load and gridline catalogue load",
        )


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    app = service_app(
        "routing",
        description="Jurisdiction rules and work-order state: handlers resolve and escalate here.",
        settings=settings or RoutingSettings(),
        bootstrap=bootstrap,
    )

    @app.get("/v1/workorders/{order_id}", response_model=WorkOrderView, **WORK)
    async def get_work_order(order_id: str, request: Request, svc: Service) -> WorkOrderView:
        """One work order with its history; a handler key sees its unit's subtree."""
        _policy_loaded(svc)
        unit = await _key_unit(request, svc)
        async with svc.runtime.pool.acquire() as conn:
            try:
                order = await svc.routing.get_order(conn, order_id, unit)
            except handlers.NotFound as exc:
                raise HTTPException(404, str(exc)) from None
            except handlers.Forbidden as exc:
                raise HTTPException(403, str(exc)) from None
            history = await store.history(conn, order_id)
        return _view(order, svc, history)

    @app.get("/v1/workorders", response_model=list[WorkOrderView], **WORK)
    async def list_work_orders(
        request: Request, svc: Service, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[WorkOrderView]:
        """Open work orders held by the key's unit or any unit below it, soonest due first;
        with the admin key, every open order of the city (those held for triage last)."""
        _policy_loaded(svc)
        unit = await _key_unit(request, svc)
        policy = svc.routing.policy.current
        assert policy is not None
        units: list[str] | None = None
        if unit is not None:
            units = (
                [unit, *policy.jurisdiction.descendants(unit)]
                if not policy.catalogue.departments_by_id.get(unit)
                else [unit]
            )
        async with svc.runtime.pool.acquire() as conn:
            orders = await store.list_open(conn, units, limit)
        return [_view(o, svc) for o in orders]

    async def _act(
        order_id: str, request: Request, svc: Service, action: HandlerAction | None, command: str
    ) -> WorkOrderView:
        note = action.note if action else None
        _policy_loaded(svc)
        unit = await _key_unit(request, svc)
        if unit is None:
            raise HTTPException(403, "resolve and escalate need a handler key bound to a unit")
        async with svc.runtime.pool.acquire() as conn, conn.transaction():
            with _refusals_as_http():
                if command == "resolve":
                    order = await svc.routing.resolve(conn, order_id, unit, note)
                else:
                    order = await svc.routing.whistle(conn, order_id, unit, note)
        return _view(order, svc)

    @app.post("/v1/workorders/{order_id}/resolve", response_model=WorkOrderView, **WORK)
    async def resolve_work_order(
        order_id: str,
        request: Request,
        svc: Service,
        action: Annotated[HandlerAction | None, Body()] = None,
    ) -> WorkOrderView:
        """Resolve at the current tier. 409 if it is already resolved or held for triage."""
        return await _act(order_id, request, svc, action, "resolve")

    @app.post("/v1/workorders/{order_id}/escalate", response_model=WorkOrderView, **WORK)
    async def escalate_work_order(
        order_id: str,
        request: Request,
        svc: Service,
        action: Annotated[HandlerAction | None, Body()] = None,
    ) -> WorkOrderView:
        """Whistle (吹哨): beyond this tier's authority, move one tier up. 409 at the top."""
        return await _act(order_id, request, svc, action, "escalate")

    @app.post("/v1/workorders/{order_id}/assign", response_model=WorkOrderView, **WORK)
    async def assign_work_order(
        order_id: str, request: Request, svc: Service, body: Triage
    ) -> WorkOrderView:
        """Manual triage (人工分拨): put an order held at its district into a grid, at its
        category's entry tier. The district's key or the admin key; 409 unless held for triage."""
        _policy_loaded(svc)
        unit = await _key_unit(request, svc)
        async with svc.runtime.pool.acquire() as conn, conn.transaction():
            with _refusals_as_http():
                order = await svc.routing.assign(
                    conn, order_id, unit, body.grid_id, body.service_code
                )
        return _view(order, svc)

    @app.put("/admin/jurisdiction", **ADMIN)
    async def put_jurisdiction(
        request: Request, svc: Service, doc: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Validate a GeoJSON FeatureCollection of grids and put it into effect."""
        require_admin(request, svc.settings.admin_key)
        try:
            jurisdiction = await asyncio.to_thread(parse_jurisdiction, doc)
        except JurisdictionInvalid as exc:
            raise HTTPException(
                422,
                {
                    "message": "jurisdiction rejected; nothing was loaded",
                    "problems": [p.as_dict() for p in exc.problems],
                },
            ) from None
        async with svc.runtime.pool.acquire() as conn, conn.transaction():
            await svc.routing.activate_jurisdiction(conn, jurisdiction, doc)
        svc.routing.policy.jurisdiction = jurisdiction
        return {"version": jurisdiction.version, "grids": len(jurisdiction.grids)}

    @app.put("/admin/catalogue", **ADMIN)
    async def put_catalogue(
        request: Request, svc: Service, doc: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Validate a catalogue (the YAML file as JSON) and put it into effect."""
        require_admin(request, svc.settings.admin_key)
        try:
            catalogue = parse_catalogue(doc)
        except CatalogueInvalid as exc:
            raise HTTPException(
                422, {"message": "catalogue rejected; nothing was loaded", "problems": exc.problems}
            ) from None
        async with svc.runtime.pool.acquire() as conn, conn.transaction():
            await svc.routing.activate_catalogue(conn, catalogue)
        svc.routing.policy.catalogue = catalogue
        return {"version": catalogue.version_hash, "categories": len(catalogue.categories)}

    @app.put("/admin/handler-keys", **ADMIN)
    async def put_handler_keys(request: Request, svc: Service, body: HandlerKeys) -> dict[str, Any]:
        """Bind handler keys (their SHA-256 digests) to units of the jurisdiction or departments."""
        require_admin(request, svc.settings.admin_key)
        _policy_loaded(svc)
        policy = svc.routing.policy.current
        assert policy is not None
        unknown = [k.unit_id for k in body.keys if not policy.knows_unit(k.unit_id)]
        if unknown and not body.skip_unknown:
            raise HTTPException(
                422,
                f"unknown unit ids: {', '.join(unknown)}; load the jurisdiction and catalogue"
                " that have them first, or send skip_unknown",
            )
        known = [(k.key_sha256, k.unit_id) for k in body.keys if k.unit_id not in unknown]
        async with svc.runtime.pool.acquire() as conn:
            await store.put_handler_keys(conn, known)
        return {"keys": len(known), "skipped": unknown}

    @app.get("/admin/policy", **ADMIN)
    async def get_policy(request: Request, svc: Service) -> dict[str, Any]:
        """The versions of the jurisdiction and catalogue in effect."""
        require_admin(request, svc.settings.admin_key)
        holder = svc.routing.policy
        return {
            "jurisdiction": holder.jurisdiction.version if holder.jurisdiction else None,
            "catalogue": holder.catalogue.version_hash if holder.catalogue else None,
        }

    return app

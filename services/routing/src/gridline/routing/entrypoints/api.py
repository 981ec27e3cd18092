"""Routing's HTTP API: handler commands on work orders and the admin policy loader.

Routes parse input and call one command; the commands' refusals become HTTP answers in
one place (`_answer_refusals`)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from gridline.common.auth import bearer, require_admin
from gridline.common.http import Problem, answers, service_app
from gridline.common.policy.catalogue import CatalogueInvalid, parse_catalogue
from gridline.common.settings import load
from gridline.routing.authorisation import Forbidden, NoKey
from gridline.routing.bootstrap import RoutingService, bootstrap
from gridline.routing.commands import NotFound, UnknownUnits
from gridline.routing.config import RoutingSettings
from gridline.routing.domain.jurisdiction import JurisdictionInvalid, parse_jurisdiction
from gridline.routing.domain.placement import NotRoutable, Report, preview
from gridline.routing.domain.policy import rules_of
from gridline.routing.domain.rules_file import RulesInvalid
from gridline.routing.domain.workorder import TransitionRefused
from gridline.routing.entrypoints.views import (
    CallIn,
    Cancel,
    HandlerAction,
    HandlerKeys,
    PolicyRejected,
    Return,
    RouteTest,
    Triage,
    WorkOrderView,
)
from gridline.routing.moves import Moves
from gridline.routing.policy_cache import PolicyNotLoaded
from gridline.routing.queries import BadCursor

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
            403: "the key is unknown, revoked or expired, its unit is gone, or the order is"
            " outside its unit's reach",
            404: "no such work order",
            409: "the order's state does not allow this move, or the resolver's duty list"
            " excludes its category",
            503: UNAVAILABLE,
        }
    ),
}
ADMIN: dict[str, Any] = {
    "tags": ["admin"],
    "dependencies": [Security(BEARER)],
    "responses": answers({401: "no key", 403: "not the admin key", 503: UNAVAILABLE}),
}


def admin_answering(codes: dict[int, str], model: Any = Problem) -> dict[str, Any]:
    """ADMIN, with more answers in its OpenAPI `responses` (of the shape `model`)."""
    return {**ADMIN, "responses": {**ADMIN["responses"], **answers(codes, model)}}


POLICY_LOAD = admin_answering(
    {422: "the body does not fit, or the policy was rejected"}, PolicyRejected
)

# The commands' refusals as HTTP. Raised inside a command's transaction, so it rolled back.
REFUSALS: dict[type[Exception], int] = {
    NoKey: 401,
    Forbidden: 403,
    NotFound: 404,
    TransitionRefused: 409,
    UnknownUnits: 422,
    BadCursor: 400,
    PolicyNotLoaded: 503,
}


def _answer_refusals(app: FastAPI) -> None:
    async def refusal(_: Request, exc: Exception) -> JSONResponse:
        status = next(REFUSALS[c] for c in type(exc).__mro__ if c in REFUSALS)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    for cls in REFUSALS:
        app.add_exception_handler(cls, refusal)


async def _service(request: Request) -> RoutingService:
    # async: FastAPI runs a plain def dependency in a worker thread (a thread hop per request)
    svc: RoutingService = request.app.state.service
    return svc


Service = Annotated[RoutingService, Depends(_service)]


async def _key_unit(request: Request, svc: RoutingService) -> str | None:
    """The unit the request's handler key is bound to; None for the admin key."""
    return await svc.commands.identify(bearer(request))


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    app = service_app(
        "routing",
        description="Jurisdiction rules and work-order state: handlers resolve and escalate here.",
        settings=settings or load(RoutingSettings),
        bootstrap=bootstrap,
    )
    _answer_refusals(app)

    @app.get("/v1/workorders/{order_id}", response_model=WorkOrderView, **WORK)
    async def get_work_order(order_id: str, request: Request, svc: Service) -> WorkOrderView:
        """One work order with its history; a handler key sees its unit's subtree."""
        unit = await _key_unit(request, svc)
        order, history, reports = await svc.commands.work_order(order_id, unit)
        return WorkOrderView.of(order, svc.policy.current, history, reports)

    @app.get("/v1/workorders", response_model=list[WorkOrderView], **WORK)
    async def list_work_orders(
        request: Request,
        svc: Service,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        state: Annotated[
            Literal["open", "accepted", "triage"] | None,
            Query(description="only orders in this state (default: every unresolved one)"),
        ] = None,
    ) -> list[WorkOrderView]:
        """Open work orders held by the key's unit or any unit below it, soonest due first;
        with the admin key, every open order of the city (those held for triage last)."""
        unit = await _key_unit(request, svc)
        orders = await svc.commands.open_orders(unit, limit, state)
        return [WorkOrderView.of(o, svc.policy.current) for o in orders]

    @app.post("/v1/workorders/{order_id}/resolve", response_model=WorkOrderView, **WORK)
    async def resolve_work_order(
        order_id: str,
        request: Request,
        svc: Service,
        action: Annotated[HandlerAction | None, Body()] = None,
    ) -> WorkOrderView:
        """Resolve at the current tier. 409 if it is already resolved or held for triage."""
        unit = await _key_unit(request, svc)
        order = await svc.commands.resolve(order_id, unit, action.note if action else None)
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/escalate", response_model=WorkOrderView, **WORK)
    async def escalate_work_order(
        order_id: str,
        request: Request,
        svc: Service,
        action: Annotated[HandlerAction | None, Body()] = None,
    ) -> WorkOrderView:
        """Whistle (吹哨): beyond this tier's authority, move one tier up. 409 at the top."""
        unit = await _key_unit(request, svc)
        order = await svc.commands.whistle(order_id, unit, action.note if action else None)
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/assign", response_model=WorkOrderView, **WORK)
    async def assign_work_order(
        order_id: str, request: Request, svc: Service, body: Triage
    ) -> WorkOrderView:
        """Manual triage (人工分拨): put an order held at its district into a grid, at its
        category's entry tier. The district's key or the admin key; 409 unless held for triage."""
        unit = await _key_unit(request, svc)
        order = await svc.commands.assign(order_id, unit, body.grid_id, body.service_code)
        return WorkOrderView.of(order, svc.policy.current)

    # -- the lifecycle's moves (moves.py) ----------------------------------------------

    @app.post("/v1/workorders/{order_id}/reopen", response_model=WorkOrderView, **WORK)
    async def reopen_work_order(
        order_id: str,
        request: Request,
        svc: Service,
        action: Annotated[HandlerAction | None, Body()] = None,
    ) -> WorkOrderView:
        """The problem recurred (复发) after its resolution: open again at the tier that
        resolved it, counted as rework. 409 unless resolved (a closed order is final)."""
        unit = await _key_unit(request, svc)
        note = action.note if action else None
        order = await Moves(svc.commands).reopen_recurred(order_id, unit, note)
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/accept", response_model=WorkOrderView, **WORK)
    async def accept_work_order(order_id: str, request: Request, svc: Service) -> WorkOrderView:
        """The holder acknowledges the order (签收); the due time runs on. 409 unless open."""
        unit = await _key_unit(request, svc)
        order = await Moves(svc.commands).accept(order_id, unit)
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/return", response_model=WorkOrderView, **WORK)
    async def return_work_order(
        order_id: str, request: Request, svc: Service, body: Return
    ) -> WorkOrderView:
        """Return (退回) as in the wrong place or category: placed again in `grid_id` and/or
        at `service_code`'s entry tier, or with neither held for triage at the district.
        409 unless open or accepted, or for an unknown grid or category."""
        unit = await _key_unit(request, svc)
        order = await Moves(svc.commands).return_order(
            order_id, unit, body.reason, body.grid_id, body.service_code
        )
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/cancel", response_model=WorkOrderView, **WORK)
    async def cancel_work_order(
        order_id: str, request: Request, svc: Service, body: Cancel
    ) -> WorkOrderView:
        """Cancel (作废) a duplicate or invalid order: final. 409 once resolved, closed or
        cancelled."""
        unit = await _key_unit(request, svc)
        order = await Moves(svc.commands).cancel(order_id, unit, body.reason, body.note)
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/call-in", response_model=WorkOrderView, **WORK)
    async def call_in_department(
        order_id: str, request: Request, svc: Service, body: CallIn
    ) -> WorkOrderView:
        """A street or district calls a department in (吹哨); it must report in within its
        report-in limit or the call escalates to the district. 409 from a grid or
        community, while another call awaits its report-in, or for an unknown department."""
        unit = await _key_unit(request, svc)
        order = await Moves(svc.commands).call_in(order_id, unit, body.department_id, body.note)
        return WorkOrderView.of(order, svc.policy.current)

    @app.post("/v1/workorders/{order_id}/report-in", response_model=WorkOrderView, **WORK)
    async def report_in(order_id: str, request: Request, svc: Service) -> WorkOrderView:
        """The called department's key reports in (报到). 409 if no call awaits it."""
        unit = await _key_unit(request, svc)
        order = await Moves(svc.commands).report_in(order_id, unit)
        return WorkOrderView.of(order, svc.policy.current)

    @app.put("/admin/jurisdiction", **POLICY_LOAD)
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
        await svc.commands.activate_jurisdiction(jurisdiction, doc)
        return {"version": jurisdiction.version, "grids": len(jurisdiction.grids)}

    @app.put("/admin/catalogue", **POLICY_LOAD)
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
        try:
            rules_of(catalogue)
        except RulesInvalid as exc:
            raise HTTPException(
                422,
                {
                    "message": f"rule file {exc.file} rejected; nothing was loaded, the policy"
                    " in effect stays",
                    "problems": exc.lines(),
                },
            ) from None
        await svc.commands.activate_catalogue(catalogue)
        return {"version": catalogue.version_hash, "categories": len(catalogue.categories)}

    @app.put("/admin/handler-keys", **ADMIN)
    async def put_handler_keys(request: Request, svc: Service, body: HandlerKeys) -> dict[str, Any]:
        """Bind handler keys (their SHA-256 digests) to units of the jurisdiction or departments,
        optionally expiring; a revoked key is never bound again (listed under `revoked`)."""
        require_admin(request, svc.settings.admin_key)
        bound, skipped, revoked = await svc.commands.bind_handler_keys(
            [(k.key_sha256, k.unit_id) for k in body.keys],
            skip_unknown=body.skip_unknown,
            expires_at=[k.expires_at for k in body.keys],
        )
        return {"keys": bound, "skipped": skipped, "revoked": revoked}

    @app.post("/admin/routes/test", **ADMIN)
    async def test_route(request: Request, svc: Service, body: RouteTest) -> dict[str, Any]:
        """Where a report would go under the policy in effect, and why: the rules matched in
        order (with their lines), the grid found and the assignment (unit, tier, due time).
        Read-only: nothing is opened or stored."""
        require_admin(request, svc.settings.admin_key)
        policy = svc.policy.require()
        report = Report(
            "preview",
            "preview",
            body.category,
            body.source,
            body.lat,
            body.long,
            severity=body.severity,
            flags=tuple(body.flags),
            labels=tuple(body.labels),
        )
        try:
            return preview(report, policy, body.at or svc.commands.clock.now())
        except NotRoutable as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/admin/policy", **ADMIN)
    async def get_policy(request: Request, svc: Service) -> dict[str, Any]:
        """The versions of the jurisdiction and catalogue in effect."""
        require_admin(request, svc.settings.admin_key)
        holder = svc.policy
        return {
            "jurisdiction": holder.jurisdiction.version if holder.jurisdiction else None,
            "catalogue": holder.catalogue.version_hash if holder.catalogue else None,
        }

    # Versions and rollback, key revocation, and the order queries live in their own modules.
    from gridline.routing.entrypoints import admin_api, queries_api

    admin_api.add_routes(app)
    queries_api.add_routes(app)
    return app

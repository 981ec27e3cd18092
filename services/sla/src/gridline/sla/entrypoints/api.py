"""sla's HTTP app: the figures (/v1/measures) and the operations endpoints (/healthz,
/readyz, /metrics)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridline.common.http import service_app
from gridline.common.settings import load
from gridline.sla import measuring
from gridline.sla.bootstrap import SlaService, bootstrap
from gridline.sla.config import SlaSettings
from gridline.sla.domain.measures import ALL_CATEGORIES, MeasureProblem, UnknownScope
from gridline.sla.entrypoints import reports
from gridline.sla.entrypoints.reports import QualityView


class MeasuresView(BaseModel):
    """The figures of one scope and category over whole local days (the catalogue's time
    zone), summed from tallies kept as each resolution arrives."""

    scope: str = Field(description="city, district:<id>, street:<id>, community:<id>, grid:<id>")
    category: str = Field(description="A category code, or * for all categories.")
    first_day: date
    last_day: date
    resolved: int = Field(
        description="Work orders resolved in these days (the latest "
        "resolution of a reopened order)."
    )
    resolved_by_tier: dict[str, int] = Field(description="By the resolver's tier.")
    attainment: dict[str, float | None] = Field(
        description="Per tier (grid, community, street): the share resolved at that tier or "
        "below, as the contract defines tier attainment; null when nothing was resolved."
    )
    targets: dict[str, float] = Field(description="The catalogue's published targets.")
    on_time_rate: float | None = Field(
        description="按期结案率: the share resolved by the due time of the assignment that "
        "resolved it (of the resolutions whose due time is known); null when none."
    )
    mean_hours_to_resolve: float | None
    quality: QualityView | None = Field(
        default=None,
        description="Openings, escalations, rework, time to resolve by tier, satisfaction.",
    )


async def _service(request: Request) -> SlaService:
    svc: SlaService = request.app.state.service
    return svc


Service = Annotated[SlaService, Depends(_service)]


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    app = service_app(
        "sla",
        description="Keeps due times, fires breaches once, and measures tier attainment.",
        settings=settings or load(SlaSettings),
        bootstrap=bootstrap,
    )

    @app.exception_handler(MeasureProblem)
    async def problem(_: Request, exc: MeasureProblem) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(UnknownScope)
    async def unknown(_: Request, exc: UnknownScope) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.get(
        "/v1/measures",
        response_model=MeasuresView,
        responses={
            **reports.BAD_INPUT,
            400: {
                "description": "A scope, window or month that cannot be read; the message says what to write."
            },
        },
    )
    async def get_measures(
        svc: Service,
        scope: Annotated[str, Query(max_length=120)] = "city",
        category: Annotated[str, Query(max_length=100)] = ALL_CATEGORIES,
        window: Annotated[str | None, Query(description="1d, 7d or 30d (default 30d)")] = None,
        month: Annotated[str | None, Query(description="A calendar month, YYYY-MM")] = None,
    ) -> MeasuresView:
        """Tier attainment, on-time rate and time to resolve for any scope down to a grid,
        any category, over a rolling window of whole days or a calendar month. Aggregates
        only: no report, reporter or handler appears."""
        async with svc.runtime.pool.acquire() as conn:
            first, last, f = await svc.sla.measures(
                conn, scope=scope, category=category, window=window, month=month
            )
            q = await measuring.quality(conn, scope, category, first, last)
        return MeasuresView(
            scope=scope,
            category=category,
            first_day=first,
            last_day=last,
            resolved=f.resolved,
            resolved_by_tier=dict(f.resolved_by_tier),
            attainment=dict(f.attainment),
            targets=dict(f.targets),
            on_time_rate=f.on_time_rate,
            mean_hours_to_resolve=f.mean_hours_to_resolve,
            quality=QualityView.of(q),
        )

    reports.add_routes(app)
    return app

"""The partner's reads of the points ledger: a rider's balance and history, and a street's
monthly leaderboard of the partner's riders. The front door has verified the partner
(key, signature, rate limit) before these routes run; each answers for that partner only.

Errors are `{"detail": "<field>: <what>"}`: 400 for a malformed parameter, 403 without a
partner key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from gridline.common.http import answers
from gridline.intake import tips
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain.points import is_month, month_of
from gridline.intake.entrypoints.front_door import presented_partner

router = APIRouter(prefix="/v1/partner", tags=["Partners: points and leaderboard"])

PARTNER_REQUIRED = "a partner key is required"


class PointsEntry(BaseModel):
    report_id: str = Field(description="The tip (the report the rider sent).")
    kind: str = Field(description="`credit` (a reversal, negative, may follow one day).")
    work_order_id: str
    category: str = Field(description="The work order's category when it was resolved.")
    points: int
    street_id: str | None = Field(description="The street (街道) the order was resolved in.")
    credited_at: datetime


class RiderPointsView(BaseModel):
    rider_id: str
    balance: int = Field(description="All of the rider's points with this partner.")
    entries: list[PointsEntry] = Field(description="Newest first, one page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class LeaderboardRow(BaseModel):
    rank: int = Field(description="1 for the most points; riders with equal points share it.")
    rider_id: str
    points: int
    tips: int = Field(description="Tips credited that month on that street.")


class LeaderboardView(BaseModel):
    street_id: str
    month: str = Field(description="YYYY-MM in the catalogue's time zone.")
    riders: list[LeaderboardRow]


def _partner(request: Request) -> str:
    partner = presented_partner(request.scope)
    if partner is None:
        raise HTTPException(403, PARTNER_REQUIRED)
    return partner


_ERRORS = {400: "a malformed parameter", 403: PARTNER_REQUIRED}


@router.get(
    "/riders/{rider_id}/points",
    summary="A rider's points balance and history",
    response_model=RiderPointsView,
    responses=answers(_ERRORS),
)
async def rider_points(
    request: Request,
    rider_id: str,
    limit: Annotated[int, Query(ge=1, le=200, description="Entries per page.")] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RiderPointsView:
    partner = _partner(request)
    svc: IntakeService = request.app.state.service
    try:
        found = await tips.rider_points(svc.runtime.pool, partner, rider_id, limit, cursor)
    except tips.BadCursor as exc:
        raise HTTPException(400, f"cursor: {exc}") from None
    return RiderPointsView(
        rider_id=found.rider_id,
        balance=found.balance,
        entries=[PointsEntry.model_validate(dict(r)) for r in found.entries],
        next_cursor=found.next_cursor,
    )


@router.get(
    "/leaderboard",
    summary="A street's monthly leaderboard of this partner's riders",
    response_model=LeaderboardView,
    responses=answers(_ERRORS),
)
async def leaderboard(
    request: Request,
    street_id: Annotated[str, Query(min_length=1, max_length=128, description="A street id.")],
    month: Annotated[
        str | None,
        Query(description="YYYY-MM in the catalogue's time zone; default the current month."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="How many riders.")] = 100,
) -> LeaderboardView:
    partner = _partner(request)
    svc: IntakeService = request.app.state.service
    if month is None:
        month = month_of(svc.intake.clock.now(), svc.intake.policy.tz)
    elif not is_month(month):
        raise HTTPException(400, f"month: {month!r} is not a month; use YYYY-MM, e.g. 2026-11")
    rows = await tips.leaderboard(svc.runtime.pool, partner, street_id, month, limit)
    return LeaderboardView(
        street_id=street_id,
        month=month,
        riders=[LeaderboardRow.model_validate(dict(r)) for r in rows],
    )

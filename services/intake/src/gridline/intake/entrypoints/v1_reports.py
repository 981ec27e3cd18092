"""The native API on one report: GET /v1/reports/{id}, its timeline, and the reporter's
feedback on its resolution. Thin routes: report_cases.py decides."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gridline.common.http import UNAVAILABLE
from gridline.intake import report_cases
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain import feedback, timeline
from gridline.intake.domain.feedback import MAX_COMMENT

router = APIRouter(prefix="/v1/reports", tags=["Reports (native API)"])
# Tabs and line breaks are fine in a comment; other control characters (NUL...) are not.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


async def _service(request: Request) -> IntakeService:
    svc: IntakeService = request.app.state.service
    return svc


Service = Annotated[IntakeService, Depends(_service)]
# Report ids are printable (PostgreSQL text cannot hold NUL): anything else is a 400.
ReportId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The report's id (Open311 service_request_id).",
    ),
]


async def _credential(
    x_api_key: Annotated[str | None, Header(description="A client key")] = None,
    authorization: Annotated[
        str | None, Header(description="Bearer <client key or the report's token>")
    ] = None,
) -> str:
    """A client key (X-Api-Key or Bearer), or the token returned when the report was filed
    (it reads, and gives feedback on, that one report only)."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    if authorization and authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    raise HTTPException(
        401,
        "send a client key as X-Api-Key or 'Authorization: Bearer <key>', or the report's token",
        headers={"WWW-Authenticate": "Bearer"},
    )


Credential = Annotated[str, Depends(_credential)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed report id or body (the field is named)"},
    401: {"description": "no key and no token"},
    403: {"description": "neither a valid key nor this report's token"},
    404: {"description": "unknown report (with a valid key)"},
    503: {"description": UNAVAILABLE},
}


class ReportStatus(BaseModel):
    report_id: str
    work_order_id: str
    state: Literal["received", "open", "triage", "resolved"] = Field(
        description="received: not yet routed; triage: held at the district for a person."
    )
    status: Literal["open", "closed"] = Field(description="As Open311 says it.")
    status_notes: str | None
    holder: str | None = Field(description="The unit holding the work order now.")
    tier: str | None = Field(description="grid, community, street or department.")
    due_at: AwareDatetime | None
    service_code: str
    tags: dict[str, Any] | None = Field(description="What intake read off the report.")
    counts: dict[str, int] = Field(
        description="escalations, resolutions, reopenings and feedback so far."
    )
    requested_at: AwareDatetime
    updated_at: AwareDatetime


class TimelineEntry(BaseModel):
    kind: timeline.Kind
    at: AwareDatetime
    detail: dict[str, Any]


class Timeline(BaseModel):
    report_id: str
    work_order_id: str
    entries: list[TimelineEntry] = Field(description="In the order things happened.")


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["confirm", "reject"]
    satisfaction: int = Field(ge=1, le=5, description="1 (very unhappy) to 5 (very happy).")
    comment: str = Field(default="", max_length=MAX_COMMENT)

    @field_validator("comment")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("comment must not contain control characters")
        return value.strip()


class FeedbackOut(BaseModel):
    feedback_id: str
    report_id: str
    work_order_id: str
    resolved_version: int = Field(description="The work order version that was resolved.")
    outcome: Literal["confirm", "reject"]
    satisfaction: int
    reopens: bool = Field(description="True when this rejection reopens the work order.")
    message: str
    given_at: AwareDatetime


def _local(at: datetime | None, tz: ZoneInfo) -> datetime | None:
    return at.astimezone(tz) if at else None


async def _read(svc: IntakeService, report_id: str, credential: str) -> report_cases.ReportView:
    try:
        return await report_cases.read(svc.runtime.pool, report_id, credential, svc.keys)
    except report_cases.ReportNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except report_cases.NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None


@router.get(
    "/{report_id}",
    summary="A report's status: state, holder, due time, tier, tags and counts",
    response_model=ReportStatus,
    responses=_ERRORS,
)
async def get_report(report_id: ReportId, svc: Service, credential: Credential) -> ReportStatus:
    view = await _read(svc, report_id, credential)
    row, summary, tz = view.row, view.summary, svc.intake.policy.tz
    return ReportStatus(
        report_id=row["service_request_id"],
        work_order_id=row["work_order_id"],
        state=summary.state,
        status=row["status"],
        status_notes=row["status_notes"],
        holder=row["agency_responsible"],
        tier=summary.tier,
        due_at=_local(row["expected_datetime"], tz),
        service_code=row["service_code"],
        tags=summary.tags,
        counts=summary.counts,
        requested_at=row["requested_datetime"].astimezone(tz),
        updated_at=row["updated_datetime"].astimezone(tz),
    )


@router.get(
    "/{report_id}/timeline",
    summary="What happened to a report and its work order, in order",
    response_model=Timeline,
    responses=_ERRORS,
)
async def get_timeline(report_id: ReportId, svc: Service, credential: Credential) -> Timeline:
    view = await _read(svc, report_id, credential)
    tz = svc.intake.policy.tz
    return Timeline(
        report_id=report_id,
        work_order_id=view.row["work_order_id"],
        entries=[
            TimelineEntry(kind=e.kind, at=e.at.astimezone(tz), detail=e.detail)
            for e in view.entries
        ],
    )


@router.post(
    "/{report_id}/feedback",
    summary="The reporter confirms or rejects the resolution (a rejection in time reopens)",
    status_code=201,
    response_model=FeedbackOut,
    responses={
        **_ERRORS,
        400: {"description": "a malformed body; the detail names the field"},
        409: {
            "description": "the work order is not resolved (the detail names its state), or "
            "feedback on this resolution was already given"
        },
    },
)
async def post_feedback(
    report_id: ReportId, body: FeedbackIn, svc: Service, credential: Credential
) -> FeedbackOut:
    try:
        taken = await report_cases.give_feedback(
            svc.intake,
            svc.runtime.pool,
            report_id,
            credential,
            svc.keys,
            outcome=body.outcome,
            satisfaction=body.satisfaction,
            comment=body.comment,
        )
    except report_cases.ReportNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except report_cases.NotAllowed as exc:
        raise HTTPException(403, str(exc)) from None
    except feedback.FeedbackRefused as exc:
        raise HTTPException(409, str(exc)) from None
    return FeedbackOut(
        feedback_id=taken.feedback_id,
        report_id=report_id,
        work_order_id=taken.work_order_id,
        resolved_version=taken.resolved_version,
        outcome=body.outcome,
        satisfaction=body.satisfaction,
        reopens=taken.reopens,
        message=taken.message,
        given_at=taken.given_at.astimezone(svc.intake.policy.tz),
    )

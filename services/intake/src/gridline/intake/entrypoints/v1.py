"""The native API (/v1): reports with what Open311 cannot say, one at a time or in batches
of up to 500, each write at most once per Idempotency-Key.

Errors are `{"detail": "<field>: <what>"}`: 400 for a field (the app answers every
malformed request with 400, not FastAPI's 422), 403 for a missing or unknown key, 403 for
a source the key may not claim, 409 for an Idempotency-Key reused with another body, 413
for a batch over the limit, 503 when nothing could be stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from gridline.common.events import ReportTags
from gridline.common.http import answers
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain import idempotency, tagging
from gridline.intake.domain.idempotency import Claim, Once
from gridline.intake.domain.keys import Role, SourceNotAllowed, report_source
from gridline.intake.domain.partners import PartnerProblem, check_rider_id
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.entrypoints.front_door import presented_partner
from gridline.intake.entrypoints.v1_schemas import (
    BATCH_BODY,
    MAX_BATCH,
    BatchResult,
    ItemResult,
    Links,
    NewReport,
    ReportCreated,
    describe,
)
from gridline.intake.handlers import Intake, PolicyView

router = APIRouter(prefix="/v1", tags=["Native API (v1)"])

CLOCK_SKEW = timedelta(minutes=5)
OLDEST = timedelta(days=30)
IDEMPOTENCY_DOC = (
    "Optional, up to 255 printable ASCII characters (a UUID is ideal), scoped to your api "
    "key and remembered for 24 hours: the same key with the same body answers as the first "
    "time (same report, same status, header `Idempotent-Replayed: true`); with another body, 409."
)


@dataclass(frozen=True)
class Client:
    api_key: str
    role: Role  # what the key was issued for (domain/keys.py)
    partner_id: str | None = None  # a partner verified by the front door

    @property
    def scope(self) -> str:
        """Whose Idempotency-Keys these are: a partner's survive its key's rotation."""
        return f"partner:{self.partner_id}" if self.partner_id else self.api_key


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_API_KEY = APIKeyHeader(name="X-Api-Key", auto_error=False, description="Your api key.")
_BEARER = HTTPBearer(auto_error=False, description="Your api key as a bearer token.")


async def v1_client(
    request: Request,
    api_key: Annotated[str | None, Security(_API_KEY)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
) -> Client:
    """The caller's key, from X-Api-Key or Authorization: Bearer. The front door
    (entrypoints/front_door.py) has refused a write without a valid key already; reads
    are checked here the same way, with the same 403."""
    svc: IntakeService = request.app.state.service
    key = (api_key or "").strip() or (bearer.credentials.strip() if bearer else "")
    partner_id = presented_partner(request.scope)
    if partner_id is not None:  # key, signature and rate limit checked at the front door
        return Client(key, Role.PARTNER, partner_id)
    if not key:
        raise HTTPException(
            403, "an api key is required: send it as X-Api-Key or Authorization: Bearer"
        )
    role = svc.keys.role_of(key)
    if role is None:
        raise HTTPException(403, "api_key is not valid")
    return Client(key, role)


Caller = Annotated[Client, Depends(v1_client)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_DOC)]


def source_for(client: Client, wanted: str | None) -> str:
    try:
        return report_source(client.role, wanted)
    except SourceNotAllowed as exc:
        raise Refused(403, f"source: {exc}") from None


def rider_of(client: Client, report: NewReport) -> str | None:
    """The partner's opaque rider id of a tip; only a partner's key may send one."""
    if report.rider_id is None:
        return None
    if client.partner_id is None:
        raise Refused(400, "rider_id: only a partner's (signed) request may name a rider")
    try:
        return check_rider_id(report.rider_id)
    except PartnerProblem as exc:
        raise Refused(400, str(exc)) from None


def require_loaded(policy: PolicyView) -> None:
    if policy.catalogue is None or policy.extent is None:
        raise Refused(
            503, "the city's catalogue and jurisdiction are not loaded yet; try again shortly"
        )


def to_submission(
    report: NewReport, intake: Intake, now: datetime
) -> tuple[Submission, ReportTags]:
    """Check a well-formed report against the city: its category (inferred from the text
    when not given), place and time. Returns it with its tags."""
    policy = intake.policy
    require_loaded(policy)
    assert policy.catalogue is not None and policy.extent is not None
    code = report.service_code
    labels = tuple(report.tags)
    if code is None:
        tags = intake.tags(report.description, None, labels)
        code = tagging.inferred_category(tags)
        if code is None:
            raise Refused(
                400,
                "service_code: none given and none could be inferred from the description; "
                "send one of the codes GET /open311/v2/services.json lists",
            )
    elif code not in policy.catalogue.categories_by_code:
        raise Refused(
            400,
            f"service_code: {code!r} is not a category here; "
            "GET /open311/v2/services.json lists the codes",
        )
    else:
        tags = intake.tags(report.description, code, labels)
    lat, lon = report.lat, report.long
    if report.grid_id is not None:
        grid = policy.places.place(report.grid_id)
        if grid is None or grid.level != "grid":
            raise Refused(400, f"grid_id: {report.grid_id!r} is not a grid of the city served here")
        if lat is None or lon is None:  # the grid's own point: routing finds the grid again
            lat, lon = grid.lat, grid.lon
    assert lat is not None and lon is not None  # NewReport: lat + long, or grid_id
    if not policy.extent.contains(lon, lat):
        raise Refused(400, f"lat, long: {lat}, {lon} is outside the city served here")
    if report.occurred_at is not None:
        if report.occurred_at > now + CLOCK_SKEW:
            raise Refused(400, "occurred_at: is in the future")
        if report.occurred_at < now - OLDEST:
            raise Refused(400, f"occurred_at: is more than {OLDEST.days} days ago")
    who = report.reporter
    submission = Submission(
        service_code=code,
        lat=lat,
        lon=lon,
        description=report.description,
        address_string=report.address,
        media_url=report.photos[0] if report.photos else None,
        email=who.email if who else None,
        phone=who.phone if who else None,
        first_name=who.first_name if who else None,
        last_name=who.last_name if who else None,
        device_id=who.device_id if who else None,
        account_id=who.id if who else None,
        grid_id=report.grid_id,
        occurred_at=report.occurred_at,
        photos=tuple(report.photos),
        labels=labels,
    )
    return submission, tags


def _links(accepted: Accepted) -> Links:
    rid = accepted.request_id
    return Links(
        self=f"/v1/reports/{rid}",
        open311=f"/open311/v2/requests/{rid}.json",
        token=f"/open311/v2/tokens/{accepted.token}.json",
    )


def created(accepted: Accepted) -> bytes:
    answer = ReportCreated(id=accepted.request_id, token=accepted.token, links=_links(accepted))
    return answer.model_dump_json().encode()


def once_for(client: Client, raw: str | None, operation: str, body: bytes) -> Once | None:
    if raw is None:
        return None
    try:
        return idempotency.once(
            client.scope, raw, operation, idempotency.fingerprint(operation, body)
        )
    except idempotency.KeyProblem as exc:
        raise Refused(400, f"Idempotency-Key: {exc}") from None


def _problem(status: int, detail: str) -> JSONResponse:
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def answer_once(
    svc: IntakeService, once_of: Callable[[], Once | None], attempt: Any
) -> Response:
    try:
        once = once_of()
        status, body, replay = await svc.intake.answer_once(svc.runtime.pool, once, attempt)
    except Refused as exc:
        svc.metrics.rejected_with(exc.status).inc()
        return _problem(exc.status, exc.detail)
    except idempotency.Conflict as exc:
        svc.metrics.rejected_with(409).inc()
        return _problem(409, str(exc))
    headers = {"Idempotent-Replayed": "true"} if replay else {}
    return Response(body, status, media_type="application/json", headers=headers)


@router.post(
    "/reports",
    status_code=201,
    summary="Submit a report",
    response_model=ReportCreated,
    response_description="Stored durably, with its event, before this answer",
    responses=answers(
        {
            400: "a field is missing or malformed (named), or the place is outside the city",
            403: "api key missing or not valid, or a source the key may not claim",
            409: "the Idempotency-Key was used with another body",
            503: "not accepted: policy not loaded yet, or the database is unavailable",
        }
    ),
)
async def create_report(
    request: Request, report: NewReport, client: Caller, idempotency_key: IdempotencyKey = None
) -> Response:
    svc: IntakeService = request.app.state.service
    body = await request.body()  # read already, to parse `report`

    async def attempt() -> tuple[int, bytes]:
        source = source_for(client, report.source)
        rider = rider_of(client, report)
        submission, tags = to_submission(report, svc.intake, svc.intake.clock.now())
        accepted = await svc.intake.submit(
            svc.submissions,
            submission,
            source,
            once,
            lambda a: (201, created(a)),
            tags=tags,
            partner_id=client.partner_id,
            rider_id=rider,
        )
        svc.metrics.accepted_from(source).inc()
        return 201, created(accepted)

    once: Once | None = None

    def once_of() -> Once | None:
        nonlocal once
        once = once_for(client, idempotency_key, "POST /v1/reports", body)
        return once

    return await answer_once(svc, once_of, attempt)


def _batch_items(body: bytes) -> list[Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, 'the body must be JSON: {"reports": [...]}') from None
    if not isinstance(document, dict) or not isinstance(document.get("reports"), list):
        raise Refused(400, "reports: required, a list of reports")
    extra = sorted(set(document) - {"reports"})
    if extra:
        raise Refused(400, f"{extra[0]}: not a field of a batch")
    items: list[Any] = document["reports"]
    if len(items) > MAX_BATCH:
        raise Refused(
            413, f"reports: a batch holds at most {MAX_BATCH} reports, got {len(items)}; split it"
        )
    return items


@router.post(
    "/reports/batch",
    summary=f"Submit up to {MAX_BATCH} reports at once",
    response_model=BatchResult,
    response_description="One result per report, in order; the accepted ones are stored "
    "together (one transaction, with their events) before this answer",
    responses=answers(
        {
            400: 'the body is not {"reports": [...]}',
            403: "api key missing or not valid, or a source the key may not claim",
            409: "the Idempotency-Key was used with another body",
            413: f"more than {MAX_BATCH} reports",
            503: "nothing stored: policy not loaded yet, or the database is unavailable",
        }
    ),
    openapi_extra=BATCH_BODY,
)
async def create_batch(
    request: Request, client: Caller, idempotency_key: IdempotencyKey = None
) -> Response:
    svc: IntakeService = request.app.state.service
    body = await request.body()
    once: Once | None = None

    def once_of() -> Once | None:
        nonlocal once
        once = once_for(client, idempotency_key, "POST /v1/reports/batch", body)
        return once

    async def attempt() -> tuple[int, bytes]:
        items = _batch_items(body)
        policy, now = svc.intake.policy, svc.intake.clock.now()
        require_loaded(policy)
        results: list[ItemResult] = []
        accepted: list[Accepted] = []
        for index, item in enumerate(items):
            try:
                report = NewReport.model_validate(item)
                source = source_for(client, report.source)
                rider = rider_of(client, report)
                submission, tags = to_submission(report, svc.intake, now)
                a = svc.intake.accept(
                    submission, source, tags, partner_id=client.partner_id, rider_id=rider
                )
            except ValidationError as exc:
                results.append(ItemResult(index=index, status=400, detail=describe(exc)))
                continue
            except Refused as exc:
                results.append(ItemResult(index=index, status=exc.status, detail=exc.detail))
                continue
            accepted.append(a)
            results.append(
                ItemResult(index=index, status=201, id=a.request_id, token=a.token, links=_links(a))
            )
        answer = (
            BatchResult(accepted=len(accepted), refused=len(items) - len(accepted), results=results)
            .model_dump_json(exclude_none=True)
            .encode()
        )
        if once is not None and accepted:
            claim = Claim(once, accepted[0].request_id, 200, answer)
            accepted = [replace(a, claim=claim) for a in accepted]
        await svc.intake.store_batch(svc.runtime.pool, accepted)
        for a in accepted:
            svc.metrics.accepted_from(a.source).inc()
        return 200, answer

    return await answer_once(svc, once_of, attempt)

"""Open311 GeoReport v2 (JSON) on /open311/v2, as the specification defines it."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from gridline.common.http import UNAVAILABLE, retry_after
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain import idempotency
from gridline.intake.domain.keys import Role, report_source
from gridline.intake.domain.status import received_notice
from gridline.intake.domain.submission import Accepted, Open311Error, parse_submission
from gridline.intake.entrypoints.front_door import presented_key, presented_role
from gridline.intake.entrypoints.open311_schemas import (
    Created,
    Discovery,
    ServiceDefinition,
    ServiceRequest,
    Token,
    errors,
)
from gridline.intake.entrypoints.open311_schemas import Service as ServiceEntry

SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_RESULTS = 1000
_NINETY_DAYS = timedelta(days=90)
router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])


async def _service(request: Request) -> IntakeService:
    # async: FastAPI runs a plain def dependency in a worker thread (a thread hop per request)
    svc: IntakeService = request.app.state.service
    return svc


Service = Annotated[IntakeService, Depends(_service)]


def error(code: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": code, "description": description}], status_code=code)


def json_body(content: Any) -> bytes:
    """JSON as JSONResponse renders it; for these shapes (strings, numbers, null) the same
    bytes as FastAPI's response_model serialisation too."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def problem(code: int, description: str) -> bytes:
    """The specification's error body: [{code, description}]."""
    return json_body([{"code": code, "description": description}])


def _zh(request: Request, locale: str | None) -> bool:
    wanted = (locale or request.headers.get("accept-language", "")).lower()
    return wanted.startswith("zh")


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


@router.get("/discovery.json", summary="Service discovery", response_model=Discovery)
async def discovery(request: Request, svc: Service) -> dict[str, Any]:
    base = (svc.settings.public_url or str(request.base_url)).rstrip("/") + "/open311/v2/"
    changeset = svc.intake.policy.versions.get("catalogue", "none")
    return {
        "changeset": changeset,
        "contact": svc.settings.contact,
        "key_service": "Ask the city's Gridline operators for an api_key.",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": changeset,
                "type": "production",
                "formats": ["application/json"],
            }
        ],
    }


def _service_entry(category: Any, zh: bool) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name_zh if zh else category.name_en,
        "description": (category.description_zh if zh else category.description_en)
        or f"{category.name_en} / {category.name_zh}",
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join([category.name_en, category.name_zh, *category.keywords]),
        "group": category.group_zh if zh else category.group_en,
    }


@router.get(
    "/services.json",
    summary="List the categories a report can be filed under",
    response_model=list[ServiceEntry],
)
async def services(
    request: Request,
    svc: Service,
    locale: Annotated[str | None, Query(description="en or zh-CN")] = None,
) -> list[dict[str, Any]]:
    catalogue = svc.intake.policy.catalogue
    if catalogue is None:
        return []
    zh = _zh(request, locale)
    return [_service_entry(c, zh) for c in catalogue.categories]


@router.get(
    "/services/{service_code}.json",
    summary="A service definition",
    response_model=ServiceDefinition,
    responses=errors({404: "unknown service_code"}),
)
async def service_definition(service_code: str, svc: Service) -> Any:
    catalogue = svc.intake.policy.catalogue
    if catalogue is None or service_code not in catalogue.categories_by_code:
        return error(
            404, f"service_code {service_code!r} not found; GET services.json lists the codes"
        )
    # No category asks for extra attributes yet (metadata is false for all of them).
    return {"service_code": service_code, "attributes": []}


def urlencoded_form(body: bytes) -> dict[str, str]:
    # GeoReport v2 requires UTF-8 everywhere; decode it as such whatever the client declared.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Open311Error(400, "the form must be UTF-8 encoded") from None
    return dict(parse_qsl(text, keep_blank_values=True))


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        raise Open311Error(400, "send the request form-encoded (application/x-www-form-urlencoded)")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return urlencoded_form(await request.body())


_FORM_FIELDS = {
    "api_key": "required: the key you were issued",
    "service_code": "required: a code from services.json",
    "lat": "required: WGS84 latitude, decimal degrees",
    "long": "required: WGS84 longitude, decimal degrees",
    "description": "what is wrong (up to 4000 characters)",
    "address_string": "the address in words (stored, not geocoded)",
    "address_id": "ignored: addresses are not geocoded",
    "media_url": "an http(s) URL of a photo",
    "email": "reporter's email",
    "phone": "reporter's phone",
    "first_name": "reporter's first name",
    "last_name": "reporter's last name",
    "device_id": "reporting device",
    "account_id": "reporter's account with the client",
}
_POST_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["api_key", "service_code", "lat", "long"],
                    "properties": {
                        name: {
                            "type": "number" if name in ("lat", "long") else "string",
                            "description": text,
                        }
                        for name, text in _FORM_FIELDS.items()
                    },
                }
            }
        },
    },
}


@router.post(
    "/requests.json",
    summary="Create a service request (form-encoded, api_key required)",
    response_model=list[Created],
    response_description="Stored durably, with its event, before this answer",
    responses=errors(
        {
            400: "a missing or malformed field, or a point outside the city",
            403: "api_key missing or not valid",
            404: "unknown service_code",
            409: "the Idempotency-Key header was used with another request",
            503: "not accepted: policy not loaded yet, or the database is unavailable",
        }
    ),
    openapi_extra=_POST_DOC,
)
async def create_request(request: Request) -> Response:
    # A form-encoded POST is answered by the fast path (entrypoints/fast_post.py) before it
    # reaches this route; this route answers the rest (multipart, a wrong content type) the
    # same way, and documents the operation.
    svc: IntakeService = request.app.state.service
    status, body = await answer_report(
        svc,
        lambda: _form(request),
        presented_role(request.scope),
        presented_key(request.scope),
        request.headers.get("idempotency-key"),
    )
    headers = retry_after(svc.settings.retry_after_s) if status == 503 else None
    return Response(body, status, headers=headers, media_type="application/json")


async def answer_report(
    svc: IntakeService,
    read_form: Callable[[], Awaitable[Mapping[str, str]]],
    role: Role | None,
    api_key: str | None,
    idempotency_key: str | None = None,
) -> tuple[int, bytes]:
    """POST requests.json: the status and JSON body of the answer. Answers 200 only once the
    report is stored with its event; a database outage is raised (the caller answers 503).
    `role` is that of the key (`api_key`) the front door checked; without one, the form's
    api_key. With an Idempotency-Key, a retry gets the first answer (domain/idempotency.py)."""
    started = time.perf_counter()
    try:
        form = await read_form()
        if role is None or api_key is None:
            api_key = (form.get("api_key") or "").strip()
            if not api_key:
                raise Open311Error(403, "api_key is required to create a service request")
            role = svc.keys.role_of(api_key)
            if role is None:
                raise Open311Error(403, "api_key is not valid")
        source = report_source(role)
        once = _once(api_key, idempotency_key, form)
        status, body, _ = await svc.intake.answer_once(
            svc.runtime.pool if once else None,  # unused without a key
            once,
            lambda: _accept(svc, form, source, once, started),
        )
    except Open311Error as exc:
        svc.metrics.rejected_with(exc.code).inc()
        return exc.code, problem(exc.code, exc.description)
    except idempotency.Conflict as exc:
        svc.metrics.rejected_with(409).inc()
        return 409, problem(409, str(exc))
    return status, body


def _once(api_key: str, raw: str | None, form: Mapping[str, str]) -> idempotency.Once | None:
    if raw is None:
        return None
    operation = "POST /open311/v2/requests"
    try:
        return idempotency.once(
            api_key, raw, operation, idempotency.form_fingerprint(operation, form)
        )
    except idempotency.KeyProblem as exc:
        raise Open311Error(400, str(exc)) from None


async def _accept(
    svc: IntakeService,
    form: Mapping[str, str],
    source: str,
    once: idempotency.Once | None,
    started: float,
) -> tuple[int, bytes]:
    policy = svc.intake.policy
    if policy.catalogue is None or policy.extent is None:
        raise Open311Error(
            503, "the city's catalogue and jurisdiction are not loaded yet; try again shortly"
        )
    catalogue, extent = policy.catalogue, policy.extent
    submission = parse_submission(
        form,
        known_service=lambda code: code in catalogue.categories_by_code,
        inside_city=extent.contains,
    )
    category = catalogue.category(submission.service_code)
    department = catalogue.department(category.department)
    notice = received_notice(category.entry_tier.value, department.name_en, department.name_zh)

    def answer(accepted: Accepted) -> tuple[int, bytes]:
        created = {
            "service_request_id": accepted.request_id,
            "token": accepted.token,
            "service_notice": notice,
            "account_id": submission.account_id,
        }
        return 200, json_body([created])

    accepted = await svc.intake.submit(svc.submissions, submission, source, once, answer)
    svc.metrics.accepted_from(source).inc()
    svc.metrics.latency.observe(time.perf_counter() - started)
    return answer(accepted)


def _request_view(row: Any, svc: IntakeService, zh: bool) -> dict[str, Any]:
    tz = svc.intake.policy.tz
    catalogue = svc.intake.policy.catalogue
    category = catalogue.categories_by_code.get(row["service_code"]) if catalogue else None
    name = (category.name_zh if zh else category.name_en) if category else row["service_code"]
    return {
        "service_request_id": row["service_request_id"],
        "status": row["status"],
        "status_notes": row["status_notes"],
        "service_name": name,
        "service_code": row["service_code"],
        "description": row["description"],
        "agency_responsible": row["agency_responsible"],
        "service_notice": None,
        "requested_datetime": _iso(row["requested_datetime"], tz),
        "updated_datetime": _iso(row["updated_datetime"], tz),
        "expected_datetime": _iso(row["expected_datetime"], tz),
        "address": row["address_string"],
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": row["media_url"],
    }


def _date(name: str, raw: str | None) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(
            400, f"{name} must be an ISO 8601 date-time such as 2026-11-01T08:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} must include a time zone (Z or +08:00)")
    return value


@router.get(
    "/requests.json",
    summary="Find service requests (defaults to the last 90 days)",
    response_model=list[ServiceRequest],
    responses=errors({400: "a malformed filter", 503: UNAVAILABLE}),
)
async def list_requests(
    request: Request,
    svc: Service,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    locale: str | None = None,
) -> Any:
    try:
        ids = (
            [s.strip() for s in service_request_id.split(",") if s.strip()]
            if service_request_id
            else None
        )
        codes = [s.strip() for s in service_code.split(",") if s.strip()] if service_code else None
        statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
        bad = [s for s in statuses or [] if s not in ("open", "closed")]
        if bad:
            raise Open311Error(400, f"status must be open or closed, got {', '.join(bad)}")
        start, end = _date("start_date", start_date), _date("end_date", end_date)
        if start and end and start > end:
            raise Open311Error(400, "start_date must not be after end_date")
        if ids is None and start is None and end is None:
            start = svc.runtime.clock.now().replace(microsecond=0) - _NINETY_DAYS
    except Open311Error as exc:
        return error(exc.code, exc.description)
    if ids:  # the specification: listed ids override every other argument
        codes = statuses = start = end = None
    rows = await svc.intake.find_requests(
        svc.runtime.pool,
        ids=ids,
        codes=codes,
        start=start,
        end=end,
        statuses=statuses,
        limit=MAX_RESULTS,
    )
    zh = _zh(request, locale)
    return [_request_view(r, svc, zh) for r in rows]


@router.get(
    "/requests/{service_request_id}.json",
    summary="One service request",
    response_model=list[ServiceRequest],
    responses=errors({404: "unknown service_request_id", 503: UNAVAILABLE}),
)
async def get_request(
    service_request_id: str, request: Request, svc: Service, locale: str | None = None
) -> Any:
    row = await svc.intake.get_request(svc.runtime.pool, service_request_id)
    if row is None:
        return error(404, f"service_request_id {service_request_id} not found")
    return [_request_view(row, svc, _zh(request, locale))]


@router.get(
    "/tokens/{token}.json",
    summary="The service_request_id behind a token",
    response_model=list[Token],
    responses=errors({404: "unknown token", 503: UNAVAILABLE}),
)
async def get_token(token: str, svc: Service) -> Any:
    request_id = await svc.intake.request_id_for_token(svc.runtime.pool, token)
    if request_id is None:
        return error(404, f"token {token} not found")
    return [{"service_request_id": request_id, "token": token}]

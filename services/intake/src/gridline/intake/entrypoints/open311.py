"""Open311 GeoReport v2 on /open311/v2, as the specification defines it: every resource
in JSON (`.json`) and XML (`.xml`). Each route maps its resource to dicts once;
open311_xml renders them in the format the path asks for."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from python_multipart.multipart import parse_options_header
from starlette.formparsers import MultiPartException, MultiPartParser

from gridline.common.http import UNAVAILABLE, retry_after
from gridline.common.policy.catalogue import Category
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain import idempotency, inputs
from gridline.intake.domain.inputs import Open311Error, check_path_id, parse_request_query
from gridline.intake.domain.keys import Role, report_source
from gridline.intake.domain.status import received_notice
from gridline.intake.domain.submission import Accepted, Form, parse_submission
from gridline.intake.entrypoints.front_door import presented_key, presented_role
from gridline.intake.entrypoints.open311_schemas import (
    POST_DOC,
    Created,
    Discovery,
    ServiceDefinition,
    ServiceRequest,
    Token,
    errors,
)
from gridline.intake.entrypoints.open311_schemas import Service as ServiceEntry
from gridline.intake.entrypoints.open311_xml import (
    FORMATS,
    MEDIA_TYPES,
    Format,
    format_of,
    render,
)
from gridline.intake.entrypoints.open311_xml import errors as error_bytes

SPEC = "http://wiki.open311.org/GeoReport_v2"
router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])


class XMLResponse(Response):
    media_type = "text/xml"  # Starlette adds "; charset=utf-8"


async def _service(request: Request) -> IntakeService:
    # async: FastAPI runs a plain def dependency in a worker thread (a thread hop per request)
    svc: IntakeService = request.app.state.service
    return svc


Service = Annotated[IntakeService, Depends(_service)]


def answer(request: Request, root: str, content: Any, status: int = 200) -> Response:
    """`content` in the format the path asks for (`.json` or `.xml`)."""
    fmt = format_of(request.url.path)
    return Response(render(fmt, root, content), status, media_type=MEDIA_TYPES[fmt])


def error(
    request_or_path: Request | str,
    code: int,
    description: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The specification's error answer, in the format of the path."""
    path = request_or_path if isinstance(request_or_path, str) else request_or_path.url.path
    fmt = format_of(path)
    kept = {k: v for k, v in (headers or {}).items() if k.lower() not in _BODY_HEADERS}
    return Response(
        error_bytes(fmt, code, description), code, headers=kept, media_type=MEDIA_TYPES[fmt]
    )


# Headers of another rendering of the body, not to be carried over to this one.
_BODY_HEADERS = {"content-length", "content-type"}


def problem(code: int, description: str, fmt: Format = "json") -> bytes:
    """The specification's error body, [{code, description}] or <errors>."""
    return error_bytes(fmt, code, description)


def both_formats(
    path: str, *, model: Any, summary: str, codes: dict[int, str], method: str = "GET", **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register one route function at `path.json` (documented with its JSON model) and at
    `path.xml` (documented as XML); the function answers in the format of the path."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for fmt in FORMATS:
            router.add_api_route(
                f"{path}.{fmt}",
                endpoint,
                methods=[method],
                summary=f"{summary} ({fmt.upper()})",
                response_model=model if fmt == "json" else None,
                response_class=JSONResponse if fmt == "json" else XMLResponse,
                responses=errors(codes, xml=fmt == "xml"),
                **extra,
            )
        return endpoint

    return register


def _zh(request: Request, locale: str | None) -> bool:
    wanted = (locale or request.headers.get("accept-language", "")).lower()
    return wanted.startswith("zh")


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat(timespec="seconds") if value else None


@both_formats(
    "/discovery",
    model=Discovery,
    summary="Service discovery",
    codes={},
)
async def discovery(request: Request, svc: Service) -> Response:
    base = (svc.settings.public_url or str(request.base_url)).rstrip("/") + "/open311/v2/"
    changeset = svc.intake.policy.versions.get("catalogue", "none")
    content = {
        "changeset": changeset,
        "contact": svc.settings.contact,
        "key_service": "Ask the city's Gridline operators for an api_key.",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": changeset,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return answer(request, "discovery", content)


def _service_entry(category: Category, zh: bool) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name_zh if zh else category.name_en,
        "description": (category.description_zh if zh else category.description_en)
        or f"{category.name_en} / {category.name_zh}",
        "metadata": bool(category.attributes),
        "type": "realtime",
        "keywords": ", ".join(_each_once([category.name_en, category.name_zh, *category.keywords])),
        "group": category.group_zh if zh else category.group_en,
    }


def _each_once(words: list[str]) -> list[str]:
    """Each word once, as first written, whatever its case: a catalogue's keywords often
    repeat its names ("Rubbish, 垃圾, 垃圾, rubbish")."""
    first: dict[str, str] = {}
    for word in words:
        first.setdefault(word.casefold(), word)
    return list(first.values())


def _definition(category: Category, zh: bool) -> dict[str, Any]:
    """The service definition: the category's attributes, in their order."""
    ordered = sorted(category.attributes, key=category.attribute_order)
    attributes = [
        {
            "variable": a.variable,
            "code": a.code,
            "datatype": a.datatype,
            "required": a.required,
            "datatype_description": (a.datatype_description_zh if zh else a.datatype_description_en)
            or None,
            "order": category.attribute_order(a),
            "description": a.description_zh if zh else a.description_en,
            "values": [{"key": v.key, "name": v.name_zh if zh else v.name_en} for v in a.values],
        }
        for a in ordered
    ]
    return {"service_code": category.code, "attributes": attributes}


Locale = Annotated[str | None, Query(description="en or zh-CN (else Accept-Language)")]


@both_formats(
    "/services",
    model=list[ServiceEntry],
    summary="List the categories a report can be filed under",
    codes={},
)
async def services(request: Request, svc: Service, locale: Locale = None) -> Response:
    catalogue = svc.intake.policy.catalogue
    zh = _zh(request, locale)
    content = [_service_entry(c, zh) for c in catalogue.categories] if catalogue else []
    return answer(request, "services", content)


@both_formats(
    "/services/{service_code}",
    model=ServiceDefinition,
    summary="A service definition: the category's attributes",
    codes={400: "a malformed service_code", 404: "unknown service_code"},
)
async def service_definition(
    service_code: str, request: Request, svc: Service, locale: Locale = None
) -> Response:
    catalogue = svc.intake.policy.catalogue
    try:
        check_path_id("service_code", service_code)
    except Open311Error as exc:
        return error(request, exc.code, exc.description)
    if catalogue is None or service_code not in catalogue.categories_by_code:
        return error(
            request,
            404,
            f"service_code {service_code!r} not found; GET services.json lists the codes",
        )
    category = catalogue.category(service_code)
    return answer(request, "service_definition", _definition(category, _zh(request, locale)))


_UTF8 = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


def urlencoded_form(body: bytes, content_type: str = "") -> Form:
    """The form of a form-encoded body. GeoReport v2 sends every value in UTF-8: a value
    that is not (raw or percent-encoded) is refused with its field's name, never stored
    with replacement characters, and so is any non-ASCII value of a form that declares
    another charset (`charset=gbk`), whose bytes may happen to be valid UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Open311Error(400, "the form must be UTF-8 encoded") from None
    pairs = parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
    wide = [(n, v) for n, v in pairs if not (n.isascii() and v.isascii())]
    for name, value in wide:
        if not _is_utf8(name) or not _is_utf8(value):
            raise Open311Error(
                400, f"{_shown(name)}: a percent-encoded value is not UTF-8; send the form in UTF-8"
            )
    if wide:  # the declared charset matters only to values that are not ASCII
        charset = parse_options_header(content_type)[1].get(b"charset", b"utf-8").lower()
        if charset not in _UTF8:
            raise Open311Error(
                400,
                f"{_shown(wide[0][0])}: the form declares charset={charset.decode('latin-1')};"
                " GeoReport v2 requires UTF-8, send it in UTF-8",
            )
    return Form(pairs)


def _shown(name: str) -> str:
    """A field's name as an error message can show it (bytes that are not UTF-8 escaped)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Utf8Parts(MultiPartParser):
    """Starlette's multipart parser, but a field that is not UTF-8 is refused with its
    name (Starlette would read it as latin-1 and store mojibake)."""

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                value = bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                raise MultiPartException(
                    f"{part.field_name}: a value is not UTF-8; send the form in UTF-8"
                ) from None
            self.items.append((part.field_name, value))
        else:
            super().on_part_end()


def _is_utf8(text: str) -> bool:
    """False when percent-decoding left bytes that are not UTF-8 (as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        raise Open311Error(400, "send the request form-encoded (application/x-www-form-urlencoded)")
    if content_type.startswith("multipart/form-data"):
        parser = Utf8Parts(request.headers, request.stream())
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            raise Open311Error(400, exc.message) from None
        try:
            return Form((k, v) for k, v in form.multi_items() if isinstance(v, str))
        finally:
            await form.close()  # the file parts, which a report does not read
    return urlencoded_form(await request.body(), content_type)


@both_formats(
    "/requests",
    method="POST",
    model=list[Created],
    summary="Create a service request (form-encoded, api_key required)",
    codes={
        400: "a missing or malformed field or attribute, or a point outside the city",
        403: "api_key missing or not valid",
        404: "unknown service_code",
        409: "the Idempotency-Key header was used with another request",
        503: "not accepted: policy not loaded yet, or the database is unavailable",
    },
    response_description="Stored durably, with its event, before this answer",
    openapi_extra=POST_DOC,
)
async def create_request(request: Request) -> Response:
    # A form-encoded POST is answered by the fast path (entrypoints/fast_post.py) before it
    # reaches this route; this route answers the rest (multipart, a wrong content type) the
    # same way, and documents the operation.
    svc: IntakeService = request.app.state.service
    fmt = format_of(request.url.path)
    status, body = await answer_report(
        svc,
        lambda: _form(request),
        presented_role(request.scope),
        presented_key(request.scope),
        request.headers.get("idempotency-key"),
        fmt,
    )
    headers = retry_after(svc.settings.retry_after_s) if status == 503 else None
    return Response(body, status, headers=headers, media_type=MEDIA_TYPES[fmt])


async def answer_report(
    svc: IntakeService,
    read_form: Callable[[], Awaitable[Form]],
    role: Role | None,
    api_key: str | None,
    idempotency_key: str | None = None,
    fmt: Format = "json",
) -> tuple[int, bytes]:
    """POST requests.json or .xml: the status and body of the answer. Answers 200 only
    once the report is stored with its event; a database outage is raised (the caller
    answers 503). `role` is that of the key (`api_key`) the front door checked; without
    one, the form's api_key. With an Idempotency-Key, a retry gets the first answer
    (domain/idempotency.py)."""
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
        once = _once(api_key, idempotency_key, form, fmt)
        status, body, _ = await svc.intake.answer_once(
            svc.runtime.pool if once else None,  # unused without a key
            once,
            lambda: _accept(svc, form, source, once, started, fmt),
        )
    except Open311Error as exc:
        svc.metrics.rejected_with(exc.code).inc()
        return exc.code, problem(exc.code, exc.description, fmt)
    except idempotency.Conflict as exc:
        svc.metrics.rejected_with(409).inc()
        return 409, problem(409, str(exc), fmt)
    return status, body


def _once(api_key: str, raw: str | None, form: Form, fmt: Format) -> idempotency.Once | None:
    if raw is None:
        return None
    # The format is part of the operation: a replay answers in the format first sent.
    operation = f"POST /open311/v2/requests.{fmt}"
    try:
        return idempotency.once(
            api_key, raw, operation, idempotency.form_fingerprint(operation, form)
        )
    except idempotency.KeyProblem as exc:
        raise Open311Error(400, str(exc)) from None


async def _accept(
    svc: IntakeService,
    form: Form,
    source: str,
    once: idempotency.Once | None,
    started: float,
    fmt: Format,
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
        attributes=lambda code: catalogue.category(code).attributes,
        places=policy.places.lookup,
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
        return 200, render(fmt, "service_requests", [created])

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


def _filter(description: str) -> Any:
    return Query(description=description)


@both_formats(
    "/requests",
    model=list[ServiceRequest],
    summary="Find service requests (defaults to the last 90 days)",
    codes={400: "a malformed filter", 503: UNAVAILABLE},
)
async def list_requests(
    request: Request,
    svc: Service,
    service_request_id: Annotated[
        str | None,
        _filter(f"comma list (at most {inputs.MAX_LIST}); overrides every other filter"),
    ] = None,
    service_code: Annotated[str | None, _filter(f"comma list (at most {inputs.MAX_LIST})")] = None,
    start_date: Annotated[str | None, _filter("ISO 8601 date-time with its zone")] = None,
    end_date: Annotated[str | None, _filter("ISO 8601 date-time with its zone")] = None,
    status: Annotated[str | None, _filter("open, closed, or both comma-separated")] = None,
    page: Annotated[str | None, _filter(f"1-based page (at most {inputs.MAX_PAGE})")] = None,
    page_size: Annotated[
        str | None,
        _filter(f"requests per page: default {inputs.PAGE_SIZE}, at most {inputs.MAX_PAGE_SIZE}"),
    ] = None,
    locale: Locale = None,
) -> Response:
    try:
        query = parse_request_query(
            service_request_id=service_request_id,
            service_code=service_code,
            start_date=start_date,
            end_date=end_date,
            status=status,
            page=page,
            page_size=page_size,
            now=svc.runtime.clock.now(),
        )
    except Open311Error as exc:
        return error(request, exc.code, exc.description)
    rows = await svc.intake.find_requests(svc.runtime.pool, query)
    zh = _zh(request, locale)
    return answer(request, "service_requests", [_request_view(r, svc, zh) for r in rows])


@both_formats(
    "/requests/{service_request_id}",
    model=list[ServiceRequest],
    summary="One service request",
    codes={400: "a malformed id", 404: "unknown service_request_id", 503: UNAVAILABLE},
)
async def get_request(
    service_request_id: str, request: Request, svc: Service, locale: Locale = None
) -> Response:
    try:
        check_path_id("service_request_id", service_request_id)
    except Open311Error as exc:
        return error(request, exc.code, exc.description)
    row = await svc.intake.get_request(svc.runtime.pool, service_request_id)
    if row is None:
        return error(request, 404, f"service_request_id {service_request_id} not found")
    return answer(request, "service_requests", [_request_view(row, svc, _zh(request, locale))])


@both_formats(
    "/tokens/{token}",
    model=list[Token],
    summary="The service_request_id behind a token",
    codes={400: "a malformed token", 404: "unknown token", 503: UNAVAILABLE},
)
async def get_token(token: str, request: Request, svc: Service) -> Response:
    try:
        check_path_id("token", token)
    except Open311Error as exc:
        return error(request, exc.code, exc.description)
    request_id = await svc.intake.request_id_for_token(svc.runtime.pool, token)
    if request_id is None:
        return error(request, 404, f"token {token} not found")
    return answer(request, "service_requests", [{"service_request_id": request_id, "token": token}])

"""intake's HTTP app: Open311 GeoReport v2 plus the operations endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridline.common.http import (
    UNAVAILABLE,
    answer_outages_with_503,
    describe_validation,
    service_app,
)
from gridline.common.settings import load
from gridline.intake.bootstrap import bootstrap
from gridline.intake.config import IntakeSettings
from gridline.intake.entrypoints import (
    open311,
    open311_schemas,
    partner_points,
    partners,
    sensors,
    v1,
    v1_reports,
)
from gridline.intake.entrypoints.fast_post import ReportFastPath
from gridline.intake.entrypoints.front_door import (
    PARTNER_PATHS,
    WRITES,
    FrontDoor,
    route_of,
    too_large_message,
)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or load(IntakeSettings)
    app = service_app(
        "intake",
        description="Accepts citizens', grid workers' and partners' reports (Open311 GeoReport v2).",
        settings=settings,
        bootstrap=bootstrap,
        refuse_bad_text=False,  # every field is checked where it is read (domain/inputs.py)
    )

    @app.exception_handler(RequestValidationError)
    async def open311_validation(request: Request, exc: RequestValidationError) -> Response:
        problems = describe_validation(exc, with_source=False)
        if request.url.path.startswith("/open311/"):
            return open311.error(request, 400, problems)
        return JSONResponse({"detail": problems}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def open311_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith("/open311/"):
            description = str(exc.detail)
            if exc.status_code == 404:
                description = f"no Open311 resource at {path}; GET /open311/v2/discovery.json"
            return open311.error(request, exc.status_code, description, headers=exc.headers)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    def outage_body(request: Request, code: int, message: str) -> Any:
        if request.url.path.startswith("/open311/"):
            if request.method == "POST":  # a report refused for the outage is still counted
                request.app.state.service.metrics.rejected_with(code).inc()
            return [{"code": code, "description": message}]
        return {"detail": message}

    before = dict(app.exception_handlers)
    answer_outages_with_503(app, outage_body, retry_after_s=settings.retry_after_s)
    _outages_in_xml_too(
        app, [c for c, h in app.exception_handlers.items() if before.get(c) is not h]
    )
    app.include_router(open311.router)
    app.include_router(v1.router)
    app.include_router(v1_reports.router)
    app.include_router(partner_points.router)
    app.include_router(sensors.router)
    partners.include(app)
    # Form-encoded report POSTs skip the router (entrypoints/fast_post.py): same answers.
    app.add_middleware(ReportFastPath)
    # Outside the fast path: every write's key, size and Kafka check (entrypoints/front_door.py).
    app.add_middleware(FrontDoor)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """Open311 answers a malformed parameter with 400 and the specification's error
        array, not FastAPI's 422: the document says so."""
        fresh = app.openapi_schema is None
        schema = generate()
        if fresh:
            problems = {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Open311Problem"},
            }
            describe_front_door(schema)
            for path, operations in schema["paths"].items():
                if path.startswith("/v1/"):  # /v1 says 400 too, in its own {detail} shape
                    for operation in operations.values():
                        operation["responses"].pop("422", None)
                if not path.startswith("/open311/"):
                    continue
                content = (
                    {"text/xml": {"schema": open311_schemas.XML_ERRORS}}
                    if path.endswith(".xml")
                    else {"application/json": {"schema": problems}}
                )
                for operation in operations.values():
                    if operation["responses"].pop("422", None) is not None:
                        operation["responses"].setdefault(
                            "400", {"description": "a malformed parameter", "content": content}
                        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# What a partner sends with every request (docs/api.md "Partners").
SIGNATURE_HEADERS = [
    {
        "name": "X-Gridline-Timestamp",
        "in": "header",
        "required": True,
        "description": "Unix seconds when signed; within ±300 s of the server's clock.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "X-Gridline-Signature",
        "in": "header",
        "required": True,
        "description": "v1=<hex HMAC-SHA256 under your signing secret of"
        " '<timestamp>.' followed by the exact body bytes (empty for a GET)>",
        "schema": {"type": "string"},
    },
]


def describe_front_door(schema: dict[str, Any]) -> None:
    """Every write's key schemes and the answers the front door gives before the route."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(
        {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            "Bearer": {"type": "http", "scheme": "bearer"},
            "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
        }
    )
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in WRITES and not path.startswith(PARTNER_PATHS):
                continue
            route = route_of(path)
            schemes: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"Bearer": []}]
            schemes.append({"ApiKeyQuery": []})
            if route.key_in_body:
                schemes.append({})  # or api_key in the form
            operation["security"] = schemes
            if path.startswith(PARTNER_PATHS):
                operation.setdefault("parameters", []).extend(SIGNATURE_HEADERS)
            if path.startswith("/open311/"):
                shape: dict[str, Any] = {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Open311Problem"},
                }
            else:
                shape = {"$ref": "#/components/schemas/Problem"}
            for code, text in (
                (
                    401,
                    "a partner key's request: the X-Gridline-Signature is missing or wrong,"
                    " or X-Gridline-Timestamp is outside ±5 minutes (docs/api.md Partners)",
                ),
                (403, "the key is missing or not valid (checked before the body is read)"),
                (429, "a partner key's request over the partner's rate limit; see Retry-After"),
                (413, too_large_message(route.limit)),
                (503, "not accepted: the database or Kafka is unavailable; see Retry-After"),
            ):
                operation["responses"].setdefault(
                    str(code),
                    {"description": text, "content": {"application/json": {"schema": shape}}},
                )
            for waits in ("429", "503"):
                operation["responses"][waits]["headers"] = {
                    "Retry-After": {
                        "description": "seconds to wait before trying again",
                        "schema": {"type": "integer"},
                    }
                }


def _outages_in_xml_too(app: FastAPI, outages: list[Any]) -> None:
    """The shared outage handlers answer in JSON; an Open311 `.xml` path gets the same
    503 as the specification's XML errors."""
    for cls in outages:
        handler = app.exception_handlers[cls]

        async def in_format(request: Request, exc: Exception, json_handler: Any = handler) -> Any:
            response = await json_handler(request, exc)
            path = request.url.path
            if path.startswith("/open311/") and path.endswith(".xml"):
                return open311.error(
                    request, response.status_code, UNAVAILABLE, headers=dict(response.headers)
                )
            return response

        app.add_exception_handler(cls, in_format)

"""HTTP pieces every service mounts: health, readiness, metrics, and JSON problem errors."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import quote

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

from gridline.common.bad_text import RefuseBadText
from gridline.common.logs import configure_logging
from gridline.common.pg import is_transient
from gridline.common.settings import ServiceSettings

Readiness = Callable[[], Awaitable[dict[str, bool]]]
ErrorBody = Callable[[Request, int, str], Any]

UNAVAILABLE = (
    "the database is unavailable, so nothing was stored or changed (a report is not"
    " accepted); try again shortly"
)

# Seconds a client should wait before trying again after a 503 (its Retry-After header).
RETRY_AFTER_S = 5


def retry_after(seconds: int = RETRY_AFTER_S) -> dict[str, str]:
    """The headers of a 503: when to try again."""
    return {"Retry-After": str(seconds)}


class Problem(BaseModel):
    """Every error answer outside Open311: one sentence on what went wrong and what to do."""

    detail: str = Field(description="What went wrong and what to do about it.")


def attachment(filename: str) -> str:
    """A Content-Disposition for a download named `filename`, whatever its characters: an
    ASCII name for old clients and the exact one as RFC 6266's `filename*` (UTF-8). A
    header must be Latin-1, so a street id in Chinese written as-is failed the answer."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def answers(codes: dict[int, str], model: Any = Problem) -> dict[int | str, dict[str, Any]]:
    """Error answers for an operation's OpenAPI `responses`, all of one shape (`model`)."""
    return {code: {"model": model, "description": d} for code, d in codes.items()}


def _detail(_: Request, __: int, message: str) -> Any:
    return {"detail": message}


def answer_outages_with_503(
    app: FastAPI, body: ErrorBody = _detail, *, retry_after_s: int = RETRY_AFTER_S
) -> None:
    """A request that meets a database outage gets 503 with Retry-After (retry later), not
    a bare 500; any other unexpected error stays a 500 and is logged."""

    async def handler(request: Request, exc: Exception) -> Response:
        if not is_transient(exc):
            raise exc
        return JSONResponse(
            body(request, 503, UNAVAILABLE), status_code=503, headers=retry_after(retry_after_s)
        )

    # is_transient decides; these are the families its answers come from.
    for cls in (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    ):
        app.add_exception_handler(cls, handler)


def add_ops_routes(
    app: FastAPI,
    readiness: Callable[[Request], Readiness],
    registry: Callable[[Request], CollectorRegistry],
) -> None:
    """/healthz (alive), /readyz (dependencies work), /metrics (Prometheus text)."""

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Kafka, PostgreSQL and consumers work",
        responses={503: {"description": "not ready: the body's checks say what fails"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        try:
            checks = await readiness(request)()
        except AttributeError:  # still starting: the runtime is not there yet
            checks = {"starting": False}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
            headers=None if ready else retry_after(),
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry(request)), media_type=CONTENT_TYPE_LATEST)


def service_app(
    service: str,
    *,
    description: str,
    settings: ServiceSettings,
    bootstrap: Callable[[Any], AbstractAsyncContextManager[Any]],
    refuse_bad_text: bool = True,
) -> FastAPI:
    """The FastAPI app of a service: its bootstrap runs for the app's lifetime and what it
    yields (which has a `.runtime`) is `app.state.service`. A NUL anywhere in a request, or a
    body that is not UTF-8, is answered 422 (gridline.common.bad_text) unless
    `refuse_bad_text` is off: intake checks each field itself and answers in Open311's
    shape."""
    configure_logging(service, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(settings) as running:
            app.state.service = running
            # What start-up built lives as long as the process (the catalogue, the city's
            # geometry, jieba's dictionary): out of the collector's sight, a full
            # collection no longer walks it. Under load intake ran one every 0.8 s, 54 ms
            # each, 7 % of its core (docs/performance.md).
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(
        title=f"Gridline {service}", version="0.1.0", description=description, lifespan=lifespan
    )
    add_ops_routes(
        app,
        readiness=lambda r: r.app.state.service.runtime.readiness,
        registry=lambda r: r.app.state.service.runtime.registry,
    )
    answer_outages_with_503(app)
    if refuse_bad_text:
        app.add_middleware(RefuseBadText)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with one readable sentence per problem, e.g. `body.grid_id: Field required`."""
        return JSONResponse({"detail": describe_validation(exc)}, status_code=422)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """The 422 answers as sent: `{"detail": "<where: what; ...>"}`."""
        fresh = app.openapi_schema is None
        schema = generate()
        if fresh:
            problem = {"$ref": "#/components/schemas/Problem"}
            default = "#/components/schemas/HTTPValidationError"
            for operations in schema["paths"].values():
                for operation in operations.values():
                    answer = operation["responses"].get("422")
                    # FastAPI's own 422 only; one an operation declares stays as declared.
                    if answer is not None and _schema_ref(answer) == default:
                        answer["description"] = "the request does not fit: where and what"
                        answer["content"] = {"application/json": {"schema": problem}}
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            components.setdefault("Problem", Problem.model_json_schema())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _schema_ref(answer: dict[str, Any]) -> str | None:
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    ref: str | None = schema.get("$ref")
    return ref


def describe_validation(exc: RequestValidationError, *, with_source: bool = True) -> str:
    """Each problem as `where: what`, joined with '; '. `where` is body.field, query.limit,
    ...; without the source (body, query, path) it is just the parameter's name."""
    parts = []
    for err in exc.errors():
        loc = err["loc"] if with_source else err["loc"][1:]
        where = ".".join(str(p) for p in loc) or "request"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)

"""HTTP pieces every service mounts: health, readiness, metrics, and JSON problem errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Readiness = Callable[[], Awaitable[dict[str, bool]]]


def add_ops_routes(
    app: FastAPI,
    readiness: Callable[[Request], Readiness],
    registry: Callable[[Request], CollectorRegistry],
) -> None:
    """/healthz (alive), /readyz (dependencies work), /metrics (Prometheus text)."""

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Kafka, PostgreSQL and consumers work")
    async def readyz(request: Request) -> JSONResponse:
        try:
            checks = await readiness(request)()
        except AttributeError:  # still starting: the runtime is not there yet
            checks = {"starting": False}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry(request)), media_type=CONTENT_TYPE_LATEST)

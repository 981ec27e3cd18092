"""intake's HTTP app: Open311 GeoReport v2 plus the operations endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridline.common.http import answer_outages_with_503, describe_validation, service_app
from gridline.intake.bootstrap import bootstrap
from gridline.intake.config import IntakeSettings
from gridline.intake.entrypoints import open311, v1_reports
from gridline.intake.entrypoints.fast_post import ReportFastPath


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    app = service_app(
        "intake",
        description="Accepts citizens', grid workers' and partners' reports (Open311 GeoReport v2).",
        settings=settings or IntakeSettings(),
        bootstrap=bootstrap,
    )

    @app.exception_handler(RequestValidationError)
    async def open311_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = describe_validation(exc, with_source=False)
        if request.url.path.startswith("/open311/"):
            return JSONResponse([{"code": 400, "description": problems}], status_code=400)
        return JSONResponse({"detail": problems}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def open311_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        if path.startswith("/open311/"):
            description = str(exc.detail)
            if exc.status_code == 404 and path.endswith(".xml"):
                description = f"this server speaks JSON only: ask for {path[:-4]}.json"
            elif exc.status_code == 404:
                description = f"no Open311 resource at {path}; GET /open311/v2/discovery.json"
            return JSONResponse(
                [{"code": exc.status_code, "description": description}],
                status_code=exc.status_code,
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    def outage_body(request: Request, code: int, message: str) -> Any:
        if request.url.path.startswith("/open311/"):
            if request.method == "POST":  # a report refused for the outage is still counted
                request.app.state.service.metrics.rejected_with(code).inc()
            return [{"code": code, "description": message}]
        return {"detail": message}

    answer_outages_with_503(app, outage_body)
    app.include_router(open311.router)
    app.include_router(v1_reports.router)
    # Form-encoded report POSTs skip the router (entrypoints/fast_post.py): same answers.
    app.add_middleware(ReportFastPath)

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
            for path, operations in schema["paths"].items():
                if not path.startswith("/open311/"):
                    continue
                for operation in operations.values():
                    if operation["responses"].pop("422", None) is not None:
                        operation["responses"].setdefault(
                            "400",
                            {
                                "description": "a malformed parameter",
                                "content": {"application/json": {"schema": problems}},
                            },
                        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

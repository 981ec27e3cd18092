"""The hot path: a form-encoded POST /open311/v2/requests.json (or .xml), answered without
the router.

Nearly every request intake serves is this one. Profiled at 400 reports/s, FastAPI's router,
its request/response wrapping and dependency solving cost about as much CPU as validating
and storing the report. This ASGI middleware answers such a POST itself, with the code the
route uses (`open311.answer_report`), so the answers are the same, byte for byte; anything
else (other paths and methods, multipart or another content type, a root path) goes on to
FastAPI, which also documents the operation. It sits inside FastAPI's ServerErrorMiddleware,
so an unexpected error is still a logged 500; a database outage is answered here with the
503 the app's outage handler gives.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridline.common.http import UNAVAILABLE
from gridline.common.pg import is_transient
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain.submission import Form
from gridline.intake.entrypoints.front_door import presented_key, presented_role
from gridline.intake.entrypoints.open311 import answer_report, problem, urlencoded_form
from gridline.intake.entrypoints.open311_xml import MEDIA_TYPES, Format

# The path and the format it answers in.
PATHS: dict[str, Format] = {
    "/open311/v2/requests.json": "json",
    "/open311/v2/requests.xml": "xml",
}
_FORM = b"application/x-www-form-urlencoded"


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The Content-Type header (the first one, as request.headers.get reads it), or b""."""
    for name, value in headers:
        if name == b"content-type":
            return value
    return b""


def _idempotency_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The Idempotency-Key header, as request.headers.get reads it (the first, latin-1)."""
    for name, value in headers:
        if name == b"idempotency-key":
            return value.decode("latin-1")
    return None


async def _body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away before sending it."""
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class ReportFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] not in PATHS
            or scope["method"] != "POST"
            or scope.get("root_path")
            # No content type, or the form's: the route decides every other case.
            or not (content_type := _content_type(scope["headers"]) or _FORM).startswith(_FORM)
        ):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:
            return  # nobody to answer; nothing was stored
        svc: IntakeService = scope["app"].state.service
        fmt = PATHS[scope["path"]]

        async def read_form() -> Form:
            return urlencoded_form(body, content_type.decode("latin-1"))

        try:
            status, answer = await answer_report(
                svc,
                read_form,
                presented_role(scope),
                presented_key(scope),
                _idempotency_key(scope["headers"]),
                fmt,
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            svc.metrics.rejected_with(503).inc()  # as the app's outage handler counts it
            status, answer = 503, problem(503, UNAVAILABLE, fmt)
        headers = [
            (b"content-length", str(len(answer)).encode()),
            (b"content-type", MEDIA_TYPES[fmt].encode()),
        ]
        if status == 503:
            headers.append((b"retry-after", str(svc.settings.retry_after_s).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

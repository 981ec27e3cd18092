"""The front door of every write: the key before the body, a size limit per route, and
503 while reports could be stored but not passed on.

An ASGI middleware outside the fast path and the router, so every write route (Open311's
POST, and whatever else accepts reports) is guarded the same way and both paths of the
Open311 POST give the same answers. For a write it decides, without reading the body:
1. the key, when it is given in a header (`X-Api-Key`, `Authorization: Bearer`) or the
   query string (`api_key`): unknown, or missing where the route takes no key in its body,
   is 403. An Open311 client may put `api_key` in the form instead; then the route reads
   the (limited) body and checks it.
2. the size: a `Content-Length` over the route's limit is 413, and so is a body that
   streams past it (chunked, or longer than declared).
3. Kafka: once the outbox relay has failed to publish for longer than the grace, 503 with
   Retry-After. Reports accepted before then are safe in the outbox.
The role of a key checked here is left in the scope for the route (`presented_role`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain.keys import Role
from gridline.intake.entrypoints.open311_xml import MEDIA_TYPES, errors, format_of

KiB = 1024
MiB = 1024 * KiB
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ROLE = "gridline.intake.role"
_PARTNER = "gridline.intake.partner"


@dataclass(frozen=True)
class WriteRoute:
    prefix: str  # the paths it covers; the longest matching prefix wins
    limit: int  # bytes of request body
    key_in_body: bool = False  # Open311 lets api_key travel in the form
    # A report's own token is a credential here (feedback): a header that is no key is left
    # to the route to check.
    token_allowed: bool = False


# The documented limits (docs/api.md "Keys, limits and errors"), one row per kind of write.
LIMITS: tuple[WriteRoute, ...] = (
    WriteRoute("/open311/v2/requests", 64 * KiB, key_in_body=True),
    WriteRoute("/v1/reports/batch", 8 * MiB),  # up to 500 reports in one request
    WriteRoute("/v1/reports/", 64 * KiB, token_allowed=True),  # {id}/feedback
    WriteRoute("", 64 * KiB),  # every other write: one report, feedback, ...
)


def route_of(path: str, table: Iterable[WriteRoute] = LIMITS) -> WriteRoute:
    return max((r for r in table if path.startswith(r.prefix)), key=lambda r: len(r.prefix))


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit // KiB} KiB"


def too_large_message(limit: int) -> str:
    return (
        f"the request body is larger than the {_size(limit)} ({limit} bytes) this endpoint accepts"
    )


class BodyTooLarge(HTTPException):
    """Raised from receive() when a streamed body passes its limit; the app's HTTP error
    handler answers it (413) in the path's error shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def presented_key(scope: Scope) -> str | None:
    """The key of `X-Api-Key`, `Authorization: Bearer` or the `api_key` query parameter
    (in that order), None when none is given."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    query: bytes = scope.get("query_string", b"")
    if b"api_key" in query:
        # As Starlette's request.query_params reads it: latin-1, the last value wins.
        key = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)).get("api_key")
        if key and key.strip():
            return key.strip()
    return None


def presented_role(scope: Scope) -> Role | None:
    """The role of the key the front door checked, None when the key is left to the body."""
    role: Role | None = scope.get(_ROLE)
    return role


def presented_partner(scope: Scope) -> str | None:
    """The partner id of a request the front door verified as a partner's (key, signature
    and rate limit), None for any other request."""
    partner: str | None = scope.get(_PARTNER)
    return partner


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_route(scope: Scope) -> bool:
    """A write some route of the app answers (others get the router's 404 or 405)."""
    app = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


class FrontDoor:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (method, path) -> whether a route answers it: matching every route's pattern
        # would cost the hot Open311 POST more than the rest of this door. Bounded, since
        # paths carry ids.
        self._routes: dict[tuple[str, str], bool] = {}

    def _guards(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            return False
        known = (scope["method"], scope["path"])
        guarded = self._routes.get(known)
        if guarded is None:
            if len(self._routes) >= 4096:
                self._routes.clear()
            guarded = self._routes[known] = _is_route(scope)
        return guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._guards(scope):
            await self.app(scope, receive, send)
            return
        svc: IntakeService = scope["app"].state.service
        route = route_of(scope["path"])
        key = presented_key(scope)
        if key is not None:
            role = svc.keys.role_of(key)
            if role is None and not route.token_allowed:
                return await self._refuse(svc, scope, send, 403, "api_key is not valid")
            scope[_ROLE] = role
        elif not (route.key_in_body or route.token_allowed):
            return await self._refuse(
                svc,
                scope,
                send,
                403,
                "an api key is required: send it as X-Api-Key or Authorization: Bearer",
            )
        length = _content_length(scope)
        if length is not None and length > route.limit:
            return await self._refuse(svc, scope, send, 413, too_large_message(route.limit))
        stalled = svc.kafka_stalled_for()
        if stalled is not None:
            return await self._refuse(
                svc,
                scope,
                send,
                503,
                f"reports cannot be passed on (Kafka unreachable for {stalled:.0f} s), so"
                " nothing was stored; try again shortly",
            )
        await self._pass(svc, scope, receive, send, route.limit)

    async def _pass(
        self, svc: IntakeService, scope: Scope, receive: Receive, send: Send, limit: int
    ) -> None:
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    svc.metrics.rejected_with(413).inc()
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except BodyTooLarge as exc:  # raised where no handler answers it (the fast path)
            if started:
                raise
            await self._answer(svc, scope, send, 413, str(exc.detail))

    async def _refuse(
        self, svc: IntakeService, scope: Scope, send: Send, status: int, message: str
    ) -> None:
        svc.metrics.rejected_with(status).inc()
        await self._answer(svc, scope, send, status, message)

    async def _answer(
        self, svc: IntakeService, scope: Scope, send: Send, status: int, message: str
    ) -> None:
        path: str = scope["path"]
        if path.startswith("/open311/"):  # the specification's errors, in the path's format
            fmt = format_of(path)
            raw, media_type = errors(fmt, status, message), MEDIA_TYPES[fmt]
        else:
            raw = json.dumps({"detail": message}, ensure_ascii=False).encode()
            media_type = "application/json"
        headers = [
            (b"content-type", media_type.encode()),
            (b"content-length", b"%d" % len(raw)),
        ]
        if status == 503:
            headers.append((b"retry-after", str(svc.settings.retry_after_s).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

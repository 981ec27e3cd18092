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

A partner's key (looked up by digest in the registry's directory, refreshed from the
database every second; a rotated-out or revoked key is 403 saying so) is also checked
on reads under /v1/partner/, and then, in this order: the partner's token bucket (429
with Retry-After, before the body is read), the body (read within the limit) and its
signature (401, gridline.common.partners.check_request on the wall clock); the body is
then replayed to the app and the partner's id left in the scope (`presented_partner`).
Other keys pay one hash and a dictionary look-up, as before.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridline.common.partners import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureProblem,
    check_request,
)
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain.keys import Role
from gridline.intake.domain.partners import Partner, Refused, key_digest, limit_message
from gridline.intake.entrypoints.open311_xml import MEDIA_TYPES, errors, format_of
from gridline.intake.partner_cases import NoSecretKey

KiB = 1024
MiB = 1024 * KiB
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Partners' own endpoints: every method is guarded here (signed and rate-limited).
PARTNER_PATHS = "/v1/partner/"
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
    partners_only: bool = False  # a partner's key, signed, is required


# The documented limits (docs/api.md "Keys, limits and errors"), one row per kind of write.
LIMITS: tuple[WriteRoute, ...] = (
    WriteRoute("/open311/v2/requests", 64 * KiB, key_in_body=True),
    WriteRoute("/v1/reports/batch", 8 * MiB),  # up to 500 reports in one request
    WriteRoute("/v1/reports/", 64 * KiB, token_allowed=True),  # {id}/feedback
    WriteRoute(PARTNER_PATHS, 64 * KiB, partners_only=True),  # callback, points, ...
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


_TIMESTAMP = TIMESTAMP_HEADER.encode()
_SIGNATURE = SIGNATURE_HEADER.encode()


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip()
    return None


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
        if scope["type"] != "http":
            return False
        if scope["method"] not in WRITES and not scope["path"].startswith(PARTNER_PATHS):
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
        partner: Partner | None = None
        if key is not None:
            digest = key_digest(key)
            role = svc.keys.role_of_digest(digest)
            if role is None:
                found = svc.partners.directory.admit(digest, svc.intake.clock.now())
                if isinstance(found, Refused):
                    return await self._refuse(svc, scope, send, 403, found.message)
                if found is not None:
                    partner, role = found.partner, Role.PARTNER
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
        if route.partners_only and partner is None:
            return await self._refuse(
                svc, scope, send, 403, "this endpoint is for partners: send your partner key"
            )
        length = _content_length(scope)
        if length is not None and length > route.limit:
            return await self._refuse(svc, scope, send, 413, too_large_message(route.limit))
        if partner is not None:
            wait = svc.partners.limiter.take(partner, time.monotonic())
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                return await self._refuse(
                    svc, scope, send, 429, limit_message(partner, seconds), retry_after=seconds
                )
        stalled = svc.kafka_stalled_for() if scope["method"] in WRITES else None
        if stalled is not None:
            return await self._refuse(
                svc,
                scope,
                send,
                503,
                f"reports cannot be passed on (Kafka unreachable for {stalled:.0f} s), so"
                " nothing was stored; try again shortly",
            )
        if partner is not None:
            await self._signed(svc, partner, scope, receive, send, route.limit)
            return
        await self._pass(svc, scope, receive, send, route.limit)

    async def _signed(
        self,
        svc: IntakeService,
        partner: Partner,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
    ) -> None:
        """Read the body (within the limit), check the partner's signature of it, then let
        the app read it again."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody to answer; nothing was done
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await self._refuse(svc, scope, send, 413, too_large_message(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            secrets = svc.partners.secrets(partner, svc.intake.clock.now())
            check_request(
                secrets,
                _header(scope, _TIMESTAMP),
                _header(scope, _SIGNATURE),
                body,
                time.time(),  # the replay window is on the wall clock, as the partner's is
            )
        except SignatureProblem as problem:
            return await self._refuse(svc, scope, send, 401, str(problem))
        except NoSecretKey as exc:
            return await self._refuse(svc, scope, send, 503, str(exc))
        scope[_PARTNER] = partner.partner_id
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # a disconnect, when the client goes away
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

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
        self,
        svc: IntakeService,
        scope: Scope,
        send: Send,
        status: int,
        message: str,
        retry_after: int | None = None,
    ) -> None:
        svc.metrics.rejected_with(status).inc()
        await self._answer(svc, scope, send, status, message, retry_after)

    async def _answer(
        self,
        svc: IntakeService,
        scope: Scope,
        send: Send,
        status: int,
        message: str,
        retry_after: int | None = None,
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
        if status == 503 and retry_after is None:
            retry_after = svc.settings.retry_after_s
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

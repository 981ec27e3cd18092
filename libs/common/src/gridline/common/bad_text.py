"""Text no service can store or read is refused at the door. PostgreSQL's `text` cannot
hold U+0000, nor can `jsonb` (in a string or a key), so an id, a filter or a name carrying
a NUL failed as a 500 wherever it met a statement; and a body that is not UTF-8 is not JSON
(RFC 8259), which FastAPI answered with an unexplained 400. `RefuseBadText` answers either
422 before any route runs, saying where (`path`, `query.<name>`, `body.<field>...`, `body`),
in the shape of the services' other 422 answers (`{"detail": "<where>: <what>"}`)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NUL = "must not contain NUL (U+0000), which no stored text can hold"
NOT_UTF8 = "is not UTF-8; send JSON in UTF-8 (RFC 8259)"

# JSON writes NUL only as the escape \u0000; one preceded by an even run of backslashes (an
# escaped backslash, then "u0000" as text) is not one.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def nul_in_query(query: bytes) -> str | None:
    """`query.<name>` of the first parameter whose name or value holds a NUL, if any."""
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        # Decoded as the services decode it (UTF-8); a NUL is a NUL in either.
        if "\x00" in name or "\x00" in value:
            return f"query.{name.replace(chr(0), '')}"
    return None


def nul_in_json(body: bytes) -> str | None:
    """`body.<field>...` of the first string or key in a JSON body that holds a NUL; `body`
    when the body holds one but does not parse (the route's own check explains that)."""
    if _JSON_NUL.search(body) is None:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return "body"
    return _where(doc, "body") or "body"


def _where(value: Any, at: str) -> str | None:
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{at}.{key.replace(chr(0), '')}"
            if (found := _where(item, f"{at}.{key}")) is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _where(item, f"{at}.{i}")) is not None:
                return found
    return None


def bad_body(body: bytes) -> str | None:
    """`<where>: <what>` for a request body that is not UTF-8 or holds a NUL, else None."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return f"body: {NOT_UTF8}"
    where = nul_in_json(body)
    return None if where is None else f"{where}: {NUL}"


class RefuseBadText:
    """ASGI middleware: 422 for a NUL in the path, the query or a JSON body, or a body
    that is not UTF-8."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = "path" if "\x00" in scope["path"] else nul_in_query(scope["query_string"])
        problem = None if where is None else f"{where}: {NUL}"
        if problem is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body, receive = await _read(receive)
            problem = bad_body(body)
        if problem is None:
            await self.app(scope, receive, send)
            return
        answer = json.dumps({"detail": problem}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


async def _read(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a `receive` that hands it to the app as it came."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return b"".join(chunks), _replay(
                [{"type": "http.request", "body": b"".join(chunks), "more_body": True}, message],
                receive,
            )
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()  # after the body: a disconnect, when it comes

    return again

"""Idempotency keys: a client's retry of a write gets the first answer, not a second report.

A key is scoped per api key (two clients may pick the same key), and remembered with a
fingerprint of what was sent and the answer given. The same key with the same request
replays that answer (same report, same status); the same key with another request is a
conflict (409). Only acceptances are remembered, in the same statement that stores the
reports, so a remembered key always means stored reports; a refused request (4xx) is
checked again on retry. Keys expire after a time (`IntakeSettings.idempotency_ttl_hours`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

MAX_KEY_LENGTH = 255
HEADER = "Idempotency-Key"


class KeyProblem(ValueError):
    """The Idempotency-Key header itself is malformed (answered 400)."""


class Conflict(Exception):
    """The key was used with another request: nothing stored, answered 409."""


@dataclass(frozen=True)
class Once:
    """A request that must take effect at most once: its client's scope, key and fingerprint."""

    scope: str
    key: str
    fingerprint: str

    @property
    def label(self) -> str:
        return f"{self.scope} {self.key}"


@dataclass(frozen=True)
class Claim:
    """What is stored with the reports of a keyed request: the key and the answer given.
    `owner` tells apart two requests that carry the same key in one group commit."""

    once: Once
    owner: str
    status: int
    answer: bytes


@dataclass(frozen=True)
class Remembered:
    fingerprint: str
    status: int
    answer: bytes


def scope_of(api_key: str) -> str:
    """The client's scope: a digest, so the table holds no usable api key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


def checked_key(raw: str) -> str:
    key = raw.strip()
    if not key:
        raise KeyProblem(f"{HEADER} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise KeyProblem(f"{HEADER} is longer than {MAX_KEY_LENGTH} characters")
    if not all(" " < ch <= "~" for ch in key):
        raise KeyProblem(f"{HEADER} must be printable ASCII without spaces (a UUID is ideal)")
    return key


def fingerprint(operation: str, content: bytes) -> str:
    """What makes two requests the same: the operation and the exact body sent."""
    digest = hashlib.sha256(operation.encode())
    digest.update(b"\0")
    digest.update(content)
    return digest.hexdigest()


def form_fingerprint(operation: str, form: Mapping[str, str]) -> str:
    """A form's fingerprint, whatever its field order or encoding (urlencoded, multipart);
    every value of a repeated field counts (a decoded Form keeps them in `lists`)."""
    lists: Mapping[str, list[str]] = getattr(form, "lists", None) or {
        k: [v] for k, v in form.items()
    }
    fields = sorted((k, v) for k, values in lists.items() for v in values if k != "api_key")
    return fingerprint(operation, json.dumps(fields, ensure_ascii=False).encode())


def once(api_key: str, raw_key: str, operation: str, fingerprint: str) -> Once:
    return Once(scope_of(api_key), checked_key(raw_key), fingerprint)


def replay(remembered: Remembered, request: Once) -> tuple[int, bytes]:
    """The first answer again, or Conflict when this key was used with another request."""
    if remembered.fingerprint != request.fingerprint:
        raise Conflict(
            f"{HEADER} {request.key!r} was already used with a different request; "
            "use a new key for a new report"
        )
    return remembered.status, remembered.answer

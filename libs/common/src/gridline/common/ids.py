"""Time-ordered unique ids (UUIDv7, RFC 9562) for events, reports and work orders."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, then random bits; sorts by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_id() -> str:
    return str(uuid7())


def stable_id(kind: str, *parts: object) -> str:
    """The same inputs always give the same id (UUIDv5): for things that must be created
    once however often the event behind them is redelivered."""
    name = ":".join(["gridline", kind, *map(str, parts)])
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))

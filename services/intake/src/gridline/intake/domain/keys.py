"""Keys and their roles: who may write to intake, and what a role's reports are.

Every write to intake presents a key; the key names a role, and the role decides the
report's `source` wherever the client may not choose it (an Open311 client cannot claim to
be a sensor). Keys are held as SHA-256 digests, so the ring never keeps a key in the clear
longer than start-up takes and a lookup costs one hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    OPEN311_CLIENT = "open311_client"  # a citizen app speaking Open311
    PARTNER = "partner"  # an employer of delivery riders and the like
    SENSOR = "sensor"  # a device that raises reports on a threshold
    HANDLER = "handler"  # a grid worker's or a unit's own tool
    ADMIN = "admin"  # the city's operators, e.g. the 12345 hotline desk


# The sources each role may report as; the first is what its reports are when it names none.
SOURCES: Mapping[Role, tuple[str, ...]] = {
    Role.OPEN311_CLIENT: ("citizen",),
    Role.PARTNER: ("partner",),
    Role.SENSOR: ("sensor",),
    Role.HANDLER: ("grid_worker",),
    Role.ADMIN: ("hotline", "citizen", "grid_worker", "partner", "sensor"),
}


class SourceNotAllowed(Exception):
    """The key's role may not report as the source the client asked for."""

    def __init__(self, role: Role, source: str) -> None:
        allowed = ", ".join(SOURCES[role])
        super().__init__(f"a {role.value} key reports as {allowed}, not as {source}")
        self.role = role
        self.source = source


def report_source(role: Role, asked: str | None = None) -> str:
    """The `source` of a report sent with a key of `role`: what the client asked for when
    the role may choose it, else the role's own; asking for another one is refused."""
    allowed = SOURCES[role]
    if asked is None:
        return allowed[0]
    if asked not in allowed:
        raise SourceNotAllowed(role, asked)
    return asked


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def split_keys(raw: str | None) -> list[str]:
    """A comma-separated setting's keys, blanks dropped."""
    return [k.strip() for k in (raw or "").split(",") if k.strip()]


@dataclass(frozen=True)
class KeyRing:
    """The keys intake accepts, each with its role."""

    _roles: Mapping[bytes, Role] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Mapping[Role, Iterable[str]]) -> KeyRing:
        """A key listed under two roles keeps the first role in Role's order: configuring
        the same key twice must not widen what it may do."""
        roles: dict[bytes, Role] = {}
        for role in Role:
            for key in keys.get(role, ()):
                roles.setdefault(_digest(key), role)
        return cls(roles)

    def role_of(self, key: str | None) -> Role | None:
        """The role of a presented key, None for no key or an unknown one."""
        if not key:
            return None
        return self._roles.get(_digest(key.strip()))

    def role_of_digest(self, digest: bytes) -> Role | None:
        """role_of for a key already hashed (the front door hashes once for both look-ups:
        these keys, and partners' keys)."""
        return self._roles.get(digest)

    def __len__(self) -> int:
        return len(self._roles)

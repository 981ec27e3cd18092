"""Partners (合作平台): their identity, keys, signing-secret versions, rate limits and rider
ids, as pure rules.

A partner has keys (shown once, held as SHA-256 digests; a rotated-out key stays valid
until its overlap ends, a revoked partner's keys are refused at once), a signing secret
derived from its id and a version (gridline.common.partners; the versions in force are
newest first, two while a rotation's overlap lasts), a token bucket per process, and
riders known only by the partner's own opaque ids (never a phone number or an email).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

ID_PREFIX = "ptn_"
KEY_PREFIX = "gpk_"
MAX_NAME = 100
MAX_URL = 2000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")
_RIDER = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_SEVEN_DIGITS = re.compile(r"\d(?:[\s\-.()]*\d){6,}")
# A UUID or another hex id (16+ hex digits, some letters) may hold a digit run by chance.
_HEX_ID = re.compile(r"^(?=.*[A-Fa-f])[0-9A-Fa-f]{16,}$")
RIDER_REFUSED = "rider_id must be your own opaque id, not a phone number"


class PartnerProblem(ValueError):
    """A partner's registration or change that cannot be taken (400, the field named)."""


def new_partner_id() -> str:
    return ID_PREFIX + secrets.token_hex(6)


def new_key() -> str:
    """A partner key: shown once to the operator, stored only as its digest."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.strip().encode()).digest()


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise PartnerProblem(
            f"name: 1-{MAX_NAME} characters of letters, digits, space, '_', '.', '-',"
            f" starting with a letter or digit; got {name[:40]!r}"
        )
    return name


def check_limits(rate_per_s: float, burst: int) -> None:
    if not 0 < rate_per_s <= 10_000:
        raise PartnerProblem(f"rate_per_s: must lie in (0, 10000], got {rate_per_s}")
    if not 1 <= burst <= 100_000:
        raise PartnerProblem(f"burst: must lie in [1, 100000], got {burst}")


def check_callback_url(url: str, field_name: str = "url") -> str:
    """An absolute http(s) URL with a host, no spaces or control characters."""
    url = url.strip()
    parts = urlsplit(url)
    if (
        len(url) > MAX_URL
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ord(ch) <= 32 or ord(ch) == 127 for ch in url)
    ):
        raise PartnerProblem(
            f"{field_name}: must be an absolute http:// or https:// URL with a host"
            f" (at most {MAX_URL} characters), got {url[:80]!r}"
        )
    return url


def check_rider_id(rider_id: str) -> str:
    """The partner's opaque id of a rider: 1-64 of [A-Za-z0-9_.:-], and nothing that looks
    like a phone number (7 or more digits, unless it is a UUID or hex id) or an email:
    riders' personal data stays with their employer."""
    hex_id = bool(_HEX_ID.match(rider_id.replace("-", "")))
    if "@" in rider_id or (not hex_id and _SEVEN_DIGITS.search(rider_id)):
        raise PartnerProblem(RIDER_REFUSED)
    if not _RIDER.match(rider_id):
        raise PartnerProblem(
            "rider_id: 1-64 characters of letters, digits, '_', '.', ':', '-'"
            f" (your own opaque id of the rider), got {rider_id[:70]!r}"
        )
    return rider_id


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    active: bool
    secret_versions: tuple[int, ...]  # newest first
    secret_overlap_until: datetime | None
    rate_per_s: float
    burst: int
    callback_url: str | None
    created_at: datetime
    updated_at: datetime

    def versions_in_force(self, now: datetime) -> tuple[int, ...]:
        """The secret versions a request may be signed with: the previous one only until
        the rotation's overlap ends."""
        if len(self.secret_versions) > 1 and (
            self.secret_overlap_until is None or now >= self.secret_overlap_until
        ):
            return self.secret_versions[:1]
        return self.secret_versions


def register(
    partner_id: str,
    name: str,
    rate_per_s: float,
    burst: int,
    callback_url: str | None,
    now: datetime,
) -> Partner:
    check_limits(rate_per_s, burst)
    return Partner(
        partner_id=partner_id,
        name=check_name(name),
        active=True,
        secret_versions=(1,),
        secret_overlap_until=None,
        rate_per_s=rate_per_s,
        burst=burst,
        callback_url=check_callback_url(callback_url, "callback_url") if callback_url else None,
        created_at=now,
        updated_at=now,
    )


def rotate_secret(partner: Partner, now: datetime, overlap: timedelta) -> Partner:
    """A new secret version first; the newest current one stays valid for `overlap`."""
    current = partner.versions_in_force(now)[0]
    return replace(
        partner,
        secret_versions=(current + 1, current),
        secret_overlap_until=now + overlap,
        updated_at=now,
    )


def settled(partner: Partner, now: datetime) -> Partner:
    """The partner with an ended overlap's old secret version dropped."""
    versions = partner.versions_in_force(now)
    if versions == partner.secret_versions:
        return partner
    return replace(partner, secret_versions=versions, secret_overlap_until=None)


@dataclass(frozen=True)
class Key:
    partner_id: str
    expires_at: datetime | None  # set once rotated out (valid until then) or revoked


@dataclass(frozen=True)
class Admitted:
    partner: Partner


@dataclass(frozen=True)
class Refused:
    """A partner key that is no longer valid (403), in words that say why."""

    message: str


def admit(key: Key, partners: Mapping[str, Partner], now: datetime) -> Admitted | Refused:
    partner = partners.get(key.partner_id)
    if partner is None or not partner.active:
        return Refused("this partner key was revoked: the partner is no longer active")
    if key.expires_at is not None and now >= key.expires_at:
        return Refused(
            f"this partner key expired at {key.expires_at.isoformat()} (it was rotated"
            " out or revoked); use your current key"
        )
    return Admitted(partner)


@dataclass
class Directory:
    """Every partner key and partner, as last read from the database: what the front door
    looks keys up in (by digest), without a round trip per request."""

    keys: dict[bytes, Key] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Iterable[tuple[bytes, Key]], partners: Iterable[Partner]) -> Directory:
        return cls(dict(keys), {p.partner_id: p for p in partners})

    def admit(self, digest: bytes, now: datetime) -> Admitted | Refused | None:
        """None for a digest that is no partner's key."""
        key = self.keys.get(digest)
        if key is None:
            return None
        return admit(key, self.partners, now)


@dataclass
class TokenBucket:
    """A partner's rate limit in one process: `rate` tokens a second, at most `burst`
    saved up; each request takes one. Times are monotonic seconds."""

    rate: float
    burst: int
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> float:
        """Take a token: 0 when the request may go, else the seconds until one is due."""
        if self.tokens < 0:  # a new bucket starts full
            self.tokens, self.at = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Limiter:
    """One token bucket per partner, following changes of the partner's limit."""

    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, partner: Partner, now: float) -> float:
        bucket = self.buckets.get(partner.partner_id)
        if bucket is None or (bucket.rate, bucket.burst) != (partner.rate_per_s, partner.burst):
            old = bucket
            bucket = TokenBucket(partner.rate_per_s, partner.burst)
            if old is not None and old.tokens >= 0:  # what was saved stays, up to the burst
                bucket.tokens, bucket.at = min(old.tokens, float(partner.burst)), old.at
            self.buckets[partner.partner_id] = bucket
        return bucket.take(now)


def limit_message(partner: Partner, wait_s: int) -> str:
    return (
        f"rate limit exceeded: this partner may send {partner.rate_per_s:g} requests a second"
        f" (bursts of up to {partner.burst}); retry after {wait_s} s"
    )

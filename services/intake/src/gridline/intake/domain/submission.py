"""Validating an Open311 POST requests.json form into a submission, with precise errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from gridline.common.events import ReportTags
from gridline.intake.domain.idempotency import Claim

MAX_DESCRIPTION = 4000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Open311Error(Exception):
    """An error answered as the specification's [{code, description}] with that status."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class Submission:
    service_code: str
    lat: float
    lon: float
    description: str
    address_string: str | None
    media_url: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    device_id: str | None
    account_id: str | None
    # What only the native API (/v1) can say.
    grid_id: str | None = None
    occurred_at: datetime | None = None
    photos: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


RECEIVED_NOTES = "Received; routing to the grid that holds this location."


@dataclass(frozen=True)
class Accepted:
    """A valid submission given its identity, waiting to be stored with its event."""

    request_id: str  # also the work order's id: one report opens one work order
    token: str
    submission: Submission
    source: str  # citizen | partner | grid_worker | sensor | hotline, as the key may claim
    requested_at: datetime
    # Set for a request with an Idempotency-Key: stored in the same statement as the report.
    claim: Claim | None = None
    tags: ReportTags = field(default_factory=ReportTags)  # domain/tagging.py


def _text(form: Mapping[str, str], name: str, limit: int = 200) -> str | None:
    value = form.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    return value


def _coordinate(form: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = form.get(name, "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(
            400, f"{name} must be a decimal number in WGS84 degrees, got {raw!r}"
        ) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Open311Error(400, f"{name} must lie between {low} and {high}, got {raw}")
    return value


def parse_submission(
    form: Mapping[str, str],
    *,
    known_service: Callable[[str], bool],
    inside_city: Callable[[float, float], bool],
) -> Submission:
    """Check the form in the order a client would fix it; the first problem is raised."""
    code = _text(form, "service_code", 100)
    if code is None:
        raise Open311Error(400, "service_code is required; GET services.json lists the codes")
    if not known_service(code):
        raise Open311Error(
            404, f"service_code {code!r} not found; GET services.json lists the codes"
        )
    has_lat, has_long = bool(form.get("lat", "").strip()), bool(form.get("long", "").strip())
    if not (has_lat and has_long):
        if form.get("address_string", "").strip() or form.get("address_id", "").strip():
            raise Open311Error(
                400,
                "lat and long are required: this server does not geocode address_string or address_id",
            )
        raise Open311Error(400, "lat and long are required (WGS84 decimal degrees)")
    lat = _coordinate(form, "lat", -90, 90)
    lon = _coordinate(form, "long", -180, 180)
    if not inside_city(lon, lat):
        raise Open311Error(
            400, f"the location lat={lat}, long={lon} is outside the city served here"
        )
    description = (form.get("description") or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    media_url = _text(form, "media_url", 2000)
    if media_url is not None and not media_url.startswith(("http://", "https://")):
        raise Open311Error(400, "media_url must be an http:// or https:// URL")
    email = _text(form, "email", 254)
    if email is not None and not _EMAIL.match(email):
        raise Open311Error(400, f"email {email!r} is not an email address")
    return Submission(
        service_code=code,
        lat=lat,
        lon=lon,
        description=description,
        address_string=_text(form, "address_string", 500),
        media_url=media_url,
        email=email,
        phone=_text(form, "phone", 40),
        first_name=_text(form, "first_name", 100),
        last_name=_text(form, "last_name", 100),
        device_id=_text(form, "device_id", 200),
        account_id=_text(form, "account_id", 200),
    )

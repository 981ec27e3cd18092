"""Validating an Open311 POST requests.json form into a submission, with precise errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gridline.common.events import ReportTags
from gridline.common.policy.catalogue import Attribute
from gridline.intake.domain.attributes import Answers, check_answers, form_answers
from gridline.intake.domain.gazetteer import Place
from gridline.intake.domain.idempotency import Claim
from gridline.intake.domain.inputs import Open311Error, check_text

__all__ = ["Accepted", "Form", "Open311Error", "Submission", "parse_submission"]

MAX_DESCRIPTION = 4000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Form(dict[str, str]):
    """A decoded form: each field's last value (as Starlette reads a form), and in `lists`
    every value of every field, for the repeated `attribute[CODE][]` of a multivaluelist."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        pairs = list(pairs)
        super().__init__(pairs)
        self.lists: dict[str, list[str]] = {}
        for key, value in pairs:
            self.lists.setdefault(key, []).append(value)


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
    # The grid the report named: a grid worker's own grid (/v1), or the grid an Open311
    # address_string named.
    grid_id: str | None = None
    # What only the native API (/v1) can say.
    occurred_at: datetime | None = None
    photos: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    attributes: Answers = field(default_factory=dict)


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
    # A partner's tip: the partner verified at the front door, and its opaque rider id.
    partner_id: str | None = None
    rider_id: str | None = None


def _text(form: Mapping[str, str], name: str, limit: int = 200) -> str | None:
    value = form.get(name)
    if value is None or not value.strip():
        return None
    value = check_text(name, value.strip())
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    return value


def _coordinate(form: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = check_text(name, form.get(name, "").strip())
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
    attributes: Callable[[str], Sequence[Attribute]] = lambda code: (),
    places: Callable[[str], list[Place]] = lambda text: [],
) -> Submission:
    """Check the form in the order a client would fix it; the first problem is raised.
    `attributes` gives a category's questions; `places` the places a text names."""
    if isinstance(form, Form):
        # Every field of GeoReport v2 holds one value but the attributes, which
        # check_answers checks knowing their datatypes (a multivaluelist repeats). The same
        # value repeated is harmless.
        for name, values in form.lists.items():
            if len(values) > 1 and not name.startswith("attribute[") and len(set(values)) > 1:
                raise Open311Error(
                    400, f"{name} is given {len(values)} times with different values; send it once"
                )
    code = _text(form, "service_code", 100)
    if code is None:
        raise Open311Error(400, "service_code is required; GET services.json lists the codes")
    if not known_service(code):
        raise Open311Error(
            404, f"service_code {code!r} not found; GET services.json lists the codes"
        )
    address = _text(form, "address_string", 500)
    address_id = _text(form, "address_id", 200)
    lat, lon, grid_id = _location(form, address, address_id, places)
    if not inside_city(lon, lat):
        raise Open311Error(
            400, f"the location lat={lat}, long={lon} is outside the city served here"
        )
    description = check_text("description", (form.get("description") or "").strip(), multiline=True)
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    media_url = _text(form, "media_url", 2000)
    if media_url is not None and not media_url.startswith(("http://", "https://")):
        raise Open311Error(400, "media_url must be an http:// or https:// URL")
    email = _text(form, "email", 254)
    if email is not None and not _EMAIL.match(email):
        raise Open311Error(400, f"email {email!r} is not an email address")
    lists = form.lists if isinstance(form, Form) else {k: [v] for k, v in form.items()}
    answers = check_answers(code, attributes(code), form_answers(lists))
    return Submission(
        service_code=code,
        lat=lat,
        lon=lon,
        description=description,
        address_string=address,
        media_url=media_url,
        email=email,
        phone=_text(form, "phone", 40),
        first_name=_text(form, "first_name", 100),
        last_name=_text(form, "last_name", 100),
        device_id=_text(form, "device_id", 200),
        account_id=_text(form, "account_id", 200),
        attributes=answers,
        grid_id=grid_id,
    )


def _location(
    form: Mapping[str, str],
    address: str | None,
    address_id: str | None,
    places: Callable[[str], list[Place]],
) -> tuple[float, float, str | None]:
    """lat and long when given; else the point of the grid, community or street that
    address_id (a unit id) or address_string (a unit's name or id) names."""
    has_lat, has_long = bool(form.get("lat", "").strip()), bool(form.get("long", "").strip())
    if has_lat or has_long:
        if not (has_lat and has_long):
            raise Open311Error(400, "lat and long are required together (WGS84 decimal degrees)")
        return _coordinate(form, "lat", -90, 90), _coordinate(form, "long", -180, 180), None
    for name, text in (("address_id", address_id), ("address_string", address)):
        if text is None:
            continue
        found = places(text)
        if len(found) == 1:
            return found[0].lat, found[0].lon, found[0].grid_id
        if found:
            ids = ", ".join(f"{p.id} ({p.level})" for p in found)
            raise Open311Error(
                400, f"{name} {text!r} names {len(found)} places: {ids}; send one of these ids"
            )
        raise Open311Error(
            400,
            f"{name} {text!r} is not a grid, community or street of this city: send lat and"
            " long, or the exact name or id of a grid, community or street",
        )
    raise Open311Error(
        400,
        "lat and long are required (WGS84 decimal degrees), or an address_string naming a"
        " grid, community or street of this city",
    )

"""Checking what an Open311 client sends (texts, dates, lists, pages, path ids), with errors
that name the field: no input may reach PostgreSQL in a form it refuses (a NUL in a text,
a date beyond its range), which would otherwise be a 500."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Filters: a comma list of ids or codes is one SQL array; past this it is a scan, not a look-up.
MAX_LIST = 100
MAX_ID = 100  # longest service_request_id, token or service_code looked up
PAGE_SIZE = 100  # GET requests.json: default page size
MAX_PAGE_SIZE = 1000
MAX_PAGE = 100_000  # keeps OFFSET well inside PostgreSQL's bigint
DEFAULT_WINDOW = timedelta(days=90)
STATUSES = ("open", "closed")
# Control characters (Unicode Cc: C0, DEL, C1) except the line breaks and tab a
# description may hold. PostgreSQL refuses NUL in text; XML 1.0 cannot carry the rest.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Open311Error(Exception):
    """An error answered as the specification's error list with that status."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def check_text(name: str, value: str, *, multiline: bool = False) -> str:
    """The value unchanged, or 400 naming the field and the first control character."""
    found = (_CONTROL if multiline else _CONTROL_OR_BREAK).search(value)
    if found is not None:
        char = found.group()
        label = unicodedata.name(char, "") or "a control character"
        raise Open311Error(
            400, f"{name} contains a control character (U+{ord(char):04X} {label}); remove it"
        )
    return value


def check_path_id(name: str, value: str) -> str:
    """An id from the path: 400 for control characters or an overlong id, else unchanged."""
    check_text(name, value)
    if len(value) > MAX_ID:
        raise Open311Error(400, f"{name} is longer than {MAX_ID} characters")
    return value


def parse_date(name: str, raw: str | None) -> datetime | None:
    """An ISO 8601 date-time with its zone, as an aware UTC datetime; None when blank."""
    if raw is None or not raw.strip():
        return None
    check_text(name, raw)
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(
            400, f"{name} must be an ISO 8601 date-time such as 2026-11-01T08:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} must include a time zone (Z or +08:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        raise Open311Error(400, f"{name} is out of range: {raw.strip()}") from None


def parse_list(name: str, raw: str | None) -> list[str] | None:
    """A comma-separated filter: its non-blank items, None when there are none."""
    if raw is None:
        return None
    check_text(name, raw)
    items = [s.strip() for s in raw.split(",") if s.strip()]
    if len(items) > MAX_LIST:
        raise Open311Error(400, f"{name} lists {len(items)} values; at most {MAX_LIST}")
    long = [s for s in items if len(s) > MAX_ID]
    if long:
        raise Open311Error(400, f"{name} has a value longer than {MAX_ID} characters")
    return items or None


def parse_int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or not raw.strip():
        return default
    check_text(name, raw)
    try:
        value = int(raw.strip())
    except ValueError:
        raise Open311Error(400, f"{name} must be a whole number, got {raw.strip()!r}") from None
    if not low <= value <= high:
        raise Open311Error(400, f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class RequestQuery:
    """GET requests.json, checked: every filter, and the page to answer."""

    ids: list[str] | None
    codes: list[str] | None
    statuses: list[str] | None
    start: datetime | None
    end: datetime | None
    limit: int
    offset: int


def parse_request_query(
    *,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
    page: str | None,
    page_size: str | None,
    now: datetime,
) -> RequestQuery:
    """The specification's rules: listed ids override every other filter; without ids or
    dates, the last 90 days. Newest first, `page` (1-based) of `page_size` requests."""
    ids = parse_list("service_request_id", service_request_id)
    codes = parse_list("service_code", service_code)
    statuses = parse_list("status", status)
    bad = [s for s in statuses or [] if s not in STATUSES]
    if bad:
        raise Open311Error(400, f"status must be open or closed, got {', '.join(bad)}")
    start, end = parse_date("start_date", start_date), parse_date("end_date", end_date)
    if start and end and start > end:
        raise Open311Error(400, "start_date must not be after end_date")
    number = parse_int("page", page, 1, 1, MAX_PAGE)
    size = parse_int("page_size", page_size, PAGE_SIZE, 1, MAX_PAGE_SIZE)
    if ids:
        codes = statuses = start = end = None
    elif start is None and end is None:
        start = now.replace(microsecond=0) - DEFAULT_WINDOW
    return RequestQuery(ids, codes, statuses, start, end, size, (number - 1) * size)

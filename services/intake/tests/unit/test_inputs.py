"""Query and path checks: every bad input is a 400 naming the parameter, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridline.intake.domain.inputs import (
    MAX_LIST,
    Open311Error,
    check_path_id,
    parse_date,
    parse_request_query,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, 30, 123, tzinfo=UTC)
NONE: dict[str, str | None] = dict.fromkeys(
    ("service_request_id", "service_code", "start_date", "end_date", "status", "page", "page_size")
)


def query(**given: str):  # type: ignore[no-untyped-def]
    return parse_request_query(**{**NONE, **given}, now=NOW)  # type: ignore[arg-type]


def test_defaults_are_the_last_90_days_first_page_of_100() -> None:
    q = query()
    assert (q.start, q.end, q.limit, q.offset) == (
        NOW.replace(microsecond=0) - timedelta(days=90),
        None,
        100,
        0,
    )


def test_pages_and_filters() -> None:
    q = query(
        page="3",
        page_size="20",
        service_code="a, b,,",
        status="open",
        start_date="2026-11-01T08:00+08:00",
    )
    assert (q.limit, q.offset, q.codes, q.statuses) == (20, 40, ["a", "b"], ["open"])
    assert q.start == datetime(2026, 11, 1, 0, 0, tzinfo=UTC) and q.end is None


def test_ids_override_every_other_filter() -> None:
    q = query(service_request_id="x,y", service_code="a", status="closed")
    assert (q.ids, q.codes, q.statuses, q.start) == (["x", "y"], None, None, None)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"start_date": "0001-01-01T00:00+14:00"}, "start_date is out of range"),
        ({"end_date": "9999-12-31T23:59-14:00"}, "end_date is out of range"),
        ({"start_date": "yesterday"}, "start_date must be an ISO 8601"),
        ({"end_date": "2026-11-01T08:00"}, "end_date must include a time zone"),
        ({"start_date": "2026-11-01T08:00\x00Z"}, "start_date contains a control character"),
        (
            {"start_date": "2026-11-02T00:00Z", "end_date": "2026-11-01T00:00Z"},
            "start_date must not be after",
        ),
        ({"service_code": "a\x00"}, "service_code contains a control character (U+0000"),
        ({"service_request_id": "1,\x7f"}, "service_request_id contains a control character"),
        ({"service_request_id": ",".join(["x"] * (MAX_LIST + 1))}, f"at most {MAX_LIST}"),
        ({"service_code": "x" * 101}, "longer than 100"),
        ({"status": "pending"}, "status must be open or closed"),
        ({"page": "0"}, "page must be between 1 and"),
        ({"page": "two"}, "page must be a whole number"),
        ({"page_size": "1001"}, "page_size must be between 1 and 1000"),
        ({"page_size": "-1"}, "page_size must be between"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(given: dict[str, str], words: str) -> None:
    with pytest.raises(Open311Error) as err:
        query(**given)
    assert err.value.code == 400 and words in err.value.description


def test_path_ids_refuse_control_characters_and_overlong_ids() -> None:
    assert check_path_id("token", "abc-123") == "abc-123"
    for bad, words in (("a\x00b", "token contains a control"), ("x" * 101, "longer than 100")):
        with pytest.raises(Open311Error) as err:
            check_path_id("token", bad)
        assert err.value.code == 400 and words in err.value.description


def test_dates_come_back_in_utc() -> None:
    assert parse_date("d", "2026-11-01T08:00:00+08:00") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_date("d", " ") is None

"""Validating Open311 submissions: every refusal says what to fix, with the right status."""

from __future__ import annotations

import pytest

from gridline.intake.domain.status import received_notice
from gridline.intake.domain.submission import Open311Error, parse_submission

pytestmark = pytest.mark.unit

VALID = {
    "service_code": "exposed-garbage",
    "lat": "31.78",
    "long": "119.95",
    "description": "垃圾堆在路边",
}


def parse(form: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_submission(
        form,
        known_service=lambda code: code == "exposed-garbage",
        inside_city=lambda lon, lat: 119.9 <= lon <= 120.1 and 31.7 <= lat <= 31.9,
    )


def test_valid_form_becomes_a_submission() -> None:
    s = parse({**VALID, "email": "a@b.cn", "address_string": " 青龙路 1 号 "})
    assert (s.service_code, s.lat, s.lon, s.email, s.address_string) == (
        "exposed-garbage",
        31.78,
        119.95,
        "a@b.cn",
        "青龙路 1 号",
    )


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"service_code": ""}, 400, "service_code is required"),
        ({"service_code": "potholes"}, 404, "not found"),
        ({"lat": ""}, 400, "lat and long are required"),
        ({"lat": "", "long": "", "address_string": "x"}, 400, "does not geocode"),
        ({"lat": "north"}, 400, "lat must be a decimal"),
        ({"long": "200"}, 400, "long must lie between"),
        ({"lat": "nan"}, 400, "lat must lie between"),
        ({"lat": "40.0", "long": "116.4"}, 400, "outside the city"),
        ({"media_url": "ftp://x"}, 400, "media_url"),
        ({"email": "not-an-email"}, 400, "email"),
        ({"description": "x" * 4001}, 400, "description is longer"),
    ],
)
def test_bad_form_is_refused_with_a_precise_error(
    change: dict[str, str], code: int, words: str
) -> None:
    with pytest.raises(Open311Error) as err:
        parse({**VALID, **change})
    assert err.value.code == code
    assert words in err.value.description


def test_received_notice_names_the_first_handler_in_both_languages() -> None:
    grid = received_notice("grid", "Urban Management Bureau", "城市管理局")
    assert "grid worker" in grid and "网格员" in grid
    street = received_notice("street", "Urban Management Bureau", "城市管理局")
    assert "street office" in street and "街道" in street and "grid worker" not in street
    department = received_notice("department", "Water Bureau", "水务局")
    assert "Water Bureau" in department and "水务局" in department

"""Validating Open311 submissions: every refusal says what to fix, with the right status."""

from __future__ import annotations

import pytest

from gridline.intake.domain.gazetteer import Gazetteer
from gridline.intake.domain.status import received_notice
from gridline.intake.domain.submission import Form, Open311Error, parse_submission

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
        ({"lat": "", "long": "", "address_string": "x"}, 400, "is not a grid, community or street"),
        ({"lat": "", "long": ""}, 400, "or an address_string naming a grid"),
        ({"description": "nul\x00"}, 400, "description contains a control character (U+0000"),
        ({"account_id": "a\nb"}, 400, "account_id contains a control character (U+000A"),
        ({"service_code": "exposed\x1bgarbage"}, 400, "service_code contains a control"),
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


def test_a_field_given_twice_with_different_values_is_refused_the_same_value_is_one() -> None:
    with pytest.raises(Open311Error) as err:
        parse(Form([*VALID.items(), ("lat", "31.79")]))  # type: ignore[arg-type]
    assert (err.value.code, err.value.description) == (
        400,
        "lat is given 2 times with different values; send it once",
    )
    same = parse(Form([*VALID.items(), ("lat", "31.78"), ("email", "a@b.cn")]))  # type: ignore[arg-type]
    assert (same.lat, same.email) == (31.78, "a@b.cn")


def test_a_description_may_hold_line_breaks_and_tabs() -> None:
    assert parse({**VALID, "description": "第一行\r\n\t第二行"}).description == "第一行\r\n\t第二行"


PLACES = Gazetteer(
    [
        {"id": "g1", "level": "grid", "name": "青龙东社区第1网格", "lon": 119.95, "lat": 31.8},
        {"id": "c1", "level": "community", "name": "青龙东社区", "lon": 119.96, "lat": 31.81},
        {"id": "c2", "level": "community", "name": "同名社区", "lon": 119.97, "lat": 31.82},
        {"id": "c3", "level": "community", "name": "同名社区", "lon": 119.98, "lat": 31.83},
        {"id": "far", "level": "street", "name": "远处街道", "lon": 100.0, "lat": 20.0},
    ]
)
NO_POINT = {k: v for k, v in VALID.items() if k not in ("lat", "long")}


def parse_named(form: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_submission(
        form,
        known_service=lambda code: code == "exposed-garbage",
        inside_city=lambda lon, lat: 119.9 <= lon <= 120.1 and 31.7 <= lat <= 31.9,
        places=PLACES.lookup,
    )


@pytest.mark.parametrize(
    ("address", "point", "grid_id"),
    [
        (" 青龙东社区第1网格 ", (31.8, 119.95), "g1"),
        ("青龙东社区", (31.81, 119.96), None),
        ("g1", (31.8, 119.95), "g1"),
    ],
)
def test_an_address_naming_a_place_gets_its_point(
    address: str, point: tuple[float, float], grid_id: str | None
) -> None:
    s = parse_named({**NO_POINT, "address_string": address})
    assert ((s.lat, s.lon), s.grid_id, s.address_string) == (point, grid_id, address.strip())


def test_an_address_id_naming_a_unit_gets_its_point() -> None:
    s = parse_named({**NO_POINT, "address_id": "c1"})
    assert (s.lat, s.lon, s.grid_id) == (31.81, 119.96, None)


def test_coordinates_win_over_an_address() -> None:
    s = parse_named({**VALID, "address_string": "青龙东社区"})
    assert (s.lat, s.lon, s.grid_id) == (31.78, 119.95, None)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("同名社区", "names 2 places: c2 (community), c3 (community)"),
        ("青龙东", "is not a grid, community or street"),
        ("远处街道", "outside the city"),
    ],
)
def test_an_address_that_names_no_single_place_inside_is_refused(address: str, words: str) -> None:
    with pytest.raises(Open311Error) as err:
        parse_named({**NO_POINT, "address_string": address})
    assert err.value.code == 400 and words in err.value.description


def test_received_notice_names_the_first_handler_in_both_languages() -> None:
    grid = received_notice("grid", "Urban Management Bureau", "城市管理局")
    assert "grid worker" in grid and "网格员" in grid
    street = received_notice("street", "Urban Management Bureau", "城市管理局")
    assert "street office" in street and "街道" in street and "grid worker" not in street
    department = received_notice("department", "Water Bureau", "水务局")
    assert "Water Bureau" in department and "水务局" in department

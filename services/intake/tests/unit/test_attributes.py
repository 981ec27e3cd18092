"""Answers to a category's attributes: checked against the catalogue's definitions, each
refusal naming the attribute."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridline.common.policy.catalogue import CatalogueInvalid, load_catalogue_text
from gridline.intake.domain.submission import Form, Open311Error, parse_submission

pytestmark = pytest.mark.unit

CATALOGUE = load_catalogue_text(
    (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text()
)
POINT = [("lat", "31.78"), ("long", "119.95")]


def parse(code: str, *answers: tuple[str, str]):  # type: ignore[no-untyped-def]
    return parse_submission(
        Form([("service_code", code), *POINT, *answers]),
        known_service=lambda c: c in CATALOGUE.categories_by_code,
        inside_city=lambda lon, lat: True,
        attributes=lambda c: CATALOGUE.category(c).attributes,
    )


def test_answers_of_every_datatype_are_kept() -> None:
    s = parse(
        "streetlight-out",
        ("attribute[pole_number]", " L-0042 "),
        ("attribute[symptoms][]", "dark"),
        ("attribute[symptoms][]", "daytime"),
        ("attribute[symptoms][]", "dark"),
        ("attribute[noticed_at]", "2026-11-20T19:00+08:00"),
    )
    assert s.attributes == {
        "pole_number": "L-0042",
        "symptoms": ["dark", "daytime"],
        "noticed_at": "2026-11-20T19:00+08:00",
    }
    water = parse("waterlogging", ("attribute[depth_cm]", "15.5"), ("attribute[hazard]", "traffic"))
    assert water.attributes == {"depth_cm": "15.5", "hazard": "traffic"}


def test_a_category_without_required_attributes_needs_no_answers() -> None:
    assert parse("waterlogging").attributes == {}


@pytest.mark.parametrize(
    ("code", "answers", "words"),
    [
        ("waterlogging", [("attribute[colour]", "red")], "attribute[colour]: not an attribute"),
        ("exposed-garbage", [("attribute[x]", "1")], "its attributes: none"),
        ("waterlogging", [("attribute[depth_cm]", "deep")], "attribute[depth_cm] must be a number"),
        ("waterlogging", [("attribute[depth_cm]", "inf")], "attribute[depth_cm] must be a number"),
        ("waterlogging", [("attribute[hazard]", "fire")], "attribute[hazard] must be one of"),
        (
            "waterlogging",
            [("attribute[hazard]", "traffic"), ("attribute[hazard]", "buildings")],
            "attribute[hazard] takes one value",
        ),
        ("streetlight-out", [("attribute[symptoms][]", "purple")], "attribute[symptoms] must be"),
        ("streetlight-out", [("attribute[noticed_at]", "yesterday")], "attribute[noticed_at] must"),
        (
            "streetlight-out",
            [("attribute[pole_number]", "L\x00")],
            "attribute[pole_number] contains",
        ),
        ("streetlight-out", [("attribute[pole_number]", "x" * 201)], "longer than 200"),
        ("road-collapse", [], "attribute[size] is required"),
        ("road-collapse", [("attribute[size]", " ")], "attribute[size] is required"),
        ("road-collapse", [("attribute[size", "small")], "is not an attribute field"),
        ("road-collapse", [("attribute[]", "small")], "is not an attribute field"),
    ],
)
def test_a_bad_answer_is_a_400_naming_the_attribute(
    code: str, answers: list[tuple[str, str]], words: str
) -> None:
    with pytest.raises(Open311Error) as err:
        parse(code, *answers)
    assert err.value.code == 400 and words in err.value.description


BASE = """
version: t
departments: [{id: d, name_zh: 部门, name_en: Dept}]
categories:
  - code: c
    name_zh: 类
    name_en: C
    group: g
    group_zh: 组
    group_en: G
    entry_tier: department
    department: d
    time_limits_hours: {department: 4}
    attributes:
"""


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        (
            "[{code: a, datatype: string, description_zh: 甲, description_en: A},"
            " {code: a, datatype: number, description_zh: 乙, description_en: B}]",
            "duplicate attribute code(s): a",
        ),
        (
            "[{code: a, datatype: number, description_zh: 甲, description_en: A,"
            " values: [{key: k, name_zh: 值, name_en: V}]}]",
            "values are only for list datatypes",
        ),
        (
            "[{code: a, datatype: singlevaluelist, description_zh: 甲, description_en: A}]",
            "needs values",
        ),
        (
            "[{code: 'a[b]', datatype: text, description_zh: 甲, description_en: A}]",
            "attribute code",
        ),
        ("[{code: a, datatype: colour, description_zh: 甲, description_en: A}]", "datatype"),
    ],
)
def test_the_catalogue_refuses_bad_attribute_definitions(attributes: str, words: str) -> None:
    with pytest.raises(CatalogueInvalid) as err:
        load_catalogue_text(BASE + "      " + attributes + "\n")
    assert any(words in p for p in err.value.problems), err.value.problems

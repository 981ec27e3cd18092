"""The catalogue YAML: the demo file loads, mistakes are named with their path."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridline.common.policy.catalogue import CatalogueInvalid, load_catalogue_text, parse_catalogue
from gridline.common.policy.tiers import Tier

pytestmark = pytest.mark.unit

TEXT = (Path(__file__).resolve().parents[5] / "config" / "catalogue.yaml").read_text(
    encoding="utf-8"
)
DOC = yaml.safe_load(TEXT)


def problems(change: Any) -> list[str]:
    doc = copy.deepcopy(DOC)
    change(doc)
    with pytest.raises(CatalogueInvalid) as err:
        parse_catalogue(doc)
    return err.value.problems


def test_demo_catalogue_loads_with_bilingual_names_and_limits() -> None:
    cat = load_catalogue_text(TEXT)
    assert 18 <= len(cat.categories) <= 24
    garbage = cat.category("exposed-garbage")
    assert (garbage.name_zh, garbage.name_en, garbage.entry_tier) == (
        "暴露垃圾",
        "Exposed garbage",
        Tier.GRID,
    )
    # 1 working day (DOMAIN): the day length of the calendar its limits are counted on.
    assert garbage.calendar == "office"
    office = cat.model.calendars["office"]
    assert office.day_length == timedelta(hours=7.5)
    assert cat.time_limit("exposed-garbage", Tier.GRID) == office.day_length
    waterlogging = cat.category("waterlogging")
    assert waterlogging.calendar == "office"  # 4 working hours
    assert cat.time_limit("waterlogging", waterlogging.entry_tier) == timedelta(hours=4)
    assert cat.department(garbage.department).name_zh == "城市管理局"
    assert sum(c.entry_tier is Tier.GRID for c in cat.categories) > len(cat.categories) / 2


def test_round_trip_keeps_the_version_hash() -> None:
    cat = load_catalogue_text(TEXT)
    assert parse_catalogue(cat.to_dict()).version_hash == cat.version_hash


def test_unknown_department_is_named_with_its_path() -> None:
    found = problems(lambda d: d["categories"][3].update(department="dept-nowhere"))
    assert found == ["categories[3].department: unknown department 'dept-nowhere'"]


def test_missing_time_limit_above_the_entry_tier_is_refused() -> None:
    found = problems(lambda d: d["categories"][0]["time_limits_hours"].pop("street"))
    assert len(found) == 1 and found[0].startswith("categories[0]") and "street" in found[0]


def test_time_limit_below_the_entry_tier_is_refused() -> None:
    def below(d: dict[str, Any]) -> None:
        d["categories"][0]["entry_tier"] = "community"

    assert "below the entry tier" in problems(below)[0]


def test_bad_code_duplicate_code_and_unknown_field_are_all_reported() -> None:
    def spoil(d: dict[str, Any]) -> None:
        d["categories"][0]["code"] = "Exposed Garbage"
        d["categories"][2]["code"] = d["categories"][1]["code"]
        d["categories"][4]["colour"] = "red"

    found = problems(spoil)
    assert any("categories[0].code" in p for p in found)
    assert any("categories[4].colour" in p for p in found)
    assert any(p.startswith("categories[2].code: duplicate code") for p in found)


def test_duplicate_code_is_reported_with_both_places() -> None:
    found = problems(lambda d: d["categories"][2].update(code=d["categories"][1]["code"]))
    assert found == [
        f"categories[2].code: duplicate code {DOC['categories'][1]['code']!r} (also categories[1])"
    ]


def test_yaml_syntax_error_is_a_catalogue_problem() -> None:
    with pytest.raises(CatalogueInvalid) as err:
        load_catalogue_text("version: [unclosed")
    assert "not valid YAML" in err.value.problems[0]


def test_targets_must_not_decrease_and_timezone_must_exist() -> None:
    assert (
        "must not decrease"
        in problems(lambda d: d.update(targets={"grid": 0.9, "community": 0.8, "street": 0.95}))[0]
    )
    assert "unknown time zone" in problems(lambda d: d.update(timezone="Mars/Olympus"))[0]


def test_warnings_default_to_80_and_100_percent_and_must_be_in_order() -> None:
    assert parse_catalogue(copy.deepcopy(DOC)).warnings.model_dump() == {"yellow": 0.8, "red": 1.0}
    custom = copy.deepcopy(DOC) | {"warnings": {"yellow": 0.5, "red": 0.9}}
    assert parse_catalogue(custom).warnings.model_dump() == {"yellow": 0.5, "red": 0.9}
    assert (
        "yellow must come before"
        in problems(lambda d: d.update(warnings={"yellow": 0.9, "red": 0.5}))[0]
    )


def test_field_errors_do_not_hide_duplicate_departments_or_unknown_references() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["timezone"] = "Mars/Olympus"
        doc["departments"].append(dict(doc["departments"][0]))
        doc["categories"][2]["department"] = "dept-nowhere"

    found = problems(change)
    first = DOC["departments"][0]["id"]
    assert any(p.startswith("timezone:") for p in found)
    assert f"departments: duplicate id {first!r}" in found
    assert "categories[2].department: unknown department 'dept-nowhere'" in found


def test_department_ids_in_any_script_load_but_not_control_characters_or_long_ones() -> None:
    def department_id(value: str) -> Any:
        def change(doc: dict[str, Any]) -> None:
            old = doc["departments"][0]["id"]
            doc["departments"][0]["id"] = value
            for category in doc["categories"]:
                if category["department"] == old:
                    category["department"] = value

        return change

    doc = copy.deepcopy(DOC)
    department_id("城管/SP: limpeza")(doc)
    assert parse_catalogue(doc).departments[0].id == "城管/SP: limpeza"
    assert problems(department_id("a\tb")) == [
        "departments[0].id: Value error, 'a\\tb' holds a control character (a tab, a line"
        " break, ...)"
    ]
    assert problems(department_id(" x")) == [
        "departments[0].id: Value error, ' x' has spaces at its ends"
    ]
    assert problems(department_id("d" * 101)) == [
        "departments[0].id: Value error, is 101 characters long; at most 100"
    ]

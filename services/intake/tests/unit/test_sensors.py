"""Sensors: the catalogue's sensors section is validated with its paths, and a reading is
a breach at or over its threshold, described in Chinese and English."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridline.common.events import ReportTags
from gridline.common.policy.catalogue import CatalogueInvalid, load_catalogue_text, parse_catalogue
from gridline.intake.domain import sensors

pytestmark = pytest.mark.unit

TEXT = (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text()
DOC = yaml.safe_load(TEXT)
CATALOGUE = load_catalogue_text(TEXT)
CROWD = CATALOGUE.sensor_metrics["crowd_density"]
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def problems(change: Any) -> list[str]:
    doc = copy.deepcopy(DOC)
    change(doc)
    with pytest.raises(CatalogueInvalid) as err:
        parse_catalogue(doc)
    return err.value.problems


def test_the_demo_catalogue_names_crowd_density_and_water_depth() -> None:
    assert (CROWD.category, CROWD.threshold, CROWD.severity) == ("crowd-gathering", 4, "urgent")
    water = CATALOGUE.sensor_metrics["water_depth"]
    assert water.category == "waterlogging"
    for metric in CATALOGUE.sensor_metrics.values():
        assert metric.category in CATALOGUE.categories_by_code


def test_a_catalogue_without_sensors_still_loads() -> None:
    doc = copy.deepcopy(DOC)
    del doc["sensors"]
    assert parse_catalogue(doc).sensor_metrics == {}


def test_a_metric_of_an_unknown_category_is_named_with_its_path() -> None:
    found = problems(lambda d: d["sensors"][1].update(category="flood"))
    assert found == ["sensors[1].category: unknown category 'flood'"]


def test_a_repeated_metric_is_refused() -> None:
    found = problems(lambda d: d["sensors"].append(copy.deepcopy(d["sensors"][0])))
    assert found == ["sensors[2].code: duplicate metric 'crowd_density' (also sensors[0])"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("code", "Crowd-Density", "lowercase letters, digits and underscores"),
        ("threshold", float("inf"), "finite"),
        ("severity", "normal", "'urgent' or 'critical'"),
        ("unit", "", "at least 1 character"),
    ],
)
def test_a_malformed_metric_is_refused_with_its_path(field: str, value: Any, words: str) -> None:
    found = problems(lambda d: d["sensors"][0].update({field: value}))
    assert len(found) == 1 and found[0].startswith(f"sensors[0].{field}: ") and words in found[0]


def test_a_reading_at_the_threshold_is_a_breach_and_just_under_is_not() -> None:
    assert sensors.is_breach(CROWD, 4.0)
    assert sensors.is_breach(CROWD, 5.2)
    assert not sensors.is_breach(CROWD, 3.999)


def test_a_breach_is_described_in_chinese_and_english_with_the_sensor() -> None:
    assert sensors.describe(CROWD, "cam-7", 5.2) == (
        "人群密度 5.2 人/㎡ 超过阈值 4 / crowd density 5.2 persons/m² over the threshold 4"
        " (传感器 / sensor cam-7)"
    )
    at = sensors.describe(CROWD, "cam-7", 4, "东门广场")
    assert "达到阈值 4" in at and "at the threshold 4" in at and at.endswith(". 东门广场")


def test_an_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(sensors.ReadingRefused, match="known: crowd_density, water_depth"):
        sensors.metric_of(CATALOGUE, "noise_db")


def test_a_reading_ahead_of_the_clock_or_stale_is_refused() -> None:
    sensors.check_observed_at(NOW + timedelta(minutes=4), NOW)
    sensors.check_observed_at(NOW - timedelta(hours=23), NOW)
    with pytest.raises(sensors.ReadingRefused, match="observed_at: is in the future"):
        sensors.check_observed_at(NOW + timedelta(minutes=6), NOW)
    with pytest.raises(sensors.ReadingRefused, match="more than 24 hours ago"):
        sensors.check_observed_at(NOW - timedelta(hours=25), NOW)


def test_the_severity_is_the_metrics_unless_the_note_raised_it() -> None:
    assert sensors.tags_of(CROWD, ReportTags()).severity == "urgent"
    raised = sensors.tags_of(CROWD, ReportTags(severity="critical", flags=["danger_to_life"]))
    assert (raised.severity, raised.flags) == ("critical", ["danger_to_life"])

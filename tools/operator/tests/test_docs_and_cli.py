"""The generated event docs match the code; the operators' CLI validates before loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridline.common.events import EVENT_TYPES
from gridline.operator.asyncapi import asyncapi_yaml
from gridline.operator.citygen import generate_city
from gridline.operator.cli import main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def test_docs_asyncapi_is_generated_from_the_event_models() -> None:
    committed = (REPO / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == asyncapi_yaml(), "run: gridline docs asyncapi --out docs/asyncapi.yaml"
    for event_type in EVENT_TYPES:
        assert f"name: {event_type}" in committed


def test_jurisdiction_validate_lists_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    city = generate_city(1)
    city["features"][4]["properties"]["grid_id"] = city["features"][2]["properties"]["grid_id"]
    city["features"][9]["properties"]["grid_kind"] = "mixed"
    path = tmp_path / "city.geojson"
    path.write_text(json.dumps(city))
    assert main(["jurisdiction", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"feature 4 ({city['features'][2]['properties']['grid_id']}): duplicate grid_id" in err
    assert "feature 9" in err and "grid_kind" in err
    assert "2 problem(s); nothing was loaded" in err


def test_jurisdiction_load_refuses_bad_files_before_calling_routing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDLINE_ROUTING_URL", "http://127.0.0.1:9")  # nothing listens there
    path = tmp_path / "x.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    assert main(["jurisdiction", "load", str(path)]) == 1
    assert "no features" in capsys.readouterr().err


def test_city_generate_writes_the_contracts_geojson(tmp_path: Path) -> None:
    out = tmp_path / "c.geojson"
    assert main(["city", "generate", "--seed", "4", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 120
    assert set(doc["features"][0]["properties"]) >= {
        "grid_id",
        "grid_name",
        "grid_kind",
        "community_id",
        "community_name",
        "street_id",
        "street_name",
        "district_id",
        "district_name",
    }

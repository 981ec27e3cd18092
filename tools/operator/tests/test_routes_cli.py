"""`gridline routes check|test` offline, and `catalogue validate --rules`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridline.operator.citygen import generate_city
from gridline.operator.cli import main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
RULES = str(REPO / "config" / "rules.yaml")
CATALOGUE = str(REPO / "config" / "catalogue.yaml")
BAD = "rules:\n  - name: a\n    match: {category: nope}\n    set: {entry_tier: top}\n"


def test_routes_check_names_each_problem_by_line_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["routes", "check", str(bad), "--catalogue", CATALOGUE]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: unknown category 'nope'" in err
    assert f"{bad}:4: entry_tier 'top' is not a tier" in err
    assert main(["catalogue", "validate", CATALOGUE, "--rules", str(bad)]) == 1
    assert "bad.yaml:3: unknown category 'nope'" in capsys.readouterr().err
    assert main(["routes", "check", RULES, "--catalogue", CATALOGUE]) == 0
    assert "valid, 33 rules" in capsys.readouterr().out


def test_routes_test_offline_prints_rules_grid_and_assignment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    city = generate_city(1)
    (tmp_path / "city.geojson").write_text(json.dumps(city))
    grid = next(f for f in city["features"] if f["properties"]["grid_kind"] == "comprehensive")
    lon, lat = grid["geometry"]["coordinates"][0][0]
    lon, lat = lon + 0.0001, lat + 0.0001
    args = ["routes", "test", "--category", "noise-nuisance", "--lat", str(lat), "--long",
            str(lon), "--city", str(tmp_path / "city.geojson"), "--catalogue", CATALOGUE]  # fmt: skip
    assert main([*args, "--rules", RULES, "--at", "2026-11-24T23:30+08:00"]) == 0
    out = capsys.readouterr().out
    assert f"grid: {grid['properties']['grid_id']}" in out
    assert "1. noise-at-night (line " in out
    assert f"assignment: {grid['properties']['community_id']}" in out
    assert "due 2026-11-25T01:30+08:00" in out  # the rule's 2 h at the community
    assert "moved up at open from the grid tier by rule" in out
    assert main([*args, "--at", "2026-11-24T23:30+08:00"]) == 0  # no rule file: as today
    out = capsys.readouterr().out
    assert "rules matched: none; the category's entry tier grid" in out
    assert f"assignment: {grid['properties']['grid_id']}" in out


def test_routes_test_refuses_what_intake_would_refuse_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown category, or a point outside the city: intake refuses such a report, so
    no order is ever opened for it. It was shown as 'held for triage' (a category) or as
    'inside the city but in no grid' (a point off the map), with exit 0."""
    city = generate_city(1)
    (tmp_path / "city.geojson").write_text(json.dumps(city))
    grid = next(f for f in city["features"] if f["properties"]["grid_kind"] == "comprehensive")
    lon, lat = grid["geometry"]["coordinates"][0][0]
    offline = ["--city", str(tmp_path / "city.geojson"), "--catalogue", CATALOGUE]

    def test(category: str, lat: float, lon: float) -> int:
        args = ["routes", "test", "--category", category, "--lat", str(lat), "--long", str(lon)]
        try:
            return main([*args, *offline])
        except SystemExit as exc:  # what the command's process exits with
            return int(str(exc.code))

    assert test("nope", lat + 0.0001, lon + 0.0001) == 1
    err = capsys.readouterr().err
    assert "category 'nope' is not in catalogue 2026.11-demo (its codes: " in err
    assert "exposed-garbage" in err
    assert test("exposed-garbage", 0.0, 0.0) == 1
    assert "lat=0.0, long=0.0 is outside the city served here" in capsys.readouterr().err
    assert test("exposed-garbage", lat + 0.0001, lon + 0.0001) == 0

"""Jurisdiction validation and look-ups on generated and hand-broken cities."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, shape

from gridline.common.policy.extent import Extent
from gridline.operator.citygen import PRESETS, generate_city
from gridline.routing.domain.jurisdiction import JurisdictionInvalid, parse_jurisdiction

pytestmark = pytest.mark.unit

CITY = generate_city(1)
JUR = parse_jurisdiction(CITY)


def problems_of(doc: Any) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(JurisdictionInvalid) as err:
        parse_jurisdiction(doc)
    return [(p.index, p.feature_id, p.message) for p in err.value.problems]


def broken(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(CITY)
    change(doc["features"])
    return doc


def test_demo_city_has_the_documented_shape() -> None:
    assert len(JUR.grids) == 120
    assert len(JUR.units_at("street")) == 4
    assert len(JUR.units_at("community")) == 16
    assert sum(g.grid_kind == "special" for g in JUR.grids.values()) == 12


def test_same_seed_same_city_other_seed_other_city() -> None:
    dump = lambda c: json.dumps(c, sort_keys=True, ensure_ascii=False)  # noqa: E731
    assert dump(generate_city(1)) == dump(CITY)
    assert dump(generate_city(2)) != dump(CITY)


def test_gap_in_the_map_is_inside_the_city_but_in_no_grid() -> None:
    lon, lat = CITY["gridline:gaps"][0]
    assert JUR.locate(lon, lat) is None
    assert JUR.in_extent(lon, lat)
    assert JUR.district_of_point(lon, lat) == "320402"
    assert not JUR.in_extent(116.4, 39.9)


def test_special_grid_wins_over_the_comprehensive_grid_beneath() -> None:
    special = next(g for g in JUR.grids.values() if g.grid_kind == "special")
    point = special.geometry.representative_point()
    assert JUR.locate(point.x, point.y) == special
    beneath = [
        g for g in JUR.grids.values() if g.grid_kind == "comprehensive" and g.geometry.covers(point)
    ]
    assert len(beneath) == 1 and beneath[0].community_id == special.community_id


def test_units_know_their_ancestors_and_descendants() -> None:
    grid = next(iter(JUR.grids.values()))
    assert [u.level for u in JUR.ancestors(grid.grid_id)] == ["community", "street", "district"]
    assert grid.grid_id in JUR.descendants(grid.street_id)
    assert grid.grid_id not in JUR.descendants(
        next(s.unit_id for s in JUR.units_at("street") if s.unit_id != grid.street_id)
    )


def test_extent_survives_its_geojson_round_trip() -> None:
    extent = Extent.from_geojson(json.loads(json.dumps(JUR.extent_geojson())))
    lon, lat = CITY["gridline:gaps"][0]
    assert extent.contains(lon, lat) and extent.district_of(lon, lat) == "320402"
    assert not extent.contains(116.4, 39.9)


def test_duplicate_grid_id_is_reported_with_both_indexes() -> None:
    def dup(features: list[Any]) -> None:
        features[5]["properties"]["grid_id"] = features[3]["properties"]["grid_id"]

    [(index, gid, message)] = problems_of(broken(dup))
    assert index == 5 and gid == CITY["features"][3]["properties"]["grid_id"]
    assert "duplicate" in message and "feature 3" in message


def test_contradictory_parents_are_reported() -> None:
    def move(features: list[Any]) -> None:
        features[1]["properties"]["street_id"] = features[-20]["properties"]["street_id"]

    found = problems_of(broken(move))
    assert any(i == 1 and "contradictory parents" in m for i, _, m in found)


def test_overlapping_comprehensive_grids_are_reported_but_specials_may_overlap_them() -> None:
    def overlap(features: list[Any]) -> None:
        features[1]["geometry"] = copy.deepcopy(features[0]["geometry"])

    found = problems_of(broken(overlap))
    assert [(i, m.split(" overlaps")[0]) for i, _, m in found] == [
        (1, f"comprehensive grid {CITY['features'][1]['properties']['grid_id']}")
    ]


def test_invalid_geometry_is_reported_with_its_reason() -> None:
    def bowtie(features: list[Any]) -> None:
        features[2]["geometry"] = {
            "type": "Polygon",
            "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
        }
        features[4]["geometry"] = {"type": "Point", "coordinates": [120, 31]}
        features[6]["geometry"] = {
            "type": "Polygon",
            "coordinates": [[[200, 0], [201, 0], [201, 1], [200, 0]]],
        }

    found = {i: m for i, _, m in problems_of(broken(bowtie))}
    assert "invalid" in found[2] and "Self-intersection" in found[2]
    assert "Polygon or MultiPolygon" in found[4]
    assert "longitude" in found[6]


def test_missing_properties_and_bad_kind_are_reported_and_nothing_else() -> None:
    def spoil(features: list[Any]) -> None:
        del features[0]["properties"]["community_name"]
        features[7]["properties"]["grid_kind"] = "residential"

    found = problems_of(broken(spoil))
    assert [(i, "community_name" in m or "grid_kind" in m) for i, _, m in found] == [
        (0, True),
        (7, True),
    ]


def test_not_a_feature_collection_is_refused() -> None:
    assert problems_of({"type": "Feature"})[0][2] == "expected a GeoJSON FeatureCollection"
    assert "no features" in problems_of({"type": "FeatureCollection", "features": []})[0][2]


def test_changzhou_preset_has_its_published_counts() -> None:
    city = generate_city(3, **PRESETS["changzhou"])
    jur = parse_jurisdiction(city)
    kinds = [g.grid_kind for g in jur.grids.values()]
    assert (len(kinds), kinds.count("comprehensive"), kinds.count("special")) == (7151, 5585, 1566)
    assert len(jur.units_at("street")) == 62
    # Orders with no district of their own are held at the first district by id.
    districts = sorted(u.unit_id for u in jur.units_at("district"))
    assert len(districts) == 6 and jur.default_district_id() == districts[0]


minx, miny, maxx, maxy = shape(
    {
        "type": "MultiPolygon",
        "coordinates": [f["geometry"]["coordinates"] for f in CITY["features"]],
    }
).bounds


@settings(max_examples=300, deadline=None)
@given(st.floats(minx - 0.01, maxx + 0.01), st.floats(miny - 0.01, maxy + 0.01))
def test_a_located_grid_always_covers_the_point(lon: float, lat: float) -> None:
    grid = JUR.locate(lon, lat)
    if grid is not None:
        assert grid.geometry.intersects(Point(lon, lat))
        assert JUR.in_extent(lon, lat)
    elif any(g.geometry.intersects(Point(lon, lat)) for g in JUR.grids.values()):
        pytest.fail("a grid covers the point but locate found none")


def test_a_batch_is_located_as_each_point_would_be_by_the_rule() -> None:
    """locate_many: per point, the special grid that covers it, else its comprehensive grid,
    the lowest id first; None where no grid covers it. Points on shared edges included."""
    rng = random.Random(11)
    points: list[tuple[float, float]] = []
    for grid in rng.sample(list(JUR.grids.values()), 40):  # corners: on two or more grids
        points.extend(grid.geometry.exterior.coords[:2])
        points.append(
            (grid.geometry.representative_point().x, grid.geometry.representative_point().y)
        )
    points += [(rng.uniform(minx, maxx), rng.uniform(miny, maxy)) for _ in range(300)]
    points += [(minx - 0.005, rng.uniform(miny, maxy)) for _ in range(20)]  # outside
    points += [tuple(CITY["gridline:gaps"][0][:2])]  # inside the city, in no grid
    ranked = sorted(JUR.grids.values(), key=lambda g: (g.grid_kind != "special", g.grid_id))

    def by_the_rule(lon: float, lat: float) -> object:
        return next((g for g in ranked if g.geometry.intersects(Point(lon, lat))), None)

    expected = [by_the_rule(lon, lat) for lon, lat in points]
    assert JUR.locate_many(points) == expected
    assert sum(g is None for g in expected) > 10 and sum(g is not None for g in expected) > 200
    assert any(g is not None and g.grid_kind == "special" for g in expected)
    assert JUR.locate_many([]) == []


def test_every_grid_is_found_at_its_own_representative_point() -> None:
    for grid in JUR.grids.values():
        point = grid.geometry.representative_point()
        found = JUR.locate(point.x, point.y)
        assert found is not None
        assert found == grid or (found.grid_kind == "special" and found.geometry.covers(point))


def test_every_grid_community_and_street_has_a_place_that_locates_in_it() -> None:
    jurisdiction = parse_jurisdiction(CITY)
    places = jurisdiction.places()
    by_level: dict[str, list[dict[str, Any]]] = {}
    for place in places:
        by_level.setdefault(place["level"], []).append(place)
    assert len(by_level["grid"]) == len(jurisdiction.grids)
    assert {p["id"] for p in by_level["community"]} == {
        u.unit_id for u in jurisdiction.units_at("community")
    }
    assert {p["id"] for p in by_level["street"]} == {
        u.unit_id for u in jurisdiction.units_at("street")
    }
    for place in places:
        # Each names the unit above it: a grid's community, a community's street, a
        # street's district.
        expected_parent = (
            jurisdiction.grids[place["id"]].community_id
            if place["level"] == "grid"
            else jurisdiction.ancestors(place["id"])[0].unit_id
        )
        assert place["parent_id"] == expected_parent, place
        grid = jurisdiction.locate(place["lon"], place["lat"])
        assert grid is not None, place
        if place["level"] == "grid":
            assert grid.grid_id == place["id"] and place["grid_kind"] == grid.grid_kind
            assert place["name"] == grid.grid_name
        else:
            # a community's or street's point is in one of its comprehensive grids
            assert grid.grid_kind == "comprehensive"
            assert place["id"] in (grid.community_id, grid.street_id)
            assert place["name"] == jurisdiction.unit(place["id"]).name


def test_a_comprehensive_grid_covered_in_its_middle_still_gets_a_point_of_its_own() -> None:
    covered = [
        f
        for f in CITY["features"]
        if f["properties"]["grid_kind"] == "comprehensive"
        and any(
            g["properties"]["grid_kind"] == "special"
            and shape(g["geometry"]).contains(shape(f["geometry"]).representative_point())
            for g in CITY["features"]
        )
    ]
    assert covered, "the demo city has special grids over comprehensive grids' centres"
    jurisdiction = parse_jurisdiction(CITY)
    points = {p["id"]: p for p in jurisdiction.places()}
    for feature in covered:
        place = points[feature["properties"]["grid_id"]]
        assert shape(feature["geometry"]).contains(Point(place["lon"], place["lat"]))
        located = jurisdiction.locate(place["lon"], place["lat"])
        assert located is not None and located.grid_id == feature["properties"]["grid_id"]


def test_ids_and_names_in_any_script_load_but_control_characters_and_long_ids_do_not() -> None:
    def renamed(features: list[Any]) -> None:
        for f in features:
            props = f["properties"]
            props["grid_id"] = f"天宁/{props['grid_id']} a:b"
        features[3]["properties"]["grid_name"] = "第\t3 网格"
        features[4]["properties"]["street_id"] = "s" * 101

    found = {i: m for i, _, m in problems_of(broken(renamed))}
    assert found[3].startswith("grid_name '第\\t3 网格' holds a control character")
    assert found[4] == "street_id is 101 characters long; at most 100"
    assert set(found) == {3, 4}

    def slashes_only(features: list[Any]) -> None:
        for f in features:
            props = f["properties"]
            props["grid_id"] = f"天宁/{props['grid_id']} a:b"

    loaded = parse_jurisdiction(broken(slashes_only))
    assert all(g.startswith("天宁/") and g.endswith(" a:b") for g in loaded.grids)

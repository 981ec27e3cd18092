"""A new jurisdiction takes effect on the running stack without a restart; a broken one
changes nothing. The session's city is put back afterwards."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import pytest
import yaml

from gridline.common.policy.catalogue import Catalogue
from gridline.operator.cli import main as gridline

from .stack import Stack, wait_until
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_filling_the_gap_with_a_new_grid_routes_there_without_restart(
    stack: Stack, catalogue: Catalogue
) -> None:
    lon, lat = stack.city["gridline:gaps"][0]
    creds = str(stack.workdir / "credentials.json")
    admin = {"authorization": f"Bearer {stack.credentials['admin_key']}"}
    with httpx.Client(timeout=10) as client:
        before = client.get(f"{stack.url('routing')}/admin/policy", headers=admin).json()

        broken = copy.deepcopy(stack.city)
        broken["features"][0]["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        (stack.workdir / "broken.geojson").write_text(json.dumps(broken))
        assert (
            gridline(
                [
                    "jurisdiction",
                    "load",
                    str(stack.workdir / "broken.geojson"),
                    "--credentials",
                    creds,
                ]
            )
            == 1
        )
        assert client.get(f"{stack.url('routing')}/admin/policy", headers=admin).json() == before

        city = copy.deepcopy(stack.city)
        template = next(
            f for f in city["features"] if f["properties"]["grid_kind"] == "comprehensive"
        )
        d = 0.0005
        city["features"].append(
            {
                "type": "Feature",
                "properties": {
                    **template["properties"],
                    "grid_id": "lake-grid-1",
                    "grid_name": "湖滨新网格",
                },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [lon - d, lat - d],
                            [lon + d, lat - d],
                            [lon + d, lat + d],
                            [lon - d, lat + d],
                            [lon - d, lat - d],
                        ]
                    ],
                },
            }
        )
        (stack.workdir / "filled.geojson").write_text(json.dumps(city, ensure_ascii=False))
        assert (
            gridline(
                [
                    "jurisdiction",
                    "load",
                    str(stack.workdir / "filled.geojson"),
                    "--credentials",
                    creds,
                ]
            )
            == 0
        )
        after = client.get(f"{stack.url('routing')}/admin/policy", headers=admin).json()
        assert after["jurisdiction"] != before["jurisdiction"]
        # What make up runs again keeps a jurisdiction an operator loaded.
        original = str(stack.workdir / "city.geojson")
        assert (
            gridline(["jurisdiction", "load", "--if-none", original, "--credentials", creds]) == 0
        )
        kept = client.get(f"{stack.url('routing')}/admin/policy", headers=admin).json()
        assert kept == after

        created = stack.post_report(
            client, service_code=catalogue.categories[0].code, lat=lat, long=lon
        )
        request_id = created.json()[0]["service_request_id"]
        view = wait_until(
            lambda: (r := stack.request(client, request_id))["expected_datetime"] and r,
            what="the report in the new grid to be assigned",
        )
        assert view["agency_responsible"] == "湖滨新网格"
        order = client.get(
            f"{stack.url('routing')}/v1/workorders/{request_id}", headers=admin
        ).json()
        assert order["grid_id"] == "lake-grid-1"
        assert order["policy_version"].startswith(f"j:{after['jurisdiction']}+")

        # The new grid's worker gets a key of its own; it is written to a copy of the
        # credentials file and is refused for orders outside its grid.
        issued_to = stack.workdir / "issued-credentials.json"
        issued_to.write_text((stack.workdir / "credentials.json").read_text())
        assert (
            gridline(["handler-keys", "issue", "no-such-unit", "--credentials", str(issued_to)])
            == 1
        )
        assert "no-such-unit" not in json.loads(issued_to.read_text())["handlers"]
        with_stranger = json.loads(issued_to.read_text())
        with_stranger["handlers"]["no-such-unit"] = "x" * 32
        issued_to.write_text(json.dumps(with_stranger))
        load_keys = ["handler-keys", "load", "--credentials", str(issued_to)]
        assert gridline(load_keys) == 1
        assert gridline([*load_keys, "--skip-unknown"]) == 0
        assert (
            gridline(["handler-keys", "issue", "lake-grid-1", "--credentials", str(issued_to)]) == 0
        )
        new_key = json.loads(issued_to.read_text())["handlers"]["lake-grid-1"]
        worker = {"authorization": f"Bearer {new_key}"}
        elsewhere_lat, elsewhere_lon = grid_point(stack, stack.handler_key("grid")[0])
        other = stack.post_report(
            client,
            service_code=catalogue.categories[0].code,
            lat=elsewhere_lat,
            long=elsewhere_lon,
        )
        other_id = other.json()[0]["service_request_id"]
        wait_until(
            lambda: stack.request(client, other_id)["expected_datetime"],
            what="a report elsewhere to be assigned",
        )
        refused = client.post(
            f"{stack.url('routing')}/v1/workorders/{other_id}/resolve", headers=worker
        )
        assert refused.status_code == 403, refused.text
        done = client.post(
            f"{stack.url('routing')}/v1/workorders/{request_id}/resolve",
            json={"note": "cleared by the new grid worker"},
            headers=worker,
        )
        assert done.status_code == 200 and done.json()["state"] == "resolved", done.text

    assert gridline(["jurisdiction", "load", original, "--credentials", creds]) == 0


def test_catalogue_targets_become_the_published_sla_targets(stack: Stack) -> None:
    creds = str(stack.workdir / "credentials.json")
    # The session's catalogue (the demo's with merging off, conftest.no_merging), so that
    # the tests after this one find the policy they started with.
    original = stack.workdir / "catalogue-no-merging.yaml"
    doc = yaml.safe_load(original.read_text(encoding="utf-8"))
    doc["targets"] = {"grid": 0.6, "community": 0.75, "street": 0.9}
    doc["version"] = "e2e-targets"
    changed = stack.workdir / "targets.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with httpx.Client(timeout=10) as client:

        def target(tier: str) -> float | None:
            return stack.metric(client, "sla", "gridline_sla_tier_target_ratio", tier=tier)

        assert target("grid") == 0.7
        try:
            assert gridline(["catalogue", "load", str(changed), "--credentials", creds]) == 0
            wait_until(lambda: target("grid") == 0.6, what="sla to follow the catalogue")
            assert (target("community"), target("street")) == (0.75, 0.9)
        finally:
            assert gridline(["catalogue", "load", str(original), "--credentials", creds]) == 0
        wait_until(lambda: target("grid") == 0.7, what="sla to follow the original catalogue")

"""A new jurisdiction takes effect on the running stack without a restart; a broken one
changes nothing. The session's city is put back afterwards."""

from __future__ import annotations

import copy
import json

import httpx
import pytest

from gridline.common.cli import main as gridline
from gridline.common.policy.catalogue import Catalogue

from .stack import Stack, wait_until

pytestmark = pytest.mark.e2e


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

    original = str(stack.workdir / "city.geojson")
    assert gridline(["jurisdiction", "load", original, "--credentials", creds]) == 0

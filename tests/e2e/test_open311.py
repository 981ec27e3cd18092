"""Open311 on the running stack as a client that knows only the specification sees it:
XML from services to token with the catalogue's attributes, and reports that name a grid
or a community of the generated city instead of giving coordinates, routed there."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, fromstring

import httpx
import pytest

from .stack import Stack, wait_until

pytestmark = pytest.mark.e2e


def _xml(response: httpx.Response, root: str) -> Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    element = fromstring(response.content)
    assert element.tag == root
    return element


def _grids(stack: Stack, kind: str) -> list[dict[str, Any]]:
    return [f["properties"] for f in stack.city["features"] if f["properties"]["grid_kind"] == kind]


def _assigned_to(stack: Stack, client: httpx.Client, request_id: str) -> str:
    view = wait_until(
        lambda: (r := stack.request(client, request_id))["agency_responsible"] and r,
        what="the work order to be assigned",
    )
    return str(view["agency_responsible"])


def test_an_xml_client_files_a_report_with_attributes_and_follows_it(stack: Stack) -> None:
    base = f"{stack.url('intake')}/open311/v2"
    grid = _grids(stack, "comprehensive")[0]
    with httpx.Client(timeout=10) as client:
        services = _xml(client.get(f"{base}/services.xml"), "services")
        with_questions = [
            s.findtext("service_code")
            for s in services.iter("service")
            if s.findtext("metadata") == "true"
        ]
        assert "streetlight-out" in with_questions
        definition = _xml(client.get(f"{base}/services/streetlight-out.xml"), "service_definition")
        symptoms = next(a for a in definition.iter("attribute") if a.findtext("code") == "symptoms")
        keys = [v.findtext("key") for v in symptoms.iter("value")]

        created = _xml(
            client.post(
                f"{base}/requests.xml",
                data={
                    "api_key": stack.credentials["open311_api_key"],
                    "service_code": "streetlight-out",
                    "address_string": grid["grid_name"],
                    "attribute[symptoms][]": keys[:2],
                    "attribute[pole_number]": "L-7",
                },
            ),
            "service_requests",
        )
        request_id = created.findtext("request/service_request_id")
        token = created.findtext("request/token")
        assert request_id and token

        found = _xml(client.get(f"{base}/tokens/{token}.xml"), "service_requests")
        assert found.findtext("request/service_request_id") == request_id
        assert _assigned_to(stack, client, request_id) == grid["grid_name"]
        one = _xml(client.get(f"{base}/requests/{request_id}.xml"), "service_requests")
        assert one.findtext("request/agency_responsible") == grid["grid_name"]
        assert one.findtext("request/address") == grid["grid_name"]

        refused = client.post(
            f"{base}/requests.xml",
            data={
                "api_key": stack.credentials["open311_api_key"],
                "service_code": "streetlight-out",
                "address_string": grid["grid_name"],
                "attribute[symptoms][]": "purple",
            },
        )
        assert refused.status_code == 400
        error = fromstring(refused.content)
        assert "attribute[symptoms]" in (error.findtext("error/description") or "")


def test_a_report_naming_a_special_grid_or_a_community_is_routed_there(stack: Stack) -> None:
    special = _grids(stack, "special")[0]
    community = _grids(stack, "comprehensive")[-1]
    in_community = {
        g["grid_name"]
        for g in _grids(stack, "comprehensive")
        if g["community_id"] == community["community_id"]
    }
    with httpx.Client(timeout=10) as client:
        by_grid = stack.post_report(
            client, service_code="exposed-garbage", address_string=special["grid_name"]
        )
        by_community = stack.post_report(
            client, service_code="exposed-garbage", address_string=community["community_name"]
        )
        unknown = stack.post_report(
            client, service_code="exposed-garbage", address_string="不存在的社区"
        )
        assert by_grid.status_code == 200, by_grid.text
        assert by_community.status_code == 200, by_community.text
        assert unknown.status_code == 400 and "lat and long" in unknown.json()[0]["description"]
        grid_request = by_grid.json()[0]["service_request_id"]
        community_request = by_community.json()[0]["service_request_id"]
        assert _assigned_to(stack, client, grid_request) == special["grid_name"]
        assert _assigned_to(stack, client, community_request) in in_community

"""The renderer: the specification's XML element names, and JSON as the routes send it."""

from __future__ import annotations

import json
from xml.etree.ElementTree import fromstring

import pytest

from gridline.intake.entrypoints.open311_xml import errors, render

pytestmark = pytest.mark.unit


def test_a_list_resource_takes_the_singular_item_name() -> None:
    body = render(
        "xml",
        "service_requests",
        [{"service_request_id": "1", "lat": 31.5, "address": None, "token": "t<&>"}],
    )
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = fromstring(body)
    [request] = root.findall("request")
    assert root.tag == "service_requests"
    assert request.findtext("service_request_id") == "1"
    assert request.findtext("lat") == "31.5"
    assert request.find("address") is not None and request.findtext("address") == ""
    assert request.findtext("token") == "t<&>"


def test_a_service_definition_nests_attributes_and_values() -> None:
    definition = {
        "service_code": "c",
        "attributes": [
            {
                "variable": True,
                "code": "hazard",
                "required": False,
                "values": [{"key": "traffic", "name": "车辆无法通行"}],
            }
        ],
    }
    root = fromstring(render("xml", "service_definition", definition))
    attribute = root.find("attributes/attribute")
    assert attribute is not None
    assert (attribute.findtext("variable"), attribute.findtext("required")) == ("true", "false")
    assert [(v.findtext("key"), v.findtext("name")) for v in attribute.iter("value")] == [
        ("traffic", "车辆无法通行")
    ]


def test_discovery_formats_and_errors() -> None:
    root = fromstring(
        render("xml", "discovery", {"endpoints": [{"formats": ["text/xml", "application/json"]}]})
    )
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]
    error = fromstring(errors("xml", 404, "not found"))
    assert (error.tag, error.findtext("error/code"), error.findtext("error/description")) == (
        "errors",
        "404",
        "not found",
    )
    assert json.loads(errors("json", 404, "not found")) == [
        {"code": 404, "description": "not found"}
    ]


def test_characters_xml_cannot_carry_are_replaced_not_sent() -> None:
    root = fromstring(render("xml", "service_requests", [{"description": "a\x01b"}]))
    assert root.findtext("request/description") == "a\ufffdb"

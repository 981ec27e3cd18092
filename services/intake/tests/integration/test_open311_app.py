"""Open311 through the app on the real PostgreSQL: a client written from the
specification works in XML as in JSON (attributes included), pages through requests, may
name a place instead of giving coordinates, and no bad input answers 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from xml.etree.ElementTree import Element, fromstring

import httpx
import pytest
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.bootstrap import IntakeService
from gridline.intake.config import IntakeSettings
from gridline.intake.domain.keys import KeyRing, Role
from gridline.intake.domain.submission import Accepted
from gridline.intake.entrypoints.api import create_app
from gridline.intake.entrypoints.open311_schemas import ServiceDefinition
from gridline.intake.handlers import Intake
from gridline.intake.metrics import IntakeMetrics

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"
SQUARE = [[119.9, 31.7], [120.1, 31.7], [120.1, 31.9], [119.9, 31.9], [119.9, 31.7]]
JURISDICTION = {
    "extent": {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"district_id": "d"},
                "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
            }
        ],
    },
    "places": [
        {"id": "g7", "level": "grid", "name": "青龙东社区第1网格", "grid_kind": "comprehensive",
         "lon": 119.95, "lat": 31.8},
        {"id": "c1", "level": "community", "name": "青龙东社区", "grid_kind": None,
         "lon": 119.96, "lat": 31.81},
    ],
}  # fmt: skip
BASE = "/open311/v2"
POINT = {"api_key": "k", "lat": "31.78", "long": "119.95"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def client(pool: Pool, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    intake = Intake(clock, "/gridline/intake")
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    intake.policy.apply(
        "catalogue", "c1", {"catalogue": load_catalogue_text(CATALOGUE.read_text()).to_dict()}
    )
    intake.policy.apply("jurisdiction", "j1", JURISDICTION)
    writer: GroupCommit[Accepted] = GroupCommit(
        pool, intake.store_accepted, wait=0.001, max_rows=64
    )
    task = asyncio.create_task(writer.run())
    app = create_app(IntakeSettings())
    app.state.service = IntakeService(
        runtime=cast(
            Any,
            SimpleNamespace(pool=pool, clock=clock, relay=SimpleNamespace(stalled_for=lambda: 0.0)),
        ),
        intake=intake,
        settings=IntakeSettings(),
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=KeyRing.of({Role.OPEN311_CLIENT: ["k"]}),
        submissions=writer,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def xml(response: httpx.Response, root: str) -> Element:
    assert response.headers["content-type"] == "text/xml; charset=utf-8", response.text
    element = fromstring(response.content)
    assert element.tag == root
    return element


async def outbox_events(pool: Pool) -> list[dict[str, Any]]:
    return [json.loads(r["payload"]) for r in await pool.fetch("SELECT payload FROM outbox")]


async def test_a_specification_client_works_in_xml_from_discovery_to_token(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    discovery = xml(await client.get(f"{BASE}/discovery.xml"), "discovery")
    endpoint = discovery.find("endpoints/endpoint")
    assert endpoint is not None
    assert {f.text for f in endpoint.iter("format")} == {"text/xml", "application/json"}

    services = xml(await client.get(f"{BASE}/services.xml"), "services")
    metadata = {
        s.findtext("service_code"): s.findtext("metadata") for s in services.iter("service")
    }
    assert metadata["streetlight-out"] == "true" and metadata["exposed-garbage"] == "false"

    definition = xml(await client.get(f"{BASE}/services/streetlight-out.xml"), "service_definition")
    attributes = {a.findtext("code"): a for a in definition.iter("attribute")}
    assert set(attributes) == {"pole_number", "symptoms", "noticed_at"}
    symptoms = attributes["symptoms"]
    assert (symptoms.findtext("datatype"), symptoms.findtext("variable")) == (
        "multivaluelist",
        "true",
    )
    assert "dark" in [v.findtext("key") for v in symptoms.iter("value")]
    assert [a.findtext("order") for a in definition.iter("attribute")] == ["1", "2", "3"]

    form = [
        *POINT.items(),
        ("service_code", "streetlight-out"),
        ("description", "路灯不亮 <dark> & flickering"),
        ("attribute[pole_number]", "L-42"),
        ("attribute[symptoms][]", "dark"),
        ("attribute[symptoms][]", "flickering"),
    ]
    created = xml(
        await client.post(f"{BASE}/requests.xml", data=cast(Any, _multi(form))), "service_requests"
    )
    request_id = created.findtext("request/service_request_id")
    token = created.findtext("request/token")
    assert (
        request_id and token and "grid worker" in (created.findtext("request/service_notice") or "")
    )

    one = xml(await client.get(f"{BASE}/requests/{request_id}.xml"), "service_requests")
    [request] = one.findall("request")
    assert request.findtext("description") == "路灯不亮 <dark> & flickering"
    assert (request.findtext("status"), request.findtext("service_code")) == (
        "open",
        "streetlight-out",
    )
    assert (float(request.findtext("lat") or 0), float(request.findtext("long") or 0)) == (
        31.78,
        119.95,
    )

    found = xml(await client.get(f"{BASE}/tokens/{token}.xml"), "service_requests")
    assert found.findtext("request/service_request_id") == request_id

    stored = await pool.fetchval(
        "SELECT attributes FROM requests WHERE service_request_id=$1", request_id
    )
    assert stored == {"pole_number": "L-42", "symptoms": ["dark", "flickering"]}
    [event] = await outbox_events(pool)
    assert event["data"]["attributes"] == {
        "pole_number": "L-42",
        "symptoms": ["dark", "flickering"],
    }

    missing = xml(await client.get(f"{BASE}/requests/nope.xml"), "errors")
    assert missing.findtext("error/code") == "404"


def _multi(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """httpx form data with repeated fields as lists."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        data.setdefault(key, []).append(value)
    return data


async def test_an_attribute_answer_is_checked_in_either_format(client: httpx.AsyncClient) -> None:
    form = {**POINT, "service_code": "road-collapse", "attribute[size]": "huge"}
    as_json = await client.post(f"{BASE}/requests.json", data=form)
    assert as_json.status_code == 400
    assert "attribute[size] must be one of small, medium, large" in as_json.json()[0]["description"]
    missing = await client.post(
        f"{BASE}/requests.xml", data={**POINT, "service_code": "road-collapse"}
    )
    assert missing.status_code == 400
    assert "attribute[size] is required" in (
        xml(missing, "errors").findtext("error/description") or ""
    )


async def test_requests_are_paged_newest_first_without_repeats(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = []
    for n in range(5):
        created = await client.post(
            f"{BASE}/requests.json",
            data={**POINT, "service_code": "exposed-garbage", "description": f"#{n}"},
        )
        ids.append(created.json()[0]["service_request_id"])
        clock.advance(timedelta(minutes=1))
    pages = []
    for page in (1, 2, 3):
        answer = await client.get(f"{BASE}/requests.json", params={"page": page, "page_size": 2})
        assert answer.status_code == 200, answer.text
        pages.append([r["service_request_id"] for r in answer.json()])
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == ids[::-1]
    as_xml = xml(
        await client.get(f"{BASE}/requests.xml", params={"page": 2, "page_size": 2}),
        "service_requests",
    )
    assert [r.findtext("service_request_id") for r in as_xml.iter("request")] == pages[1]
    too_big = await client.get(f"{BASE}/requests.json", params={"page_size": 1001})
    assert too_big.status_code == 400 and "page_size" in too_big.json()[0]["description"]


async def test_a_report_may_name_a_grid_or_community_instead_of_a_point(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    for address in ("青龙东社区第1网格", "c1"):
        created = await client.post(
            f"{BASE}/requests.json",
            data={"api_key": "k", "service_code": "exposed-garbage", "address_string": address},
        )
        assert created.status_code == 200, created.text
    rows = await pool.fetch("SELECT lat, lon, grid_id, address_string FROM requests ORDER BY lat")
    assert [tuple(r) for r in rows] == [
        (31.8, 119.95, "g7", "青龙东社区第1网格"),
        (31.81, 119.96, None, "c1"),
    ]
    events = sorted(await outbox_events(pool), key=lambda e: e["data"]["lat"])
    assert [(e["data"]["lat"], e["data"]["lon"], e["data"]["grid_id"]) for e in events] == [
        (31.8, 119.95, "g7"),
        (31.81, 119.96, None),
    ]
    unknown = await client.post(
        f"{BASE}/requests.xml",
        data={"api_key": "k", "service_code": "exposed-garbage", "address_string": "青龙路 1 号"},
    )
    assert unknown.status_code == 400
    assert "send lat and long" in (xml(unknown, "errors").findtext("error/description") or "")


@pytest.mark.parametrize("suffix", ["json", "xml"])
@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "/requests/a%00b", None, "service_request_id"),
        ("GET", "/tokens/a%00b", None, "token"),
        ("GET", "/services/a%00b", None, "service_code"),
        ("GET", "/requests", {"service_code": "a\x00b"}, "service_code"),
        ("GET", "/requests", {"service_request_id": "a\x00b"}, "service_request_id"),
        ("GET", "/requests", {"status": "open\x00"}, "status"),
        ("GET", "/requests", {"start_date": "0001-01-01T00:00+14:00"}, "start_date"),
        ("GET", "/requests", {"end_date": "9999-12-31T23:59:59-14:00"}, "end_date"),
        ("GET", "/requests", {"service_code": ",".join("x" * 101)}, "service_code"),
        ("GET", "/requests", {"page": "99999999999999999999"}, "page"),
        (
            "POST",
            "/requests",
            {**POINT, "service_code": "exposed-garbage", "description": "a\x00"},
            "description",
        ),
        (
            "POST",
            "/requests",
            {**POINT, "service_code": "exposed-garbage", "address_string": "\x00"},
            "address_string",
        ),
        ("POST", "/requests", {**POINT, "service_code": "a\x00"}, "service_code"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_never_a_500(
    client: httpx.AsyncClient, method: str, path: str, params: Any, field: str, suffix: str
) -> None:
    url = f"{BASE}{path}.{suffix}"
    if method == "GET":
        answer = await client.get(url, params=params)
    else:
        answer = await client.post(url, data=params)
    assert answer.status_code == 400, answer.text
    if suffix == "json":
        description = answer.json()[0]["description"]
    else:
        description = xml(answer, "errors").findtext("error/description") or ""
    assert description.startswith(field), description


async def test_json_and_xml_carry_the_same_definitions_and_json_matches_its_schema(
    client: httpx.AsyncClient,
) -> None:
    codes = [s["service_code"] for s in (await client.get(f"{BASE}/services.json")).json()]
    for code in codes:
        as_json = (
            await client.get(f"{BASE}/services/{code}.json", params={"locale": "zh-CN"})
        ).json()
        ServiceDefinition.model_validate(as_json)
        as_xml = xml(
            await client.get(f"{BASE}/services/{code}.xml", params={"locale": "zh-CN"}),
            "service_definition",
        )
        assert [
            {
                "code": a.findtext("code"),
                "description": a.findtext("description"),
                "values": [
                    {"key": v.findtext("key"), "name": v.findtext("name")} for v in a.iter("value")
                ],
            }
            for a in as_xml.iter("attribute")
        ] == [
            {"code": a["code"], "description": a["description"], "values": a["values"]}
            for a in as_json["attributes"]
        ]
    hazard = (
        await client.get(f"{BASE}/services/waterlogging.json", params={"locale": "zh-CN"})
    ).json()
    assert hazard["attributes"][1]["values"][0] == {"key": "traffic", "name": "车辆无法通行"}

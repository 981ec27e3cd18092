"""The fast path answers a form POST exactly as the FastAPI route answers the same report
(sent multipart, which the fast path leaves to the route), a database outage included."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from gridline.common.clock import ManualClock
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.extent import Extent
from gridline.intake.bootstrap import IntakeService
from gridline.intake.config import IntakeSettings
from gridline.intake.domain.keys import KeyRing, Role
from gridline.intake.domain.submission import Accepted
from gridline.intake.entrypoints.api import create_app
from gridline.intake.entrypoints.open311_schemas import Created
from gridline.intake.handlers import Intake
from gridline.intake.metrics import IntakeMetrics

pytestmark = pytest.mark.unit

CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"
SQUARE = [[119.9, 31.7], [120.1, 31.7], [120.1, 31.9], [119.9, 31.9], [119.9, 31.7]]
EXTENT = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"district_id": "d"},
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        }
    ],
}
URL = "/open311/v2/requests.json"
URLS = [URL, "/open311/v2/requests.xml"]
VALID = {
    "api_key": "k",
    "service_code": "exposed-garbage",
    "lat": "31.78",
    "long": "119.95",
    "description": "垃圾堆在路边",
}
_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Writer:
    """Stands in for the group commit: stores in a list, or fails as told."""

    def __init__(self) -> None:
        self.stored: list[Accepted] = []
        self.failure: Exception | None = None

    async def write(self, item: Accepted) -> bool:
        if self.failure is not None:
            raise self.failure
        self.stored.append(item)
        return True


@pytest.fixture
def service() -> IntakeService:
    intake = Intake(ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)), "/gridline/intake")
    intake.policy.catalogue = load_catalogue_text(CATALOGUE.read_text())
    intake.policy.extent = Extent.from_geojson(EXTENT)
    return IntakeService(
        # The POST path reads only the outbox relay's state (the front door's Kafka check).
        runtime=cast(Any, SimpleNamespace(relay=SimpleNamespace(stalled_for=lambda: 0.0))),
        intake=intake,
        settings=IntakeSettings(),
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=KeyRing.of({Role.OPEN311_CLIENT: ["k"]}),
        submissions=cast(Any, Writer()),
    )


@pytest.fixture
def app(service: IntakeService) -> FastAPI:
    app = create_app(IntakeSettings())
    app.state.service = service  # as the lifespan would
    return app


@pytest.fixture
async def client(app: FastAPI) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c


Form = dict[str, str] | list[tuple[str, str]]


async def _both(client: httpx.AsyncClient, form: Form, url: str = URL) -> list[tuple[Any, ...]]:
    """The answer to the form sent form-encoded (fast path) and multipart (the route)."""
    pairs = list(form.items()) if isinstance(form, dict) else form
    fast = await client.post(
        url, content=urlencode(pairs), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    route = await client.post(url, files=[(k, (None, v)) for k, v in pairs])
    assert fast.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert route.request.headers["content-type"].startswith("multipart/form-data")
    return [
        (r.status_code, sorted(r.headers.items()), _ID.sub(b"<id>", r.content))
        for r in (fast, route)
    ]


STREETLIGHT = {**VALID, "service_code": "streetlight-out"}


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize(
    "form",
    [
        VALID,
        {**VALID, "account_id": '账户"7\\<&>', "email": "a@b.cn"},
        {**VALID, "account_id": "账户\t\x01"},
        {**VALID, "description": "bad\x00byte"},
        {**VALID, "api_key": "nope"},
        {**VALID, "service_code": "nope"},
        {**VALID, "lat": "10"},
        {k: v for k, v in VALID.items() if k != "long"},
        [
            *STREETLIGHT.items(),
            ("attribute[symptoms][]", "dark"),
            ("attribute[symptoms][]", "daytime"),
        ],
        [*STREETLIGHT.items(), ("attribute[symptoms][]", "purple")],
        [*STREETLIGHT.items(), ("attribute[colour]", "red")],
    ],
)
async def test_a_form_post_gets_the_routes_answer(
    client: httpx.AsyncClient, service: IntakeService, form: Form, url: str
) -> None:
    fast, route = await _both(client, form, url)
    assert fast == route
    content_type = dict(fast[1])["content-type"]
    assert content_type.startswith("text/xml" if url.endswith(".xml") else "application/json")


async def test_a_multivaluelist_answer_keeps_every_value_on_both_paths(
    client: httpx.AsyncClient, service: IntakeService
) -> None:
    form = [
        *STREETLIGHT.items(),
        ("attribute[symptoms][]", "dark"),
        ("attribute[symptoms][]", "daytime"),
    ]
    await _both(client, form)
    stored = cast(Writer, service.submissions).stored
    assert [a.submission.attributes for a in stored] == [{"symptoms": ["dark", "daytime"]}] * 2


async def test_the_answer_is_what_the_response_model_would_send(
    client: httpx.AsyncClient, service: IntakeService
) -> None:
    answer = await client.post(URL, data={**VALID, "account_id": '账户"7\\'})
    assert answer.status_code == 200
    stored = cast(Writer, service.submissions).stored
    assert [a.request_id for a in stored] == [answer.json()[0]["service_request_id"]]
    # What FastAPI sends for a response_model: validate, then pydantic's JSON.
    model = TypeAdapter(list[Created])
    assert answer.content == model.dump_json(model.validate_python(answer.json()))


async def test_a_database_outage_is_503_on_both_paths_and_counted(
    client: httpx.AsyncClient, service: IntakeService
) -> None:
    cast(Writer, service.submissions).failure = ConnectionRefusedError("database away")
    for url in URLS:
        fast, route = await _both(client, VALID, url)
        assert fast == route
        assert fast[0] == 503 and b"database is unavailable" in fast[2]
        assert ("retry-after", "5") in fast[1]
    rejected = service.metrics.rejected.labels("503")._value.get()  # type: ignore[attr-defined]
    assert rejected == 4


async def test_an_unexpected_error_stays_a_500(app: FastAPI, service: IntakeService) -> None:
    cast(Writer, service.submissions).failure = ValueError("a bug")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        answer = await c.post(URL, data=VALID)
    assert (answer.status_code, answer.text) == (500, "Internal Server Error")

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
        [*VALID.items(), ("lat", "31.79")],  # refused: which of the two did the client mean?
        [*VALID.items(), ("lat", "31.78")],  # the same value twice is one value
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


NOT_UTF8 = "a percent-encoded value is not UTF-8; send the form in UTF-8"


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        # 垃圾 in GBK, percent-encoded as a GBK page's form sends it.
        (b"description=%C0%AC%BB%F8", "", "description: " + NOT_UTF8),
        (b"description=\xc0\xac", "", "the form must be UTF-8 encoded"),
        # Valid UTF-8 by accident (Ã© in latin-1 is é in UTF-8): the declared charset decides.
        (
            b"description=%C3%A9",
            "; charset=ISO-8859-1",
            "description: the form declares charset=iso-8859-1; GeoReport v2 requires UTF-8,"
            " send it in UTF-8",
        ),
        (b"attribute%5B%C0%5D=x", "", "attribute[\\xc0]: " + NOT_UTF8),
    ],
)
async def test_a_form_not_in_utf8_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, service: IntakeService, body: bytes, content_type: str, words: str
) -> None:
    form = urlencode({k: v for k, v in VALID.items() if k != "description"}).encode()
    answer = await client.post(
        URL,
        content=form + b"&" + body,
        headers={"content-type": "application/x-www-form-urlencoded" + content_type},
    )
    assert answer.status_code == 400
    assert answer.json() == [{"code": 400, "description": words}]
    assert cast(Writer, service.submissions).stored == []


@pytest.mark.parametrize("charset", ["", "; charset=UTF-8", '; charset="utf-8"', "; charset=gbk"])
async def test_a_utf8_form_is_stored_whatever_it_declares_while_it_is_ascii_or_utf8(
    client: httpx.AsyncClient, service: IntakeService, charset: str
) -> None:
    form = VALID if "gbk" not in charset else {**VALID, "description": "ASCII only"}
    answer = await client.post(
        URL,
        content=urlencode(form).encode(),
        headers={"content-type": "application/x-www-form-urlencoded" + charset},
    )
    assert answer.status_code == 200
    stored = cast(Writer, service.submissions).stored
    assert [a.submission.description for a in stored] == [form["description"]]


async def test_a_multipart_field_not_in_utf8_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, service: IntakeService
) -> None:
    parts = [*((k, (None, v.encode())) for k, v in VALID.items() if k != "description")]
    answer = await client.post(URL, files=[*parts, ("description", (None, "垃圾".encode("gbk")))])
    assert answer.request.headers["content-type"].startswith("multipart/form-data")
    assert answer.status_code == 400
    assert answer.json() == [
        {"code": 400, "description": "description: a value is not UTF-8; send the form in UTF-8"}
    ]
    assert cast(Writer, service.submissions).stored == []
    # A broken multipart body is a 400 in GeoReport's error format, not an exception.
    broken = await client.post(
        URL, content=b"abc", headers={"content-type": "multipart/form-data; boundary=XX"}
    )
    assert (broken.status_code, broken.json()) == (
        400,
        [{"code": 400, "description": "Invalid multipart data."}],
    )

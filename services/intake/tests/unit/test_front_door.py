"""The front door: the key is checked before the body is read, bodies over the route's
limit get 413 (declared or streamed), and a long Kafka outage turns writes into 503."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from gridline.common.clock import ManualClock
from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.extent import Extent
from gridline.intake.bootstrap import IntakeService
from gridline.intake.config import IntakeSettings
from gridline.intake.domain.keys import KeyRing, Role
from gridline.intake.domain.submission import Accepted
from gridline.intake.entrypoints.api import create_app
from gridline.intake.entrypoints.front_door import LIMITS, KiB, route_of
from gridline.intake.handlers import Intake
from gridline.intake.metrics import IntakeMetrics

pytestmark = pytest.mark.unit

CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"
SQUARE = [[119.9, 31.7], [120.1, 31.7], [120.1, 31.9], [119.9, 31.9], [119.9, 31.7]]
URL = "/open311/v2/requests.json"
REPORT = {"service_code": "exposed-garbage", "lat": "31.78", "long": "119.95"}
LIMIT = route_of(URL).limit


class Stored:
    def __init__(self) -> None:
        self.reports: list[Accepted] = []

    async def write(self, item: Accepted) -> bool:
        self.reports.append(item)
        return True  # stored (the group-commit writer's answer)


class Relay:
    def __init__(self) -> None:
        self.stalled = 0.0

    def stalled_for(self) -> float:
        return self.stalled


@pytest.fixture
def service() -> IntakeService:
    intake = Intake(ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC)), "/gridline/intake")
    intake.policy.catalogue = load_catalogue_text(CATALOGUE.read_text())
    intake.policy.extent = Extent.from_geojson(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"district_id": "d"},
                    "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
                }
            ],
        }
    )
    keys = {Role.OPEN311_CLIENT: ["citizen-app"], Role.PARTNER: ["rider-co"], Role.SENSOR: ["s1"]}
    return IntakeService(
        runtime=cast(Any, SimpleNamespace(relay=Relay())),
        intake=intake,
        settings=IntakeSettings(kafka_outage_grace_s=30, retry_after_s=7),
        metrics=IntakeMetrics(CollectorRegistry()),
        keys=KeyRing.of(keys),
        submissions=cast(Any, Stored()),
    )


@pytest.fixture
def app(service: IntakeService) -> FastAPI:
    app = create_app(IntakeSettings())
    app.state.service = service

    @app.post("/v1/probe")  # a write that takes its key only in a header
    async def probe() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.fixture
async def client(app: FastAPI) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as c:
        yield c


def stored(service: IntakeService) -> list[Accepted]:
    return cast(Stored, service.submissions).reports


def rejected(service: IntakeService, code: int) -> float:
    return cast(float, service.metrics.rejected.labels(str(code))._value.get())  # type: ignore[attr-defined]


async def call(app: FastAPI, path: str, headers: dict[str, str], query: str = "") -> Any:
    """A raw ASGI POST whose body must never be read: receive() fails the test."""

    async def receive() -> Any:
        raise AssertionError("the body was read")

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": app,
        "scheme": "http",
        "server": ("intake", 80),
        "client": ("127.0.0.1", 1),
        "http_version": "1.1",
    }
    await app.build_middleware_stack()(scope, receive, send)
    status = sent[0]["status"]
    return status, dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"x-api-key": "stolen"}, ""),
        ({"authorization": "Bearer stolen"}, ""),
        ({}, "api_key=stolen"),
    ],
)
async def test_an_invalid_key_outside_the_body_is_403_before_the_body_is_read(
    app: FastAPI, service: IntakeService, headers: dict[str, str], query: str
) -> None:
    status, _, body = await call(
        app, URL, {"content-type": "application/x-www-form-urlencoded", **headers}, query
    )
    assert status == 403
    assert body == b'[{"code":403,"description":"api_key is not valid"}]'
    assert rejected(service, 403) == 1


async def test_a_write_that_takes_no_key_in_its_body_needs_one_before_it_is_read(
    app: FastAPI,
) -> None:
    status, _, body = await call(app, "/v1/probe", {"content-type": "application/json"})
    assert status == 403
    assert b"api key is required" in body and body.startswith(b'{"detail":')


async def test_a_declared_body_over_the_limit_is_413_naming_it_before_it_is_read(
    app: FastAPI, service: IntakeService
) -> None:
    headers = {"x-api-key": "citizen-app", "content-length": str(LIMIT + 1)}
    status, _, body = await call(app, URL, headers)
    assert status == 413
    assert b"64 KiB (65536 bytes)" in body
    assert rejected(service, 413) == 1


async def chunks(data: bytes, size: int = 8 * KiB) -> Any:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("multipart", [False, True])
async def test_a_streamed_body_over_the_limit_is_413_on_both_paths(
    client: httpx.AsyncClient, service: IntakeService, multipart: bool
) -> None:
    """Chunked (no Content-Length), the api_key inside: form-encoded goes to the fast path,
    multipart to the route; both stop at the limit."""
    form = {"api_key": "citizen-app", **REPORT, "description": "x" * (LIMIT + 10)}
    if multipart:
        boundary = "b0undary"
        data = (
            b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                for k, v in form.items()
            )
            + f"--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        data, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
    answer = await client.post(URL, content=chunks(data), headers={"content-type": content_type})
    assert answer.status_code == 413, answer.text
    assert answer.json() == [{"code": 413, "description": answer.json()[0]["description"]}]
    assert "64 KiB" in answer.json()[0]["description"]
    assert stored(service) == []


async def test_a_body_just_under_the_limit_is_read_and_judged(
    client: httpx.AsyncClient, service: IntakeService
) -> None:
    form = {"api_key": "citizen-app", **REPORT, "description": "x" * 4000}
    answer = await client.post(URL, content=chunks(urlencode(form).encode()))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("headers", "source"),
    [
        ({"x-api-key": "rider-co"}, "partner"),
        ({"authorization": "Bearer s1"}, "sensor"),
        ({}, "citizen"),  # the form's api_key
    ],
)
async def test_the_keys_role_decides_the_reports_source(
    client: httpx.AsyncClient, service: IntakeService, headers: dict[str, str], source: str
) -> None:
    # The form's api_key is a citizen app's; a key in a header wins over it.
    answer = await client.post(URL, data={"api_key": "citizen-app", **REPORT}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert [a.source for a in stored(service)] == [source]


async def test_writes_are_503_with_retry_after_once_kafka_is_away_past_the_grace(
    client: httpx.AsyncClient, service: IntakeService
) -> None:
    relay = cast(Relay, service.runtime.relay)
    relay.stalled = 29.0  # within the grace: the outbox absorbs it
    within = await client.post(URL, data={"api_key": "citizen-app", **REPORT})
    assert within.status_code == 200, within.text
    relay.stalled = 31.0
    refused = await client.post(URL, data={"api_key": "citizen-app", **REPORT})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "7"
    assert "Kafka unreachable for 31 s" in refused.json()[0]["description"]
    assert len(stored(service)) == 1  # nothing stored for the refused one
    reading = await client.get("/open311/v2/services.json")
    assert reading.status_code == 200  # reads do not need Kafka
    relay.stalled = 0.0  # the relay published again
    again = await client.post(URL, data={"api_key": "citizen-app", **REPORT})
    assert again.status_code == 200, again.text


async def test_a_write_method_on_a_read_only_path_is_still_405(client: httpx.AsyncClient) -> None:
    answer = await client.post("/open311/v2/services.json")
    assert answer.status_code == 405


def test_the_limit_table_gives_the_longest_matching_prefix() -> None:
    assert route_of("/open311/v2/requests.json").key_in_body
    assert route_of("/v1/reports/batch").limit == 8 * 1024 * KiB
    assert route_of("/v1/reports/r1/feedback").limit == 64 * KiB
    assert {r.prefix for r in LIMITS} >= {""}

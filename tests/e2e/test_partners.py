"""Partners against the running stack, as an operator and a platform's client would meet
them: `gridline partners add` prints a key and secret; signed tips over real HTTP are taken,
unsigned or stale ones are 401; the rate limit answers 429 with Retry-After and recovers;
a rotated key works within its overlap (on the stack's fast clock) and not after; a
revoked partner's key is refused at once."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from gridline.common.policy.catalogue import Catalogue
from gridline.operator.cli import main as gridline

from .conftest import CLOCK_SPEED
from .stack import Stack, wait_until
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e


def operator(capsys: pytest.CaptureFixture[str], stack: Stack, *args: str) -> Any:
    os.environ["GRIDLINE_INTAKE_URL"] = stack.url("intake")
    capsys.readouterr()
    creds = str(stack.workdir / "credentials.json")
    assert gridline(["partners", *args, "--credentials", creds]) == 0
    return json.loads(capsys.readouterr().out)


def stored_tip(description: str) -> Any:
    async def read() -> Any:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            return await conn.fetchrow(
                "SELECT partner_id, rider_id FROM intake.requests WHERE description = $1",
                description,
            )
        finally:
            await conn.close()

    return asyncio.run(read())


def test_a_partner_from_registration_to_revocation(
    stack: Stack, catalogue: Catalogue, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    p = operator(capsys, stack, "add", name, "--rate", "1", "--burst", "2")
    assert p["key"].startswith("gpk_") and p["secret"].startswith("gps_")
    lat, lon = grid_point(stack, stack.handler_key("grid")[0])
    url = f"{stack.url('intake')}/v1/reports"

    def tip(key: str, signed: bool = True, rider: str = "rider-7") -> httpx.Response:
        return tip_described(key, signed, rider)[0]

    def tip_described(
        key: str, signed: bool = True, rider: str = "rider-7"
    ) -> tuple[httpx.Response, str]:
        description = f"e2e tip {uuid.uuid4()}"
        report = {
            "service_code": catalogue.categories[0].code,
            "lat": lat,
            "long": lon,
            "description": description,
            "rider_id": rider,
        }
        body = json.dumps(report).encode()
        headers = stack.partner_headers(body, key, p["secret"])
        if not signed:
            del headers["X-Gridline-Signature"]
        with httpx.Client(timeout=30) as client:
            answer = client.post(url, content=body, headers=headers)
        return answer, description

    first, description = tip_described(p["key"])
    assert first.status_code == 201, first.text
    assert tuple(stored_tip(description)) == (p["partner_id"], "rider-7")
    unsigned, description = tip_described(p["key"], signed=False)
    assert unsigned.status_code == 401, unsigned.text
    assert stored_tip(description) is None

    # 1 a second, bursts of 2: one token left after the two above took theirs (unsigned
    # requests count too: the limit is checked before the body is read).
    answers = [tip(p["key"]) for _ in range(3)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["retry-after"]) >= 1
    time.sleep(int(limited[0].headers["retry-after"]) + 0.2)
    assert tip(p["key"]).status_code == 201

    # The overlap is on the service clock: an hour passes in 2 s at 1800x.
    new = operator(capsys, stack, "rotate", name, "--overlap-hours", "1")
    time.sleep(1.1)  # a token for the next request
    assert tip(p["key"]).status_code == 201  # the old key, within the overlap
    wait_until(
        lambda: tip(p["key"]).status_code == 403,
        timeout=3600 / CLOCK_SPEED + 10,
        interval=1.1,
        what="the rotated-out key refused",
    )
    time.sleep(1.1)
    assert tip(new["key"]).status_code == 201

    operator(capsys, stack, "revoke", name)
    refused = tip(new["key"])
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    listing = operator(capsys, stack, "list")
    assert [q["active"] for q in listing if q["name"] == name] == [False]


def test_a_rider_id_that_is_a_phone_number_is_refused(stack: Stack, catalogue: Catalogue) -> None:
    lat, lon = grid_point(stack, stack.handler_key("grid")[0])
    report = {
        "service_code": catalogue.categories[0].code,
        "lat": lat,
        "long": lon,
        "rider_id": "13812345678",
    }
    body = json.dumps(report).encode()
    with httpx.Client(timeout=30) as client:
        answer = client.post(
            f"{stack.url('intake')}/v1/reports", content=body, headers=stack.partner_headers(body)
        )
    assert answer.status_code == 400
    assert answer.json()["detail"] == "rider_id must be your own opaque id, not a phone number"


def test_make_ups_demo_partner_is_kept_and_one_revoked_stays_revoked(
    stack: Stack, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make up` registers the demo partner on every start; a second start keeps it, and
    one an operator revoked is neither registered again nor a failed `make up` (it was: a
    409 for the name taken)."""
    os.environ["GRIDLINE_INTAKE_URL"] = stack.url("intake")
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"admin_key": stack.credentials["admin_key"]}))
    name = f"e2e-demo-{uuid.uuid4().hex[:8]}"
    demo = ["partners", "demo", "--name", name, "--credentials", str(creds)]

    assert gridline(demo) == 0
    first = json.loads(creds.read_text())
    assert first["partner_id"].startswith("ptn_") and first["partner_key"].startswith("gpk_")
    assert gridline(demo) == 0
    assert json.loads(creds.read_text()) == first
    assert "kept" in capsys.readouterr().err

    assert gridline(["partners", "revoke", name, "--credentials", str(creds)]) == 0
    capsys.readouterr()
    assert gridline(demo) == 0
    assert "was revoked" in capsys.readouterr().err
    assert json.loads(creds.read_text()) == first
    assert gridline(["partners", "list", "--credentials", str(creds)]) == 0
    listed = [p for p in json.loads(capsys.readouterr().out) if p["name"] == name]
    assert [(p["partner_id"], p["active"]) for p in listed] == [(first["partner_id"], False)]

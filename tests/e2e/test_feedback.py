"""A reporter rejects a resolution on the running stack: the work order opens again, its
holder is notified, and the report's timeline tells the whole story in order."""

from __future__ import annotations

import httpx
import pytest

from gridline.common.policy.catalogue import Catalogue

from .receiver import Receiver
from .stack import Stack, wait_until
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e


def test_a_rejected_resolution_reopens_the_order_and_the_timeline_tells_it(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    category = grid_category(catalogue, longest=True)
    intake = f"{stack.url('intake')}/v1/reports"
    with httpx.Client(timeout=10) as client:
        created = stack.post_report(client, service_code=category.code, lat=lat, long=lon)
        assert created.status_code == 200, created.text
        request_id = created.json()[0]["service_request_id"]
        token = created.json()[0]["token"]
        by_token = {"authorization": f"Bearer {token}"}
        by_key = {"x-api-key": stack.credentials["open311_api_key"]}
        wait_until(
            lambda: stack.request(client, request_id)["expected_datetime"], what="assignment"
        )

        early = client.post(
            f"{intake}/{request_id}/feedback",
            json={"outcome": "reject", "satisfaction": 1},
            headers=by_token,
        )
        assert early.status_code == 409, early.text
        assert "open" in early.json()["detail"]

        resolved = client.post(
            f"{stack.url('routing')}/v1/workorders/{request_id}/resolve",
            json={"note": "cleared"},
            headers={"authorization": f"Bearer {grid_key}"},
        )
        assert resolved.status_code == 200, resolved.text
        wait_until(
            lambda: stack.request(client, request_id)["status"] == "closed",
            what="the request to show closed",
        )

        rejected = client.post(
            f"{intake}/{request_id}/feedback",
            json={"outcome": "reject", "satisfaction": 1, "comment": "垃圾还在 still there"},
            headers=by_token,
        )
        assert rejected.status_code == 201, rejected.text
        assert rejected.json()["reopens"] is True
        again = client.post(
            f"{intake}/{request_id}/feedback",
            json={"outcome": "confirm", "satisfaction": 5},
            headers=by_key,
        )
        assert again.status_code == 409, again.text

        order = wait_until(
            lambda: (
                (
                    o := client.get(
                        f"{stack.url('routing')}/v1/workorders/{request_id}",
                        headers={"authorization": f"Bearer {grid_key}"},
                    ).json()
                )["state"]
                == "open"
                and o
            ),
            what="routing to reopen the order",
        )
        assert order["history"][-1]["event_type"] == "gridline.workorder.reopened.v1"

        status = wait_until(
            lambda: (
                (r := client.get(f"{intake}/{request_id}", headers=by_token).json())["status"]
                == "open"
                and r
            ),
            what="intake's view to show the order open again",
        )
        assert status["status_notes"].startswith("Reopened")
        assert status["counts"]["reopenings"] == 1
        assert status["counts"]["feedback"] == 1
        assert status["tags"] is not None

        kinds = [
            e["kind"]
            for e in client.get(f"{intake}/{request_id}/timeline", headers=by_key).json()["entries"]
        ]
        wanted = ["received", "assigned", "resolved", "feedback", "reopened"]
        assert [k for k in kinds if k in wanted][:5] == wanted, kinds

        bad = client.post(
            f"{intake}/{request_id}/feedback",
            json={"outcome": "reject", "satisfaction": 6, "comment": "a\u0000b"},
            headers=by_key,
        )
        assert bad.status_code == 400, bad.text
        assert "satisfaction" in bad.text and "comment" in bad.text
        assert client.get(f"{intake}/a%00b", headers=by_key).status_code == 400
        assert client.get(f"{intake}/{request_id}").status_code == 401
        assert (
            client.get(f"{intake}/{request_id}", headers={"x-api-key": "nope"}).status_code == 403
        )

    wait_until(
        lambda: any(d.json["type"] == "workorder.reopened" for d in receiver.for_order(request_id)),
        what="the reopened notification",
    )

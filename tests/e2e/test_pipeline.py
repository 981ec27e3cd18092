"""Steps 1-6 of the foundation through the public APIs of the running stack."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from shapely.geometry import shape

from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier
from gridline.notify.domain.signing import verify

from .receiver import Receiver
from .stack import Stack, wait_until

pytestmark = pytest.mark.e2e


def grid_point(stack: Stack, grid_id: str) -> tuple[float, float]:
    feature = next(f for f in stack.city["features"] if f["properties"]["grid_id"] == grid_id)
    point = shape(feature["geometry"]).representative_point()
    return point.y, point.x


def grid_category(catalogue: Catalogue, longest: bool) -> Any:
    at_grid = [c for c in catalogue.categories if c.entry_tier is Tier.GRID]
    return sorted(at_grid, key=lambda c: catalogue.time_limit(c.code, Tier.GRID))[
        -1 if longest else 0
    ]


def test_report_is_routed_to_its_grid_resolved_there_and_counted(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    category = grid_category(catalogue, longest=True)
    with httpx.Client(timeout=10) as client:
        services = client.get(f"{stack.url('intake')}/open311/v2/services.json").json()
        assert category.code in {s["service_code"] for s in services}

        created = stack.post_report(
            client, service_code=category.code, lat=lat, long=lon, description="路边有垃圾 rubbish"
        )
        assert created.status_code == 200, created.text
        request_id = created.json()[0]["service_request_id"]
        assert "网格员" in created.json()[0]["service_notice"]  # the category enters at the grid

        view = wait_until(
            lambda: (r := stack.request(client, request_id))["expected_datetime"] and r,
            what="the work order to be assigned",
        )
        assert view["status"] == "open"
        assert "grid" in view["status_notes"]
        grid_name = next(
            f["properties"]["grid_name"]
            for f in stack.city["features"]
            if f["properties"]["grid_id"] == grid_unit
        )
        assert view["agency_responsible"] == grid_name

        resolved = client.post(
            f"{stack.url('routing')}/v1/workorders/{request_id}/resolve",
            json={"note": "cleared"},
            headers={"authorization": f"Bearer {grid_key}"},
        )
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["state"] == "resolved"

        closed = wait_until(
            lambda: (r := stack.request(client, request_id))["status"] == "closed" and r,
            what="the request to show closed",
        )
        assert "Resolved at tier grid" in closed["status_notes"]

        street = stack.credentials["handler_units"]["street"]
        assert (
            wait_until(
                lambda: stack.metric(
                    client,
                    "sla",
                    "gridline_workorders_resolved_total",
                    street_id=street,
                    tier="grid",
                    category=category.code,
                ),
                what="the resolution to be counted",
            )
            >= 1
        )
        ratio = wait_until(
            lambda: stack.metric(
                client,
                "sla",
                "gridline_sla_tier_attainment_ratio",
                scope_level="street",
                scope_id=street,
                tier="grid",
                window="7d",
            ),
            what="attainment for the street",
        )
        assert 0 < ratio <= 1
        assert stack.metric(client, "sla", "gridline_sla_tier_target_ratio", tier="grid") == 0.7
        # The same resolution in sla's figures for the grid (tallied in the counter's
        # transaction), and a question sla cannot read refused with what to write.
        figures = client.get(
            f"{stack.url('sla')}/v1/measures",
            params={"scope": f"grid:{grid_unit}", "category": category.code, "window": "30d"},
        )
        assert figures.status_code == 200, figures.text
        assert figures.json()["resolved_by_tier"]["grid"] >= 1
        assert figures.json()["attainment"]["grid"] > 0
        refused = client.get(f"{stack.url('sla')}/v1/measures", params={"scope": "town:1"})
        assert refused.status_code == 400 and "scope:" in refused.json()["detail"]
        assert (
            stack.metric(client, "sla", "gridline_workorder_resolution_seconds_count", tier="grid")
            or 0
        ) >= 1
        # Bucket bounds sit at the default time limits (hours), e.g. 8 h = 28800 s.
        assert (
            stack.metric(
                client,
                "sla",
                "gridline_workorder_resolution_seconds_bucket",
                tier="grid",
                le="28800.0",
            )
            is not None
        )

    kinds = wait_until(
        lambda: (
            {d.json["type"] for d in receiver.for_order(request_id)}
            >= {"workorder.assigned", "workorder.resolved"}
            and receiver.for_order(request_id)
        ),
        what="assigned and resolved notifications",
    )
    # One order's notifications arrive in the order of its events, even though the first
    # deliveries of the session are refused and retried; due times read in the city's zone.
    versions = [d.json["event"]["data"]["version"] for d in kinds]
    assert versions == sorted(versions), versions
    assigned_text = next(d for d in kinds if d.json["type"] == "workorder.assigned")
    assert "+08:00" in assigned_text.json["message"]["en"]
    for delivery in kinds:
        h = delivery.headers
        assert verify(
            stack.credentials["webhook_secret"],
            h["webhook-id"],
            int(h["webhook-timestamp"]),
            delivery.body,
            h["webhook-signature"],
        )


def test_time_limit_passing_escalates_to_the_community_with_a_new_due_time(
    stack: Stack, catalogue: Catalogue, receiver: Receiver
) -> None:
    grid_unit, _ = stack.handler_key("grid")
    community = stack.credentials["handler_units"]["community"]
    lat, lon = grid_point(stack, grid_unit)
    category = grid_category(catalogue, longest=False)
    with httpx.Client(timeout=10) as client:
        created = stack.post_report(client, service_code=category.code, lat=lat, long=lon)
        request_id = created.json()[0]["service_request_id"]
        first = wait_until(
            lambda: (r := stack.request(client, request_id))["expected_datetime"] and r,
            what="assignment",
        )
        escalated = wait_until(
            lambda: (
                "Escalated" in ((r := stack.request(client, request_id))["status_notes"] or "")
                and r
            ),
            timeout=90,
            what="a timeout escalation",
        )
        assert "time limit passed" in escalated["status_notes"]
        assert escalated["expected_datetime"] > first["expected_datetime"]
        _, community_key = stack.handler_key("community")
        order = client.get(
            f"{stack.url('routing')}/v1/workorders/{request_id}",
            headers={"authorization": f"Bearer {community_key}"},
        ).json()
        assert order["tier"] in ("community", "street", "department")
        assert order["history"][0]["event_type"] == "gridline.workorder.assigned.v1"
        if order["tier"] == "community":
            assert order["unit_id"] == community
        assert (
            wait_until(
                lambda: stack.metric(
                    client,
                    "sla",
                    "gridline_escalations_total",
                    from_tier="grid",
                    to_tier="community",
                    reason="timeout",
                ),
                what="escalation counted",
            )
            >= 1
        )
    wait_until(
        lambda: any(
            d.json["type"] == "workorder.escalated" for d in receiver.for_order(request_id)
        ),
        what="the escalation notification",
    )


def test_whistle_moves_the_order_up_and_only_the_holders_subtree_may_act(
    stack: Stack, catalogue: Catalogue
) -> None:
    grid_unit, grid_key = stack.handler_key("grid")
    _, department_key = stack.handler_key("department")
    lat, lon = grid_point(stack, grid_unit)
    category = grid_category(catalogue, longest=True)
    with httpx.Client(timeout=10) as client:
        request_id = stack.post_report(
            client, service_code=category.code, lat=lat, long=lon
        ).json()[0]["service_request_id"]
        wait_until(
            lambda: stack.request(client, request_id)["expected_datetime"], what="assignment"
        )
        url = f"{stack.url('routing')}/v1/workorders/{request_id}"
        denied = client.post(
            f"{url}/resolve", headers={"authorization": f"Bearer {department_key}"}
        )
        assert denied.status_code == 403
        assert "outside" in denied.json()["detail"]
        assert (
            client.post(f"{url}/resolve", headers={"authorization": "Bearer nope"}).status_code
            == 403
        )
        assert client.post(f"{url}/resolve").status_code == 401
        moved = client.post(
            f"{url}/escalate",
            json={"note": "needs the community"},
            headers={"authorization": f"Bearer {grid_key}"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["tier"] == "community"
        notes = wait_until(
            lambda: (
                "Escalated" in (n := stack.request(client, request_id)["status_notes"] or "") and n
            ),
            what="the whistle to show",
        )
        assert "吹哨" in notes


def test_bad_reports_get_the_specifications_errors(stack: Stack, catalogue: Catalogue) -> None:
    code = catalogue.categories[0].code
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    with httpx.Client(timeout=10) as client:
        url = f"{stack.url('intake')}/open311/v2/requests.json"
        cases = [
            ({"service_code": code, "lat": lat, "long": lon}, 403, "api_key is required"),
            ({"api_key": "wrong", "service_code": code, "lat": lat, "long": lon}, 403, "not valid"),
            (
                {"api_key": stack.credentials["open311_api_key"], "lat": lat, "long": lon},
                400,
                "service_code",
            ),
            (
                {
                    "api_key": stack.credentials["open311_api_key"],
                    "service_code": "nope",
                    "lat": lat,
                    "long": lon,
                },
                404,
                "not found",
            ),
            (
                {"api_key": stack.credentials["open311_api_key"], "service_code": code},
                400,
                "lat and long",
            ),
            (
                {
                    "api_key": stack.credentials["open311_api_key"],
                    "service_code": code,
                    "lat": 39.9,
                    "long": 116.4,
                },
                400,
                "outside the city",
            ),
        ]
        for form, status, words in cases:
            response = client.post(url, data=form)
            assert response.status_code == status, (form, response.text)
            [error] = response.json()
            assert error["code"] == status and words in error["description"]
        missing = client.get(f"{stack.url('intake')}/open311/v2/requests/does-not-exist.json")
        assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_point_in_a_gap_of_the_map_is_held_for_triage_not_dropped(
    stack: Stack, catalogue: Catalogue
) -> None:
    lon, lat = stack.city["gridline:gaps"][0]
    with httpx.Client(timeout=10) as client:
        created = stack.post_report(
            client, service_code=catalogue.categories[0].code, lat=lat, long=lon
        )
        assert created.status_code == 200, created.text
        request_id = created.json()[0]["service_request_id"]
        view = wait_until(
            lambda: (
                "triage" in ((r := stack.request(client, request_id))["status_notes"] or "") and r
            ),
            what="triage",
        )
        assert view["status"] == "open" and view["agency_responsible"]
        assert view["expected_datetime"] is None

        url = f"{stack.url('routing')}/v1/workorders/{request_id}"
        grid_unit, grid_key = stack.handler_key("grid")
        admin = {"authorization": f"Bearer {stack.credentials['admin_key']}"}
        refused = client.post(f"{url}/resolve", headers={"authorization": f"Bearer {grid_key}"})
        assert refused.status_code == 403  # the grid worker does not hold it
        queue = client.get(
            f"{stack.url('routing')}/v1/workorders",
            params={"limit": 1000, "state": "triage"},
            headers=admin,
        ).json()
        held = [o for o in queue if o["id"] == request_id]
        assert held and held[0]["state"] == "triage"  # the operators' triage queue shows it
        assert all(o["state"] == "triage" for o in queue)
        empty = client.post(f"{url}/assign", json={}, headers=admin)
        assert empty.status_code == 422 and "body.grid_id" in empty.json()["detail"]
        unknown = client.post(f"{url}/assign", json={"grid_id": "no-such-grid"}, headers=admin)
        assert unknown.status_code == 409 and "no-such-grid" in unknown.json()["detail"]
        bad_code = client.post(
            f"{url}/assign", json={"grid_id": grid_unit, "service_code": "nope"}, headers=admin
        )
        assert bad_code.status_code == 409 and "services.json" in bad_code.json()["detail"]
        corrected = next(
            c.code
            for c in catalogue.categories
            if c.entry_tier is Tier.GRID and c.code != catalogue.categories[0].code
        )
        assigned = client.post(
            f"{url}/assign", json={"grid_id": grid_unit, "service_code": corrected}, headers=admin
        )
        assert assigned.status_code == 200, assigned.text
        assert (assigned.json()["state"], assigned.json()["unit_id"]) == ("open", grid_unit)
        assert assigned.json()["category"] == corrected
        after = wait_until(
            lambda: (r := stack.request(client, request_id))["expected_datetime"] and r,
            what="the triaged order to be assigned",
        )
        assert "Assigned at tier" in after["status_notes"]
        assert after["service_code"] == corrected  # the citizen sees the corrected category
        again = client.post(f"{url}/assign", json={"grid_id": grid_unit}, headers=admin)
        assert again.status_code == 409


def test_token_and_search_endpoints_find_the_request(stack: Stack, catalogue: Catalogue) -> None:
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    code = catalogue.categories[0].code
    with httpx.Client(timeout=10) as client:
        created = stack.post_report(client, service_code=code, lat=lat, long=lon).json()[0]
        base = f"{stack.url('intake')}/open311/v2"
        token = client.get(f"{base}/tokens/{created['token']}.json").json()
        assert token == [
            {"service_request_id": created["service_request_id"], "token": created["token"]}
        ]
        found = client.get(
            f"{base}/requests.json", params={"service_request_id": created["service_request_id"]}
        ).json()
        assert [r["service_request_id"] for r in found] == [created["service_request_id"]]
        by_code = client.get(
            f"{base}/requests.json", params={"service_code": code, "status": "open"}
        ).json()
        assert created["service_request_id"] in {r["service_request_id"] for r in by_code}
        bad = client.get(f"{base}/requests.json", params={"status": "pending"})
        assert bad.status_code == 400
        discovery = client.get(f"{base}/discovery.json").json()
        assert discovery["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
        xml = client.get(f"{base}/tokens/{created['token']}.xml")
        assert xml.status_code == 200 and xml.headers["content-type"].startswith("text/xml")
        assert f"<service_request_id>{created['service_request_id']}<" in xml.text
        stray = client.get(f"{base}/nothing-here.json")
        assert stray.status_code == 404 and "discovery.json" in stray.json()[0]["description"]


def test_metrics_parse_and_carry_the_contracts_names_types_and_labels(
    stack: Stack, catalogue: Catalogue
) -> None:
    grid_unit, grid_key = stack.handler_key("grid")
    _, community_key = stack.handler_key("community")
    lat, lon = grid_point(stack, grid_unit)
    with httpx.Client(timeout=10) as client:
        # One order of its own: opened, whistled up to the community, resolved there.
        rid = stack.post_report(
            client, service_code=grid_category(catalogue, longest=True).code, lat=lat, long=lon
        ).json()[0]["service_request_id"]
        wait_until(lambda: stack.request(client, rid)["expected_datetime"], what="assignment")
        url = f"{stack.url('routing')}/v1/workorders/{rid}"
        up = client.post(f"{url}/escalate", headers={"authorization": f"Bearer {grid_key}"})
        assert up.status_code == 200, up.text
        done = client.post(f"{url}/resolve", headers={"authorization": f"Bearer {community_key}"})
        assert done.status_code == 200, done.text
        wait_until(
            lambda: stack.metric(
                client, "sla", "gridline_escalations_total", from_tier="grid", reason="whistle"
            ),
            what="the whistle to be counted",
        )
        wait_until(
            lambda: stack.metric(
                client, "sla", "gridline_workorders_resolved_total", tier="community"
            ),
            what="the resolution to be counted",
        )
        families = {}
        for service in ("intake", "routing", "sla", "notify"):
            text = client.get(f"{stack.url(service)}/metrics").text
            parsed = {f.name: f for f in text_string_to_metric_families(text)}
            assert parsed, f"{service} serves no metrics"
            if service == "sla":
                families = parsed
    expected = {
        "gridline_sla_tier_attainment_ratio": (
            "gauge",
            {"scope_level", "scope_id", "tier", "window"},
        ),
        "gridline_sla_tier_target_ratio": ("gauge", {"tier"}),
        "gridline_workorders_opened": ("counter", {"street_id", "category", "source"}),
        "gridline_workorders_resolved": ("counter", {"street_id", "tier", "category"}),
        "gridline_escalations": ("counter", {"from_tier", "to_tier", "reason"}),
        "gridline_workorder_resolution_seconds": ("histogram", {"tier"}),
    }
    for name, (kind, labels) in expected.items():
        family = families[name]
        assert family.type == kind, (name, family.type)
        assert family.samples, f"{name} has no samples after the pipeline ran"
        for sample in family.samples:
            assert labels <= set(sample.labels), (name, sample.labels)
    attainment = families["gridline_sla_tier_attainment_ratio"].samples
    assert {s.labels["scope_level"] for s in attainment} == {"city", "district", "street"}
    assert {s.labels["window"] for s in attainment} == {"1d", "7d", "30d"}
    assert {s.labels["tier"] for s in attainment} == {"grid", "community", "street"}
    reasons = {s.labels["reason"] for s in families["gridline_escalations"].samples}
    assert reasons <= {"timeout", "whistle", "rule"}

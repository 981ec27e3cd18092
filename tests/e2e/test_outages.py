"""PostgreSQL or Kafka crashes under the running stack and comes back.

Without PostgreSQL intake refuses reports instead of acknowledging what it cannot store;
without Kafka (killed with SIGKILL mid-traffic) it still accepts them: they wait in its
outbox, and each becomes exactly one work order once the broker is back. Every service reports itself
unready meanwhile, and all of them recover on their own without dead-lettering a single
valid event."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest

from gridline.common.policy.catalogue import Catalogue
from gridline.common.settings import PostgresSettings
from gridline.devstack.kafka import KafkaBroker
from gridline.devstack.paths import Paths
from gridline.devstack.postgres import PostgresCluster

from .stack import SERVICES, Stack, wait_until, work_orders_per_report
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e


def dead_letters(client: httpx.Client, stack: Stack) -> float:
    """Events every service sent to the dead-letter topic so far."""
    total = 0.0
    for service in SERVICES:
        for line in client.get(f"{stack.url(service)}/metrics").text.splitlines():
            if line.startswith("gridline_consumer_events_total{") and re.search(
                r'outcome="deadletter"', line
            ):
                total += float(line.rsplit(" ", 1)[1])
    return total


def ready(client: httpx.Client, stack: Stack, service: str) -> bool:
    try:
        return client.get(f"{stack.url(service)}/readyz").status_code == 200
    except httpx.TransportError:
        return False


def test_database_crash_refuses_reports_then_everything_recovers(
    stack: Stack, catalogue: Catalogue
) -> None:
    postgres = PostgresCluster(Paths.from_env())
    if postgres.external:
        pytest.fail("make test runs its own PostgreSQL; GRIDLINE_PG_EXTERNAL must be 0")
    grid_unit, grid_key = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    code = grid_category(catalogue, longest=True).code
    with httpx.Client(timeout=15) as client:
        letters = dead_letters(client, stack)
        # A burst just before the stop, so the consumers are mid-flight when it comes.
        accepted = []
        for i in range(12):
            r = stack.post_report(
                client, service_code=code, lat=lat, long=lon, description=f"before stop {i}"
            )
            assert r.status_code == 200, r.text
            accepted.append(r.json()[0]["service_request_id"])

        postgres.down(mode="immediate")  # a crash: no checkpoint, recovery on start
        try:
            refused = stack.post_report(client, service_code=code, lat=lat, long=lon)
            assert refused.status_code == 503, refused.text
            assert "not accepted" in refused.json()[0]["description"]
            assert stack.metric(
                client, "intake", "gridline_intake_reports_rejected_total", code="503"
            ), "the refused report is counted"
            looked_up = client.get(f"{stack.url('intake')}/open311/v2/requests/{accepted[0]}.json")
            assert looked_up.status_code == 503, looked_up.text
            assert "try again" in looked_up.json()[0]["description"]
            move = client.post(
                f"{stack.url('routing')}/v1/workorders/{accepted[0]}/resolve",
                headers={"authorization": f"Bearer {grid_key}"},
            )
            assert move.status_code == 503, move.text
            assert "nothing was stored or changed" in move.json()["detail"]
            for service in SERVICES:
                wait_until(
                    lambda s=service: not ready(client, stack, s),
                    what=f"{service} to report itself unready without its database",
                )
        finally:
            postgres.up()

        for service in SERVICES:
            wait_until(
                lambda s=service: ready(client, stack, s),
                timeout=60,
                what=f"{service} to recover after the database came back",
            )
        after = stack.post_report(client, service_code=code, lat=lat, long=lon)
        assert after.status_code == 200, after.text
        after_id = after.json()[0]["service_request_id"]
        for rid in [*accepted, after_id]:
            wait_until(
                lambda r=rid: stack.request(client, r)["expected_datetime"],
                timeout=60,
                what=f"report {rid} to be assigned",
            )
        done = client.post(
            f"{stack.url('routing')}/v1/workorders/{after_id}/resolve",
            headers={"authorization": f"Bearer {grid_key}"},
        )
        assert done.status_code == 200, done.text
        assert dead_letters(client, stack) == letters


def test_broker_killed_during_traffic_loses_no_accepted_report(
    stack: Stack, catalogue: Catalogue, pg_settings: PostgresSettings
) -> None:
    kafka = KafkaBroker(Paths.from_env())
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    code = grid_category(catalogue, longest=True).code
    accepted: list[str] = []
    with httpx.Client(timeout=15) as client:
        letters = dead_letters(client, stack)

        def report(i: int) -> None:
            r = stack.post_report(
                client, service_code=code, lat=lat, long=lon, description=f"broker crash {i}"
            )
            assert r.status_code == 200, r.text  # stored with its event in the outbox
            accepted.append(r.json()[0]["service_request_id"])

        for i in range(10):
            report(i)
        kafka.process.kill(signal.SIGKILL)  # mid-flight: relays and consumers lose the broker
        try:
            for i in range(10, 20):
                report(i)
            wait_until(
                lambda: not ready(client, stack, "intake"),
                what="intake to report itself unready without the broker",
            )
            # Past the grace, reports are refused rather than piled up unpublished: 503
            # with Retry-After, nothing stored.
            refused: list[httpx.Response] = []

            def refuses() -> bool:
                r = stack.post_report(
                    client, service_code=code, lat=lat, long=lon, description="broker gone"
                )
                if r.status_code == 200:  # still within the grace: stored, so it counts
                    accepted.append(r.json()[0]["service_request_id"])
                    time.sleep(1)
                    return False
                refused.append(r)
                return True

            wait_until(refuses, timeout=120, what="intake to refuse reports past the grace")
            assert refused[-1].status_code == 503, refused[-1].text
            assert int(refused[-1].headers["retry-after"]) > 0
            assert "Kafka" in refused[-1].json()[0]["description"]
        finally:
            kafka.up()
        wait_until(
            lambda: (
                stack.post_report(
                    client, service_code=code, lat=lat, long=lon, description="broker back"
                ).status_code
                == 200
            ),
            timeout=120,
            what="intake to accept reports again once the relay publishes",
        )
        for rid in accepted:
            wait_until(
                lambda r=rid: stack.request(client, r)["expected_datetime"],
                timeout=120,
                what=f"report {rid} to be assigned after the broker came back",
            )
        for service in SERVICES:
            wait_until(
                lambda s=service: ready(client, stack, s),
                timeout=60,
                what=f"{service} to recover after the broker came back",
            )
        assert dead_letters(client, stack) == letters

    assert work_orders_per_report(pg_settings.url, accepted) == dict.fromkeys(accepted, 1)

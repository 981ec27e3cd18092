"""The operations view against the running stack: a real Prometheus (Debian's package, as
`gridline-dev prometheus` installs it) scrapes the four services with deploy/prometheus's
configuration and rules while a short scenario plays on the accelerated clock; then every
rule evaluates without error, every recording rule has series, and every Grafana panel's
query (its variables substituted) parses and returns data."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from shapely.geometry import shape

from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier
from gridline.devstack.prometheus import PrometheusServer, deploy_dir

from .stack import BASE_PORT, SERVICES, Stack, wait_until

pytestmark = pytest.mark.e2e

DASHBOARDS = deploy_dir().parent / "grafana" / "dashboards"
PROMETHEUS_PORT = int(os.environ.get("GRIDLINE_E2E_PROMETHEUS_PORT", str(BASE_PORT + 90)))


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[PrometheusServer]:
    home = stack.workdir / "prometheus"
    server = PrometheusServer(
        home,
        PROMETHEUS_PORT,
        log_path=home / "prometheus.log",
        pid_file=home / "prometheus.pid",
        ports={name: BASE_PORT + i for i, name in enumerate(SERVICES)},
        interval="1s",
    )
    server.up()
    try:
        yield server
    finally:
        server.down()


def query(client: httpx.Client, prometheus: PrometheusServer, expr: str) -> list[Any]:
    response = client.get(f"{prometheus.url}/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


def panels() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            yield f"{dashboard['title']} / {panel['title']}", panel


def play_scenario(stack: Stack, catalogue: Catalogue, client: httpx.Client) -> str:
    """Reports and a refused one; resolutions at the grid, community and department tiers
    (whistled up tier by tier); one order left to time out at the grid. Returns the
    street the orders belong to."""
    grid_unit, grid_key = stack.handler_key("grid")
    keys = {level: stack.handler_key(level)[1] for level in ("community", "street", "department")}
    feature = next(f for f in stack.city["features"] if f["properties"]["grid_id"] == grid_unit)
    point = shape(feature["geometry"]).representative_point()
    # A category whose department holds the credentials' department key, entering at the
    # grid with a limit in clock hours: the timed-out order must escalate within the wait
    # below (a limit in working hours, e.g. exposed garbage's, may span a weekend).
    department = stack.credentials["handler_units"]["department"]
    category = next(
        c
        for c in catalogue.categories
        if c.department == department and c.entry_tier is Tier.GRID and c.calendar is None
    )

    refused = stack.post_report(client, service_code="no-such-code", lat=point.y, long=point.x)
    assert refused.status_code == 404  # an unknown service code: refused and counted

    def report() -> str:
        created = stack.post_report(
            client, service_code=category.code, lat=point.y, long=point.x, description="垃圾"
        )
        assert created.status_code == 200, created.text
        order: str = created.json()[0]["service_request_id"]
        wait_until(lambda: stack.request(client, order)["expected_datetime"], what="assignment")
        return order

    def act(order: str, action: str, key: str) -> dict[str, Any]:
        response = client.post(
            f"{stack.url('routing')}/v1/workorders/{order}/{action}",
            json={"note": "ops scenario"},
            headers={"authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    timing_out = report()  # nobody acts: the grid's time limit passes, it escalates
    for _ in range(2):
        act(report(), "resolve", grid_key)
    at_community = report()
    assert act(at_community, "escalate", grid_key)["tier"] == "community"
    act(at_community, "resolve", keys["community"])
    at_department = report()
    for holder, next_tier in (
        (grid_key, "community"),
        (keys["community"], "street"),
        (keys["street"], "department"),
    ):
        assert act(at_department, "escalate", holder)["tier"] == next_tier
    act(at_department, "resolve", keys["department"])
    wait_until(
        lambda: "time limit passed" in (stack.request(client, timing_out)["status_notes"] or ""),
        timeout=90,
        what="the grid's time limit to pass and escalate",
    )
    street: str = feature["properties"]["street_id"]
    return street


def variables(client: httpx.Client, prometheus: PrometheusServer, street: str) -> dict[str, str]:
    """Each dashboard variable's values through Prometheus' series API, as Grafana's
    label_values() asks for them; the scenario's street must be one of them."""
    values: dict[str, str] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert found, variable
            series = client.get(
                f"{prometheus.url}/api/v1/series", params={"match[]": found[1]}
            ).json()["data"]
            offered = {s[found[2]] for s in series}
            assert street in offered, (variable["name"], offered)
            values[variable["name"]] = street
    return values


def test_every_rule_and_every_panel_query_works_on_the_running_stack(
    stack: Stack, catalogue: Catalogue, prometheus: PrometheusServer
) -> None:
    with httpx.Client(timeout=10) as client:
        street = play_scenario(stack, catalogue, client)
        targets = client.get(f"{prometheus.url}/api/v1/targets").json()["data"]
        assert {t["labels"]["job"]: t["health"] for t in targets["activeTargets"]} == {
            name: "up" for name in SERVICES
        }

        substitutions = variables(client, prometheus, street)
        queries = [
            (where, target["expr"]) for where, panel in panels() for target in panel["targets"]
        ]
        assert len(queries) >= 30

        def substituted(expr: str) -> str:
            for name, value in substitutions.items():
                expr = expr.replace(f"${name}", value)
            assert "$" not in expr, expr
            return expr

        for _, expr in queries:  # each parses (query() asserts success), data or not
            query(client, prometheus, substituted(expr))

        # sla refreshes its snapshot every 0.5 s and Prometheus scrapes every second: wait
        # until every panel has data, then say which have none if some never do.
        def empty() -> list[str]:
            return [
                where for where, expr in queries if not query(client, prometheus, substituted(expr))
            ]

        try:
            wait_until(lambda: not empty(), timeout=60, what="every panel to have data")
        except AssertionError:
            pytest.fail(f"panels without data: {empty()}")

        rules = client.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
        loaded = {rule["name"] for group in rules for rule in group["rules"]}
        in_files = {
            name
            for path in (deploy_dir() / "rules").glob("*.yml")
            for name in re.findall(r"(?m)^\s+- (?:record|alert): (\S+)$", path.read_text())
        }
        assert loaded == in_files
        bad = [
            (rule["name"], rule["health"], rule.get("lastError"))
            for group in rules
            for rule in group["rules"]
            if rule["health"] != "ok"
        ]
        assert not bad, bad
        recorded = sorted(
            rule["name"]
            for group in rules
            for rule in group["rules"]
            if rule["type"] == "recording"
        )
        missing = [name for name in recorded if not query(client, prometheus, name)]
        assert not missing, f"recording rules without series: {missing}"

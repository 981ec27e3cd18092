"""Routing rules on the running stack: a rule file loads with the catalogue, a bad one is
refused with its line numbers while the policy in effect stays, `gridline routes test`
explains against the stack, and an order opened under the rules shows why in its history.
The session's catalogue (without rules) is put back afterwards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
import yaml

from gridline.operator.cli import main as gridline

from .conftest import no_merging
from .stack import Stack, wait_until
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "rules.yaml"
BAD = """\
rules:
  - name: everything
    set: {calendar: office}
  - name: waterlogging
    match: {category: waterlogging, colour: blue}
    set: {call_in: dept-nowhere}
"""


def test_rule_file_loads_refuses_bad_files_by_line_and_explains_routes(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["GRIDLINE_ROUTING_URL"] = stack.url("routing")
    creds = str(stack.workdir / "credentials.json")
    admin = {"authorization": f"Bearer {stack.credentials['admin_key']}"}
    catalogue = no_merging(stack.workdir)
    bad = stack.workdir / "bad-rules.yaml"
    bad.write_text(BAD, encoding="utf-8")
    grid_unit, _ = stack.handler_key("grid")
    lat, lon = grid_point(stack, grid_unit)
    with httpx.Client(timeout=10) as client:
        policy = f"{stack.url('routing')}/admin/policy"
        try:
            load = ["catalogue", "load", str(catalogue), "--credentials", creds]
            assert gridline([*load, "--rules", str(RULES)]) == 0
            with_rules = client.get(policy, headers=admin).json()

            # Refused by routing itself (not only by the command): 422, the same list.
            # As JSON travels: YAML's dates (calendars' holidays) as ISO strings.
            doc = json.loads(
                json.dumps(yaml.safe_load(catalogue.read_text(encoding="utf-8")), default=str)
            )
            refused = client.put(
                f"{stack.url('routing')}/admin/catalogue",
                json={**doc, "rules": {"name": "bad-rules.yaml", "text": BAD}},
                headers=admin,
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["detail"]["problems"] == [
                "bad-rules.yaml:5: unknown key 'colour' in match (allowed: category, district,"
                " flags, grid_kind, labels, severity, source, street, time)",
                "bad-rules.yaml:6: unknown department 'dept-nowhere' in call_in",
            ]
            capsys.readouterr()
            assert gridline([*load, "--rules", str(bad)]) == 1
            assert "bad-rules.yaml:6: unknown department 'dept-nowhere'" in capsys.readouterr().err
            assert client.get(policy, headers=admin).json() == with_rules

            assert gridline(["routes", "check", str(bad)]) == 1
            assert gridline(["routes", "check", str(RULES)]) == 0

            capsys.readouterr()
            assert (
                gridline(
                    [
                        "routes",
                        "test",
                        "--category",
                        "waterlogging",
                        "--lat",
                        str(lat),
                        "--long",
                        str(lon),
                        "--credentials",
                        creds,
                    ]
                )
                == 0
            )
            shown = capsys.readouterr().out
            assert f"grid: {grid_unit}" in shown
            assert "1. waterlogging (line " in shown
            assert "assignment: dept-water" in shown and "department tier" in shown

            created = stack.post_report(
                client, service_code="waterlogging", lat=lat, long=lon, description="积水 30cm"
            )
            assert created.status_code == 200, created.text
            order_id = created.json()[0]["service_request_id"]
            order = wait_until(
                lambda: (
                    (
                        r := client.get(
                            f"{stack.url('routing')}/v1/workorders/{order_id}", headers=admin
                        )
                    ).status_code
                    == 200
                    and r.json()["unit_id"] == "dept-water"
                    and r.json()
                ),
                what="the waterlogging order to be called in to the Water Authority",
            )
            assert (order["tier"], order["assignment_seq"]) == ("department", 2)
            opened, raised = order["history"][:2]
            why = opened["detail"]["routing"]
            assert [r["rule"] for r in why["rules"]] == ["waterlogging"]
            assert (why["grid"]["id"], why["policy_version"]) == (
                grid_unit,
                order["policy_version"],
            )
            assert raised["detail"]["reason"] == "rule"
        finally:
            assert gridline(["catalogue", "load", str(catalogue), "--credentials", creds]) == 0

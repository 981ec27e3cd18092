"""deploy/prometheus checked by Prometheus' own tool: the configuration and rules parse,
and the rules' unit tests (deploy/prometheus/tests, input series and expected alerts)
pass. promtool comes from Debian's prometheus package, installed here when missing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gridline.devstack import prometheus

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
DASHBOARDS = DEPLOY.parent / "grafana" / "dashboards"


@pytest.fixture(scope="module")
def promtool() -> str:
    prometheus.ensure_installed()
    return prometheus.PROMTOOL


def run(*argv: str) -> str:
    done = subprocess.run(argv, cwd=DEPLOY, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def test_config_and_rules_parse(promtool: str) -> None:
    out = run(promtool, "check", "config", "prometheus.yml")
    assert "2 rule files found" in out
    run(promtool, "check", "rules", *sorted(str(p) for p in (DEPLOY / "rules").glob("*.yml")))


def test_rules_unit_tests_pass(promtool: str) -> None:
    tests = sorted(str(p) for p in (DEPLOY / "tests").glob("*_test.yml"))
    assert len(tests) >= 2
    out = run(promtool, "test", "rules", *tests)
    assert "FAILED" not in out


def test_every_alert_has_a_unit_test_and_a_runbook_entry() -> None:
    import yaml

    alerts = {
        rule["alert"]
        for path in (DEPLOY / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for path in (DEPLOY / "tests").glob("*_test.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")  # shown firing, not only silent
    }
    assert alerts and alerts <= tested, f"alerts never shown firing: {sorted(alerts - tested)}"
    runbook = (DEPLOY.parents[1] / "docs" / "operations.md").read_text()
    missing = [a for a in sorted(alerts) if f"### {a}" not in runbook]
    assert not missing, f"docs/operations.md has no section for {missing}"


def test_config_follows_the_ports_and_intervals_it_is_given() -> None:
    ports = {"intake": 29800, "routing": 29801, "sla": 29802, "notify": 29803}
    text = prometheus.render_config(ports, interval="1s")
    for name, number in ports.items():
        assert (
            f'job_name: {name}\n    static_configs:\n      - targets: ["127.0.0.1:{number}"]'
            in text
        )
    assert "scrape_interval: 1s" in text and "evaluation_interval: 1s" in text
    assert f"- {DEPLOY / 'rules'}/*.yml" in text


def test_provisioned_dashboards_use_the_provisioned_datasource() -> None:
    provisioning = DASHBOARDS.parent / "provisioning"
    datasource = (provisioning / "datasources" / "gridline.yml").read_text()
    assert "uid: gridline-prometheus" in datasource
    titles = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        titles.append(dashboard["title"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "gridline-prometheus", path
            assert all(t["datasource"]["uid"] == "gridline-prometheus" for t in panel["targets"])
    assert len(titles) == 4 and len(set(titles)) == 4
    assert (provisioning / "dashboards" / "gridline.yml").exists()

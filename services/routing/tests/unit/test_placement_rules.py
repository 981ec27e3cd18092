"""Opening a work order under the demo rule file: call-in, moved up by a rule, limits kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridline.common.policy.catalogue import RuleFile, load_catalogue_text
from gridline.common.policy.tiers import Tier
from gridline.operator.citygen import generate_city
from gridline.routing.domain.jurisdiction import parse_jurisdiction
from gridline.routing.domain.placement import Report, explanation, open_for_report, order_limits
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import escalate

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[4]
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CATALOGUE = load_catalogue_text((REPO / "config" / "catalogue.yaml").read_text("utf-8"))
RULES = RuleFile(name="rules.yaml", text=(REPO / "config" / "rules.yaml").read_text("utf-8"))
WITH_RULES = load_catalogue_text(
    (REPO / "config" / "catalogue.yaml").read_text("utf-8")
).model.model_copy(update={"rules": RULES})
JURISDICTION = parse_jurisdiction(generate_city(1))
POLICY = Policy(JURISDICTION, type(CATALOGUE)(WITH_RULES))
PLAIN = Policy(JURISDICTION, CATALOGUE)
GRID = sorted(
    (g for g in JURISDICTION.grids.values() if g.grid_kind == "comprehensive"),
    key=lambda g: g.grid_id,
)[0]
POINT = GRID.geometry.representative_point()


def report(code: str, **kw: object) -> Report:
    return Report("wo1", "r1", code, kw.pop("source", "citizen"), POINT.y, POINT.x, **kw)  # type: ignore[arg-type]


def test_rules_are_part_of_the_catalogue_version() -> None:
    assert POLICY.version != PLAIN.version
    assert "rules" not in CATALOGUE.to_dict()  # a catalogue without rules keeps its hash


def test_waterlogging_calls_the_water_authority_in_at_once_moved_up_by_rule() -> None:
    opened = open_for_report(report("waterlogging"), POLICY, NOW)
    order = opened.order
    assert (order.tier, order.unit_id, order.department_id) == (
        Tier.DEPARTMENT,
        "dept-water",
        "dept-water",
    )
    assert opened.raised_from is not None and opened.raised_from.tier is Tier.STREET
    assert (order.assignment_seq, order.version) == (2, 2)
    assert [r.name for r in opened.decision.matched] == ["waterlogging"]
    why = explanation(opened, POLICY)
    assert why["rules"] == [
        {
            "rule": "waterlogging",
            "line": RULES.text.splitlines().index("  - name: waterlogging") + 1,
            "continue": False,
            "set": {"call_in": "dept-water"},
        }
    ]
    assert why["grid"] == {"id": GRID.grid_id, "name": GRID.grid_name, "kind": "comprehensive"}
    assert why["policy_version"] == POLICY.version


def test_without_rules_the_same_report_enters_at_the_category_tier() -> None:
    opened = open_for_report(report("waterlogging"), PLAIN, NOW)
    assert (opened.order.tier, opened.raised_from, opened.decision.matched) == (
        Tier.STREET,
        None,
        (),
    )


def test_gas_smell_label_co_handlers_and_rule_limits_stay_with_the_order() -> None:
    opened = open_for_report(report("exposed-garbage", labels=("gas-smell",)), POLICY, NOW)
    order = opened.order
    assert (order.unit_id, order.co_handlers) == ("dept-emergency", ("dept-fire",))
    assert order.due_at == NOW + timedelta(hours=1)
    assert order_limits(order, POLICY)[Tier.DEPARTMENT] == timedelta(hours=1)


def test_rule_limits_apply_on_escalation_too() -> None:
    light = open_for_report(report("streetlight-out"), POLICY, NOW + timedelta(hours=12))
    assert [r.name for r in light.decision.matched] == ["streetlight-out-after-dark"]
    up = escalate(
        light.order, time_limit=order_limits(light.order, POLICY), now=NOW + timedelta(hours=13)
    )
    assert up.due_at == NOW + timedelta(hours=13 + 8)  # the rule's community limit, not 16 h

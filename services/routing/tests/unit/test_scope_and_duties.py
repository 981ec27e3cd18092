"""Who may do what (every action allowed and denied, through the authorisation function,
so that the lifecycle's accept, return and call-in are covered before they are wired),
and the duty lists (N+X)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridline.common.policy.catalogue import CatalogueInvalid, parse_catalogue
from gridline.common.policy.tiers import Tier
from gridline.operator.citygen import generate_city
from gridline.routing.domain.duties import duty_refusal, resolver_duty_refusal
from gridline.routing.domain.jurisdiction import parse_jurisdiction
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.scope import Action, scope_refusal, triage_target_refusal
from gridline.routing.domain.workorder import CallIn, Place, State, WorkOrder
from gridline.routing.moves import report_in_limit

pytestmark = pytest.mark.unit

DOC: dict[str, Any] = yaml.safe_load(
    (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text("utf-8")
)
JURISDICTION = parse_jurisdiction(generate_city(1, districts=2))
POLICY = Policy(JURISDICTION, parse_catalogue(DOC))
GRIDS = sorted(JURISDICTION.grids.values(), key=lambda g: g.grid_id)
GRID = next(g for g in GRIDS if g.grid_kind != "special")
OTHER = next(g for g in GRIDS if g.street_id != GRID.street_id and g.grid_kind != "special")
OTHER_DISTRICT = next(g for g in GRIDS if g.district_id != GRID.district_id)
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ORDER = WorkOrder(
    id="wo1",
    report_id="r1",
    category="exposed-garbage",
    department_id="dept-urban-management",
    source="citizen",
    lat=0.0,
    lon=0.0,
    place=Place(GRID.grid_id, GRID.community_id, GRID.street_id, GRID.district_id),
    state=State.OPEN,
    tier=Tier.GRID,
    unit_id=GRID.grid_id,
    assignment_seq=1,
    assigned_at=AT,
    due_at=AT,
    opened_at=AT,
    resolved_at=None,
    version=1,
    policy_version=POLICY.version,
)


ACTS = [Action.ACCEPT, Action.RESOLVE, Action.ESCALATE, Action.RETURN, Action.CALL_IN]


@pytest.mark.parametrize("action", list(Action))
def test_every_action_is_allowed_to_the_holder_and_the_units_above_it(action: Action) -> None:
    for unit in (GRID.grid_id, GRID.community_id, GRID.street_id, GRID.district_id):
        assert scope_refusal(action, unit, ORDER, POLICY) is None


@pytest.mark.parametrize("action", list(Action))
def test_every_action_is_denied_to_a_unit_of_another_subtree(action: Action) -> None:
    for unit in (OTHER.grid_id, OTHER.street_id, OTHER_DISTRICT.district_id):
        refusal = scope_refusal(action, unit, ORDER, POLICY)
        assert refusal is not None and "outside that unit's subtree" in refusal


@pytest.mark.parametrize("action", ACTS)
def test_the_admin_key_holds_no_tier_and_cannot_act(action: Action) -> None:
    assert scope_refusal(action, None, ORDER, POLICY) is not None


@pytest.mark.parametrize("action", [Action.READ, Action.LIST, Action.TRIAGE])
def test_the_admin_key_reads_lists_and_triages(action: Action) -> None:
    assert scope_refusal(action, None, ORDER, POLICY) is None


@pytest.mark.parametrize("action", ACTS)
def test_a_department_acts_on_what_it_holds_or_was_called_into(action: Action) -> None:
    held = replace(ORDER, tier=Tier.DEPARTMENT, unit_id="dept-urban-management")
    assert scope_refusal(action, "dept-urban-management", held, POLICY) is None
    call = CallIn(1, "dept-water", GRID.street_id, ORDER.assigned_at, ORDER.assigned_at)
    called = replace(ORDER, call_in=call)
    assert scope_refusal(action, "dept-water", called, POLICY) is None
    # Owning the category lets it look, not act; another department may not even look.
    assert scope_refusal(action, "dept-urban-management", ORDER, POLICY) is not None
    assert scope_refusal(action, "dept-water", ORDER, POLICY) is not None


def test_a_department_reads_the_orders_of_its_categories_and_never_triages() -> None:
    assert scope_refusal(Action.READ, "dept-urban-management", ORDER, POLICY) is None
    assert scope_refusal(Action.LIST, "dept-urban-management", ORDER, POLICY) is None
    assert scope_refusal(Action.READ, "dept-water", ORDER, POLICY) is not None
    assert scope_refusal(Action.TRIAGE, "dept-urban-management", ORDER, POLICY) is not None


def test_a_district_triages_only_into_its_own_grids() -> None:
    assert triage_target_refusal(GRID.district_id, GRID.grid_id, POLICY) is None
    refusal = triage_target_refusal(GRID.district_id, OTHER_DISTRICT.grid_id, POLICY)
    assert refusal is not None and OTHER_DISTRICT.district_id in refusal
    assert triage_target_refusal(None, OTHER_DISTRICT.grid_id, POLICY) is None


# -- duty lists ---------------------------------------------------------------------------


def with_duties(duties: dict[str, Any]) -> Policy:
    return Policy(JURISDICTION, parse_catalogue({**copy.deepcopy(DOC), "duty_lists": duties}))


def test_no_duty_lists_let_every_tier_resolve_every_category() -> None:
    assert POLICY.catalogue.duty_lists is None
    assert resolver_duty_refusal(POLICY, POLICY, GRID.grid_id, ORDER) is None
    # And a catalogue without them keeps the version hash it had before they existed.
    assert "duty_lists" not in POLICY.catalogue.to_dict()


def test_the_resolvers_own_tier_and_its_local_lists_decide() -> None:
    policy = with_duties(
        {
            "city": {"grid": ["dirty-road"], "street": ["dirty-road"]},
            "local": [{"unit": GRID.community_id, "categories": ["exposed-garbage"]}],
        }
    )
    # The grid is in the community with the local (X) list; the street is above it.
    assert resolver_duty_refusal(policy, policy, GRID.grid_id, ORDER) is None
    refusal = resolver_duty_refusal(policy, policy, GRID.street_id, ORDER)
    assert refusal == (
        "the street tier's duty list (N: 1 city-wide) does not include 'exposed-garbage':"
        " escalate or call a department in"
    )
    # The department tier is not listed: unrestricted; a district holds no tier.
    assert resolver_duty_refusal(policy, policy, "dept-urban-management", ORDER) is None
    assert resolver_duty_refusal(policy, policy, GRID.district_id, ORDER) is None


def test_the_refusal_counts_n_and_each_x_that_applies() -> None:
    policy = with_duties(
        {
            "city": {"grid": ["dirty-road", "damaged-bin"]},
            "local": [
                {"unit": GRID.street_id, "categories": ["piled-materials", "streetlight-out"]}
            ],
        }
    )
    lineage = [(GRID.grid_id, "grid"), (GRID.community_id, "community"), (GRID.street_id, "street")]
    refusal = duty_refusal(policy.catalogue.duty_lists, Tier.GRID, "illegal-construction", lineage)
    assert refusal == (
        f"the grid tier's duty list (N: 2 city-wide + X: 2 for street {GRID.street_id}) does"
        " not include 'illegal-construction': escalate or call a department in"
    )


def test_duty_lists_naming_unknown_categories_are_refused_with_their_paths() -> None:
    with pytest.raises(CatalogueInvalid) as caught:
        parse_catalogue(
            {
                **DOC,
                "duty_lists": {
                    "city": {"grid": ["no-such"], "moon": ["dirty-road"]},
                    "local": [
                        {"unit": "s1", "categories": ["also-unknown"]},
                        {"unit": "s1", "categories": ["dirty-road"]},
                    ],
                },
            }
        )
    problems = caught.value.problems
    assert "duty_lists.city.grid: unknown category 'no-such'" in problems
    assert "duty_lists.local[0].categories: unknown category 'also-unknown'" in problems
    assert "duty_lists.local[1].unit: 's1' is listed twice (also duty_lists.local[0])" in problems
    assert any(p.startswith("duty_lists.city.moon") for p in problems)


def test_a_departments_report_in_limit_comes_from_the_catalogue() -> None:
    assert report_in_limit(POLICY, "dept-fire") == timedelta(minutes=30)  # report_in_hours: 0.5
    assert report_in_limit(POLICY, "dept-water") == timedelta(hours=2)  # none given: 2 h

"""Where a new report's work order goes under a policy, and a person's triage choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from gridline.common.policy.catalogue import load_catalogue_text, parse_catalogue
from gridline.common.policy.tiers import Tier
from gridline.operator.citygen import generate_city
from gridline.routing.domain.authority import units_in_view
from gridline.routing.domain.jurisdiction import parse_jurisdiction
from gridline.routing.domain.placement import (
    Report,
    open_for_report,
    order_limits,
    place_in_grid,
)
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import State, TransitionRefused, escalate

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CITY = generate_city(1)
POLICY = Policy(
    parse_jurisdiction(CITY),
    load_catalogue_text(
        (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text("utf-8")
    ),
)
GRID = sorted(POLICY.jurisdiction.grids.values(), key=lambda g: g.grid_id)[-1]
POINT = GRID.geometry.representative_point()
GAP = CITY["gridline:gaps"][0]


def report(service_code: str = "exposed-garbage", at: tuple[float, float] | None = None) -> Report:
    lon, lat = at or (POINT.x, POINT.y)
    return Report("wo1", "r1", service_code, "citizen", lat, lon)


def test_report_in_a_grid_opens_at_its_category_entry_tier() -> None:
    opened = open_for_report(report(), POLICY, NOW)
    assert opened.triage_reason is None
    assert (opened.order.state, opened.order.tier, opened.order.unit_id) == (
        State.OPEN,
        Tier.GRID,
        GRID.grid_id,
    )
    # 1 working day (7.5 h on the demo's office calendar) from Monday 17:00 in Shanghai:
    # half an hour on Monday, 7 h on Tuesday → Tuesday 17:00.
    assert opened.order.due_at == datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    assert opened.order.policy_version == POLICY.version


def test_category_gone_from_the_catalogue_is_held_at_the_district_with_the_reason() -> None:
    opened = open_for_report(report("no-such-category"), POLICY, NOW)
    assert (opened.order.state, opened.order.unit_id) == (State.TRIAGE, GRID.district_id)
    assert opened.order.place.grid_id is None
    assert opened.triage_reason is not None and "'no-such-category'" in opened.triage_reason


def test_report_in_no_grid_is_held_at_its_district() -> None:
    opened = open_for_report(report(at=(GAP[0], GAP[1])), POLICY, NOW)
    assert (opened.order.state, opened.order.unit_id) == (State.TRIAGE, "320402")
    assert opened.triage_reason == "the location lies inside the city but in no grid"


def test_triage_into_an_unknown_grid_or_category_is_refused() -> None:
    held = open_for_report(report(at=(GAP[0], GAP[1])), POLICY, NOW).order
    with pytest.raises(TransitionRefused, match="not in jurisdiction"):
        place_in_grid(held, POLICY, grid_id="nope", service_code=None, now=NOW)
    with pytest.raises(TransitionRefused, match="not in the catalogue"):
        place_in_grid(held, POLICY, grid_id=GRID.grid_id, service_code="nope", now=NOW)
    placed = place_in_grid(held, POLICY, grid_id=GRID.grid_id, service_code=None, now=NOW)
    assert (placed.state, placed.unit_id, placed.assignment_seq) == (State.OPEN, GRID.grid_id, 2)


def test_a_key_sees_its_unit_and_everything_below_a_department_only_itself() -> None:
    street = GRID.street_id
    assert {street, GRID.community_id, GRID.grid_id} <= set(units_in_view(street, POLICY))
    assert GRID.grid_id not in units_in_view(sorted(POLICY.catalogue.departments_by_id)[0], POLICY)


def test_a_category_on_a_calendar_is_due_after_working_hours_and_so_are_its_escalations() -> None:
    # The demo catalogue counts exposed garbage on `office` (08:30-12:00, 13:30-17:30,
    # Monday to Friday).
    policy = POLICY
    assert policy.catalogue.category("exposed-garbage").calendar == "office"
    friday_4pm = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai
    opened = open_for_report(report(), policy, friday_4pm)
    # 7.5 working hours: 1.5 h on Friday, 6 h on Monday (3.5 + 2.5) → Monday 16:00 Shanghai.
    assert opened.order.due_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    up = escalate(opened.order, time_limit=order_limits(opened.order, policy), now=friday_4pm)
    limit = policy.catalogue.time_limit("exposed-garbage", Tier.COMMUNITY)
    assert up.due_at == policy.catalogue.model.calendars["office"].add(
        friday_4pm, limit, "Asia/Shanghai"
    )
    assert up.due_at != friday_4pm + limit  # not clock hours
    # Without the calendar, clock hours as before.
    doc = yaml.safe_load(
        (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text("utf-8")
    )
    for category in doc["categories"]:
        if category["code"] == "exposed-garbage":
            del category["calendar"]
    clock = Policy(POLICY.jurisdiction, parse_catalogue(doc))
    assert open_for_report(report(), clock, friday_4pm).order.due_at == friday_4pm + timedelta(
        hours=7.5
    )

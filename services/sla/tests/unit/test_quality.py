"""The measurement's pure arithmetic beyond attainment: percentile buckets, flow and tier
changes, and the assessment's scores and ranks."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.common.policy.tiers import Tier
from gridline.sla.domain import assessment, percentiles
from gridline.sla.domain.assessment import UnitTally, check_ranking, rank, units_of
from gridline.sla.domain.flows import Flow, Place, TierTally, flow_changes, quality, tier_changes
from gridline.sla.domain.measures import Counted, MeasureProblem, scopes_of

pytestmark = pytest.mark.unit

HOUR = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)
PLACE = Place("g1", "c1", "s1", "d1")


@given(
    st.lists(st.floats(min_value=1, max_value=3e6), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_a_percentile_is_within_one_bucket_of_the_exact_one(times: list[float], q: float) -> None:
    counts = percentiles.dense({})
    for t in times:
        counts[percentiles.bucket_of(t)] += 1
    estimate = percentiles.percentile(counts, q)
    exact = sorted(times)[math.ceil(q * len(times)) - 1]  # the order statistic of rank q·n
    i = percentiles.bucket_of(exact)
    low = percentiles.BOUNDS[i - 1] if i else 0.0
    assert estimate is not None
    assert low <= estimate <= percentiles.BOUNDS[i]  # so within 2^(1/8) of it past a minute


def test_an_empty_histogram_has_no_percentile() -> None:
    assert percentiles.percentiles(percentiles.dense({})) == {"p50": None, "p90": None, "p99": None}


def test_a_replaced_resolution_leaves_its_tier_row_as_it_was() -> None:
    first = Counted(
        scopes_of("g1", "c1", "s1", "d1"), "garbage", DAY, Tier.GRID, True, 7200.0, HOUR
    )
    added = tier_changes([first], [])
    assert added[("grid:g1", "*", DAY, "grid")].resolved == 1
    assert tier_changes([first], [first]) == {}


def test_flows_count_in_every_scope_and_give_rates_of_nothing_as_none() -> None:
    moved = flow_changes([(PLACE, "garbage", DAY, Flow(opened=1, timeout=1))])
    assert len(moved) == 10  # five scopes, the category and all categories
    q = quality(Flow(), {})
    assert q.escalation_rate == {"timeout": None, "whistle": None, "rule": None}
    assert q.rework_rate is None and q.mean_satisfaction is None
    q = quality(Flow(opened=4, whistle=1), {"grid": TierTally(resolved=2, reopened=1)})
    assert (q.escalation_rate["whistle"], q.rework_rate) == (0.25, 0.5)


def test_units_stand_in_their_parents_rankings() -> None:
    assert units_of(PLACE, Tier.GRID) == [("street:s1", "grid", "grid:g1")]
    assert units_of(PLACE, Tier.STREET) == [("district:d1", "street", "street:s1")]
    assert units_of(PLACE, Tier.DEPARTMENT, "water") == [
        ("city", "department", "department:water"),
        ("district:d1", "department", "department:water"),
    ]
    assert units_of(Place(None, None, None, None), Tier.GRID) == []


def test_ranking_orders_by_score_then_completions_and_shares_ties() -> None:
    ranked = rank(
        "grid",
        {
            "grid:a": UnitTally(discovered=2, completed=4, timed=4, on_time=4),
            "grid:b": UnitTally(discovered=2, completed=4, timed=4, on_time=4),
            "grid:c": UnitTally(discovered=1, completed=2, timed=2, on_time=1, reopened=1),
        },
    )
    assert [(a.unit, a.rank, a.score) for a in ranked] == [
        ("grid:a", 1, 100.0),
        ("grid:b", 1, 100.0),
        ("grid:c", 3, 30 + 10 + 10),
    ]


def test_a_ranking_of_the_wrong_level_is_refused() -> None:
    check_ranking("district:d1", "street")
    with pytest.raises(MeasureProblem, match="level:"):
        check_ranking("grid:g1", "grid")


def test_known_units_find_their_street_or_district_by_walking_up_the_places() -> None:
    places = [
        {"id": "g1", "level": "grid", "parent_id": "c1"},
        {"id": "g2", "level": "grid", "parent_id": "c-missing"},
        {"id": "g3", "level": "grid"},  # an older event's place: no parent
        {"id": "c1", "level": "community", "parent_id": "s1"},
        {"id": "s1", "level": "street", "parent_id": "d1"},
    ]
    assert assessment.known_units(places) == [
        assessment.KnownUnit("community", "c1", street="s1"),
        assessment.KnownUnit("grid", "g1", street="s1"),
        assessment.KnownUnit("street", "s1", district="d1"),
    ]

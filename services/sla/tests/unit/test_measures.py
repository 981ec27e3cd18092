"""The incremental tallies' arithmetic: what each resolution adds and takes back, and the
figures a sum of tallies gives."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.common.policy.tiers import Tier
from gridline.sla.domain.measures import (
    ALL_CATEGORIES,
    Counted,
    MeasureProblem,
    Tally,
    changes,
    check_scope,
    figures,
    hourly_changes,
    scopes_of,
    window_days,
)

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 20)
HOUR = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
TARGETS = {"grid": 0.7, "community": 0.8, "street": 0.95}


def counted(tier: Tier, on_time: bool | None = True, grid: str = "g1", day: date = DAY) -> Counted:
    return Counted(scopes_of(grid, "c1", "s1", "d1"), "garbage", day, tier, on_time, 3600.0, HOUR)


def test_metrics_hours_count_in_the_scopes_metrics_labels_only() -> None:
    moved = hourly_changes([counted(Tier.GRID), counted(Tier.STREET, grid="g2")], [])
    assert set(moved) == {(HOUR, "city"), (HOUR, "district:d1"), (HOUR, "street:s1")}
    assert moved[(HOUR, "city")].at_grid == 1 and moved[(HOUR, "city")].at_street == 1
    # A replaced resolution's hour is taken back; nothing left moves no row.
    assert hourly_changes([counted(Tier.GRID)], [counted(Tier.GRID)]) == {}


def test_a_resolution_counts_in_every_scope_of_its_place_for_its_category_and_all() -> None:
    moved = changes([counted(Tier.COMMUNITY, on_time=False)], [])
    scopes = {"city", "district:d1", "street:s1", "community:c1", "grid:g1"}
    assert set(moved) == {(s, c, DAY) for s in scopes for c in ("garbage", ALL_CATEGORIES)}
    assert set(moved.values()) == {Tally(at_community=1, timed=1, on_time=0, seconds=3600.0)}


def test_a_point_outside_every_grid_counts_in_the_city_and_what_it_knows() -> None:
    assert scopes_of(None, None, None, "d9") == ("city", "district:d9")
    assert scopes_of(None, None, None, None) == ("city",)


def test_a_later_resolution_of_a_reopened_order_replaces_the_earlier_one() -> None:
    first = counted(Tier.GRID, on_time=True)
    again = counted(Tier.STREET, on_time=False, grid="g2", day=date(2026, 11, 21))
    total: dict[tuple[str, str, date], Tally] = {}
    for key, change in [*changes([first], []).items(), *changes([again], [first]).items()]:
        total[key] = total.get(key, Tally()) + change
    city = Tally()
    for (scope, category, _), t in total.items():
        if scope == "city" and category == ALL_CATEGORIES:
            city = city + t
    assert city == Tally(at_street=1, timed=1, on_time=0, seconds=3600.0)
    assert total[("grid:g1", "garbage", DAY)] == Tally()  # taken back out
    assert total[("grid:g2", "garbage", date(2026, 11, 21))].at_street == 1


def test_unchanged_rows_are_left_out() -> None:
    same = counted(Tier.GRID)
    assert changes([same], [same]) == {}


def test_figures_are_the_contracts_tier_attainment_and_the_on_time_share() -> None:
    total = Tally(
        at_grid=7,
        at_community=1,
        at_street=1,
        at_department=1,
        timed=8,
        on_time=6,
        seconds=10 * 7200.0,
    )
    f = figures(total, TARGETS)
    assert f.resolved == 10
    assert f.attainment == {"grid": 0.7, "community": 0.8, "street": 0.9}
    assert f.on_time_rate == 0.75  # of the eight whose due time is known
    assert f.mean_hours_to_resolve == 2.0
    assert f.targets == TARGETS


def test_nothing_resolved_gives_no_shares_rather_than_zero() -> None:
    f = figures(Tally(), TARGETS)
    assert f.resolved == 0
    assert f.attainment == {"grid": None, "community": None, "street": None}
    assert f.on_time_rate is None and f.mean_hours_to_resolve is None


@given(st.lists(st.tuples(st.sampled_from(list(Tier)), st.booleans()), max_size=30))
def test_attainment_never_falls_with_a_higher_tier(resolutions: list[tuple[Tier, bool]]) -> None:
    total = Tally()
    for tier, on_time in resolutions:
        for change in changes([counted(tier, on_time)], []).values():
            total = total + change
            break  # one scope's row is enough
    shares = figures(total, TARGETS).attainment
    if resolutions:
        assert shares["grid"] <= shares["community"] <= shares["street"] <= 1.0  # type: ignore[operator]


def test_windows_are_whole_local_days_and_months_are_calendar_months() -> None:
    assert window_days(DAY, "1d", None) == (DAY, DAY)
    assert window_days(DAY, "7d", None) == (date(2026, 11, 14), DAY)
    assert window_days(DAY, None, None) == (date(2026, 10, 22), DAY)  # 30d by default
    assert window_days(DAY, None, "2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert window_days(DAY, None, "2026-12") == (date(2026, 12, 1), date(2026, 12, 31))


@pytest.mark.parametrize(
    ("window", "month", "says"),
    [
        ("2d", None, "window: one of 1d, 7d, 30d"),
        (None, "2026-13", "month: YYYY-MM"),
        ("7d", "2026-11", "not both"),
    ],
)
def test_a_question_that_cannot_be_answered_says_what_to_write(
    window: str | None, month: str | None, says: str
) -> None:
    with pytest.raises(MeasureProblem, match=says):
        window_days(DAY, window, month)


def test_scopes_are_checked() -> None:
    """A unit's id is the jurisdiction's own text: Chinese, "/", ":" and inner spaces are
    ids like any other; spaces at its ends (the loads strip them) and control characters
    are not."""
    for good in (
        "street:320402001",
        "street:天宁街道",
        "community:c:β",
        "street:SP/Sé/Bela Vista",
        "grid:g 3",
        "grid:" + "x" * 100,
        "city",
    ):
        assert check_scope(good) == good
    for bad in (
        "town:1",
        "street:",
        "street: 1",
        "street:1 ",
        "street:a\nb",
        "grid",
        "grid:" + "x" * 101,
    ):
        with pytest.raises(MeasureProblem, match="scope:"):
            check_scope(bad)

"""Tier attainment arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.tiers import Tier
from gridline.sla.config import SlaSettings
from gridline.sla.domain.attainment import attainment
from gridline.sla.domain.measures import Tally

pytestmark = pytest.mark.unit

TIERS = {
    Tier.GRID: "at_grid",
    Tier.COMMUNITY: "at_community",
    Tier.STREET: "at_street",
    Tier.DEPARTMENT: "at_department",
}


def tallies(counts: list[tuple[str | None, str | None, Tier, int]]) -> dict[str, Tally]:
    """Per scope, the sum of (district, street, resolver's tier, how many) resolutions."""
    out: dict[str, Tally] = {}
    for district, street, tier, n in counts:
        one = Tally(**{TIERS[tier]: n})
        scopes = ["city", *([f"district:{district}"] if district else [])]
        scopes += [f"street:{street}"] if street else []
        for scope in scopes:
            out[scope] = out.get(scope, Tally()) + one
    return out


def ratios(
    counts: list[tuple[str | None, str | None, Tier, int]],
) -> dict[tuple[str, str, str], float]:
    return {(a.scope_level, a.scope_id, a.tier.value): a.ratio for a in attainment(tallies(counts))}


def test_share_resolved_at_a_tier_or_below_per_street_district_and_city() -> None:
    counts = [
        ("d1", "s1", Tier.GRID, 7),
        ("d1", "s1", Tier.COMMUNITY, 1),
        ("d1", "s1", Tier.STREET, 1),
        ("d1", "s1", Tier.DEPARTMENT, 1),
        ("d1", "s2", Tier.COMMUNITY, 10),
    ]
    r = ratios(counts)
    assert r[("street", "s1", "grid")] == pytest.approx(0.7)
    assert r[("street", "s1", "community")] == pytest.approx(0.8)
    assert r[("street", "s1", "street")] == pytest.approx(0.9)
    assert r[("street", "s2", "grid")] == 0.0
    assert r[("street", "s2", "community")] == 1.0
    assert r[("city", "city", "grid")] == pytest.approx(7 / 20)
    assert r[("district", "d1", "street")] == pytest.approx(19 / 20)


def test_scopes_without_resolutions_have_no_figure() -> None:
    assert attainment({}) == []
    assert attainment({"street:s9": Tally()}) == []
    assert ("street", "s9", "grid") not in ratios([("d1", "s1", Tier.GRID, 1)])


def test_orders_without_a_street_count_for_the_city_only() -> None:
    r = ratios([(None, None, Tier.STREET, 2), ("d1", "s1", Tier.GRID, 2)])
    assert r[("city", "city", "grid")] == 0.5
    assert r[("street", "s1", "grid")] == 1.0


counts_strategy = st.lists(
    st.tuples(
        st.sampled_from(["d1", "d2", None]),
        st.sampled_from(["s1", "s2", "s3", None]),
        st.sampled_from(list(Tier)),
        st.integers(0, 50),
    ),
    max_size=30,
)


@given(counts_strategy)
def test_attainment_is_a_share_and_grows_with_the_tier(
    counts: list[tuple[str | None, str | None, Tier, int]],
) -> None:
    r = ratios(counts)
    for (level, scope, tier), value in r.items():
        assert 0.0 <= value <= 1.0
        if tier == "grid":
            assert value <= r[(level, scope, "community")] <= r[(level, scope, "street")]


def test_resolution_buckets_sit_at_the_demo_catalogues_time_limits() -> None:
    text = (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text("utf-8")
    catalogue = load_catalogue_text(text)
    default = SlaSettings.model_fields["resolution_buckets_hours"].default
    # Clock-hour limits only: a limit in working hours on a calendar (exposed garbage's
    # 7.5 h = 1 working day) is no fixed span of clock time, so no bucket bound can sit at it.
    clock_hours = {
        h * 3600
        for c in catalogue.categories
        if c.calendar is None
        for h in c.time_limits_hours.values()
    }
    assert [float(h) * 3600 for h in default.split(",")] == sorted(clock_hours)
    assert set(catalogue.all_time_limits_seconds()) > clock_hours  # the calendars' own

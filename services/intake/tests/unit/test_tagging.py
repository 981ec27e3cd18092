"""Tagging: the category read off Chinese and English texts with a confidence, triage below
the threshold, severity and flags from the catalogue's rules, duplicates linked in a batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridline.common.policy.catalogue import Catalogue, load_catalogue_text
from gridline.intake.domain import duplicates
from gridline.intake.domain.tagging import confidence_of, inferred_category, tag

pytestmark = pytest.mark.unit

CATALOGUE = load_catalogue_text(
    (Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml").read_text("utf-8")
)


def with_tagging(**changes: object) -> Catalogue:
    doc = CATALOGUE.to_dict()
    doc["tagging"] = {**doc["tagging"], **changes}
    from gridline.common.policy.catalogue import parse_catalogue

    return parse_catalogue(doc)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("路灯不亮了，晚上很黑", "streetlight-out"),
        ("小区门口的垃圾桶坏了", "damaged-bin"),  # 垃圾桶 whole: not exposed garbage
        ("路边垃圾堆了三天没人管", "exposed-garbage"),
        ("楼道里有人给电瓶车飞线充电", "ebike-charging-corridor"),
        ("There is RUBBISH and litter all over the pavement", "exposed-garbage"),
        ("Manhole cover missing on Qinglong Road", "broken-manhole-cover"),
        ("The fire exit of block 3 is blocked by bikes", "blocked-fire-exit"),
        ("Two dustbins are broken", "damaged-bin"),  # plural reads as the keyword
    ],
)
def test_category_is_inferred_from_chinese_and_english_text(text: str, code: str) -> None:
    tags = tag(CATALOGUE, text, None)
    assert tags.category_source == "inferred"
    assert inferred_category(tags) == code
    assert not tags.needs_triage
    assert tags.confidence >= CATALOGUE.tagging.threshold


def test_text_without_any_keyword_needs_triage_with_no_candidates() -> None:
    tags = tag(CATALOGUE, "something smells strange here 有点奇怪", None)
    assert tags.needs_triage and tags.confidence == 0 and tags.candidates == []
    assert inferred_category(tags) is None


def test_evidence_split_between_categories_goes_to_triage_with_the_top_candidates() -> None:
    # noise and a neighbour dispute, said equally: no category is clear enough.
    tags = tag(CATALOGUE, "noise from the neighbour", None)
    assert tags.needs_triage
    assert set(tags.candidates) == {"noise-nuisance", "neighbour-dispute"}
    assert tags.confidence < CATALOGUE.tagging.threshold


def test_threshold_decides_triage() -> None:
    text = "garbage"  # one keyword: confidence 1 * 1/1.5
    assert not tag(with_tagging(threshold=0.6), text, None).needs_triage
    assert tag(with_tagging(threshold=0.7), text, None).needs_triage


def test_candidates_are_capped_by_the_catalogue() -> None:
    text = "垃圾 路灯 井盖 噪音 积水"
    assert len(tag(CATALOGUE, text, None).candidates) == 3
    assert len(tag(with_tagging(candidates=2), text, None).candidates) == 2


def test_client_service_code_is_kept_and_still_gets_severity_and_flags() -> None:
    tags = tag(
        CATALOGUE, "电线裸露在外，楼里住着独居老人", "exposed-garbage", [" a ", "b", "a", ""]
    )
    assert tags.category_source == "client" and tags.confidence == 1 and not tags.needs_triage
    assert tags.candidates == []
    assert tags.flags == ["safety_hazard", "vulnerable_person"]
    assert tags.severity == "urgent"
    assert tags.labels == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "severity", "flags"),
    [
        ("路边有垃圾", "normal", []),
        ("I smell gas in the stairwell", "urgent", ["safety_hazard"]),
        ("An elderly man living alone has no light", "urgent", ["vulnerable_person"]),
        ("积水很深，有小孩被困", "critical", ["danger_to_life", "vulnerable_person"]),
        ("Exposed wires and children play here", "urgent", ["safety_hazard", "vulnerable_person"]),
    ],
)
def test_rules_set_flags_and_the_highest_severity(
    text: str, severity: str, flags: list[str]
) -> None:
    tags = tag(CATALOGUE, text, "exposed-garbage")
    assert tags.severity == severity
    assert tags.flags == flags


@given(st.lists(st.floats(min_value=0, max_value=50), max_size=8))
def test_confidence_lies_in_zero_one_and_is_zero_without_evidence(scores: list[float]) -> None:
    c = confidence_of(scores)
    assert 0 <= c <= 1
    if sum(scores) == 0:
        assert c == 0


@given(st.floats(min_value=1, max_value=20), st.floats(min_value=0.1, max_value=20))
def test_more_evidence_for_the_best_raises_confidence(best: float, extra: float) -> None:
    assert confidence_of([best + extra, 1.0]) >= confidence_of([best, 1.0]) - 1e-4


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_any_text_tags_without_error(text: str) -> None:
    tags = tag(CATALOGUE, text, None)
    assert tags.needs_triage == (tags.confidence < CATALOGUE.tagging.threshold)
    assert len(tags.candidates) <= CATALOGUE.tagging.candidates


AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LAT, LON = 31.78, 119.95
NORTH_50M = 50 / duplicates.METRES_PER_DEGREE


def report(
    order: str, code: str = "exposed-garbage", dlat: float = 0.0, minutes: int = 0
) -> duplicates.NewReport:
    return duplicates.NewReport(order, code, LAT + dlat, LON, AT + timedelta(minutes=minutes))


def test_distance_and_box_agree() -> None:
    assert duplicates.distance_m(LAT, LON, LAT + NORTH_50M, LON) == pytest.approx(50, abs=0.01)
    dlat, dlon = duplicates.box(LAT, 250)
    assert duplicates.distance_m(LAT, LON, LAT + dlat, LON) == pytest.approx(250, abs=0.1)
    assert duplicates.distance_m(LAT, LON, LAT, LON + dlon) == pytest.approx(250, abs=0.5)


def test_second_duplicate_in_a_batch_joins_the_first_and_a_stored_order_wins() -> None:
    batch = [
        report("a"),
        report("b", dlat=NORTH_50M),  # 50 m away: joins a
        report("c", dlat=NORTH_50M * 10),  # 500 m away: its own order
        report("d", code="damaged-bin"),  # another category: its own order
        report("e", dlat=2 * NORTH_50M, minutes=10),  # joins a (via the first)
        report("f", minutes=60 * 80),  # beyond the 72 h window: its own order
    ]
    none = duplicates.Stored(None, False)
    joins = duplicates.link(batch, [none] * 6, radius_m=250, window=timedelta(hours=72))
    assert joins == [None, "a", None, None, "a", None]
    stored = [duplicates.Stored("old", False), *[none] * 5]
    joins = duplicates.link(batch, stored, radius_m=250, window=timedelta(hours=72))
    assert joins == ["old", "old", None, None, "old", None]

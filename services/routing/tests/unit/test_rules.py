"""Routing rules as data: parsing with line numbers, validation, evaluation, explanation."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.common.policy.catalogue import load_catalogue_text
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.rules import Facts, Window
from gridline.routing.domain.rules_file import RulesInvalid, parse_rules

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[4]
CATALOGUE = load_catalogue_text((REPO / "config" / "catalogue.yaml").read_text("utf-8"))
# 10:00 in Shanghai (the catalogue's time zone); 23:30 Shanghai is 15:30 UTC.
MORNING = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)


def rules(text: str, catalogue: bool = True):  # type: ignore[no-untyped-def]
    return parse_rules(
        textwrap.dedent(text), file="t.yaml", catalogue=CATALOGUE if catalogue else None
    )


def problems(text: str, catalogue: bool = True) -> list[str]:
    with pytest.raises(RulesInvalid) as exc:
        rules(text, catalogue)
    return [str(p) for p in exc.value.problems]


def facts(category: str = "exposed-garbage", at: datetime = MORNING, **kw: object) -> Facts:
    return Facts(category=category, at=at, **kw)  # type: ignore[arg-type]


def test_the_demo_rule_file_is_valid_and_has_thirty_rules_or_more() -> None:
    demo = parse_rules(
        (REPO / "config" / "rules.yaml").read_text("utf-8"), file="rules.yaml", catalogue=CATALOGUE
    )
    assert len(demo) >= 30


def test_unknown_keys_categories_departments_are_reported_with_their_lines() -> None:
    found = problems(
        """\
        rules:
          - name: a
            match:
              category: no-such-thing
              colour: red
            set:
              call_in: dept-nowhere
          - name: b
            sett: {entry_tier: street}
        """
    )
    assert found == [
        "line 4: unknown category 'no-such-thing': no catalogue category matches it",
        "line 5: unknown key 'colour' in match (allowed: category, district, flags, grid_kind,"
        " labels, severity, source, street, time)",
        "line 7: unknown department 'dept-nowhere' in call_in",
        "line 9: unknown key 'sett' in rule 2 (allowed: continue, description, match, name, set)",
    ]


def test_rule_after_a_catch_all_that_stops_is_unreachable() -> None:
    found = problems(
        """\
        rules:
          - name: everything
            set: {calendar: office}
          - name: never
            match: {category: waterlogging}
            set: {call_in: dept-water}
        """
    )
    assert found == [
        "line 4: rule 'never' is unreachable: a catch-all that does not continue,"
        " 'everything' (line 2)"
    ]


def test_rule_shadowed_by_a_broader_stopping_rule_is_unreachable_but_not_after_continue() -> None:
    shadowed = """\
        rules:
          - name: broad
            match: {category: "illegal-*"}
            set: {entry_tier: street}
          - name: narrow
            match: {category: illegal-parking, severity: urgent}
            set: {entry_tier: street}
        """
    assert problems(shadowed) == [
        "line 5: rule 'narrow' is unreachable: an earlier rule that matches all it matches"
        " and does not continue, 'broad' (line 2)"
    ]
    assert (
        len(rules(shadowed.replace("set: {entry_tier: street}\n  ", "continue: true\n  ", 1))) == 2
    )
    # narrower first is fine: the broad rule catches the rest
    lines = textwrap.dedent(shadowed).splitlines()
    assert len(rules("\n".join([lines[0], *lines[4:], *lines[1:4]]))) == 2


def test_tiers_out_of_order_and_bad_windows_are_refused() -> None:
    found = problems(
        """\
        rules:
          - name: below-entry
            match: {category: exposed-garbage}
            set: {entry_tier: street, time_limits_hours: {grid: 2, street: 4}}
          - name: shrinking
            match: {category: dirty-road}
            set: {time_limits_hours: {community: 8, street: 4}}
          - name: entry-without-limits
            match: {category: waterlogging}
            set: {entry_tier: grid}
          - name: call-in-below
            match: {category: road-collapse}
            set: {call_in: dept-water, entry_tier: grid}
          - name: window
            match: {time: "25:00-06:00"}
          - name: empty-window
            match: {time: "06:00-06:00"}
        """
    )
    assert found == [
        "line 4: time limits for grid, below the rule's entry tier street",
        "line 7: time limits shrink going up: street 4 h < community 8 h",
        "line 10: entry tier grid for category waterlogging, which has no time limit for grid,"
        " community; give time_limits_hours for them",
        "line 13: call_in assigns at the department tier; entry_tier grid contradicts it",
        "line 15: time window '25:00-06:00' must read HH:MM-HH:MM (e.g. 22:00-06:00)",
        "line 17: time window '06:00-06:00' is empty (start equals end)",
    ]


def test_bad_yaml_is_reported_with_its_line() -> None:
    assert problems("rules:\n  - name: a\n    match: {category: [a\n")[0].startswith("line 4:")


def test_without_a_catalogue_names_are_not_checked_but_shapes_are() -> None:
    assert len(rules("rules:\n  - name: a\n    match: {category: made-up}\n", catalogue=False)) == 1
    assert problems("rules:\n  - name: a\n    set: {entry_tier: top}\n", catalogue=False) == [
        "line 3: entry_tier 'top' is not a tier (grid, community, street, department)"
    ]


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        (
            "category: [waterlogging, 'road-*']",
            {"category": "road-collapse"},
            {"category": "dirty-road"},
        ),
        (
            "flags: [safety_hazard, danger_to_life]",
            {"flags": frozenset({"safety_hazard", "danger_to_life", "x"})},
            {"flags": frozenset({"safety_hazard"})},
        ),
        ("labels: gas-smell", {"labels": frozenset({"gas-smell"})}, {"labels": frozenset()}),
        ("severity: [urgent, critical]", {"severity": "critical"}, {"severity": "normal"}),
        ("source: sensor", {"source": "sensor"}, {"source": "citizen"}),
        ("grid_kind: special", {"grid_kind": "special"}, {"grid_kind": "comprehensive"}),
        ("street: ['320402001']", {"street_id": "320402001"}, {"street_id": "320402002"}),
        ("district: '320402'", {"district_id": "320402"}, {"district_id": None}),
        ("time: '22:00-06:00'", {"at": NIGHT}, {"at": MORNING}),
    ],
)
def test_each_matcher_matches_what_it_names_and_nothing_else(
    match: str, hit: dict[str, object], miss: dict[str, object]
) -> None:
    ruleset = rules(f"rules:\n  - name: r\n    match: {{{match}}}\n    set: {{calendar: office}}\n")
    base = {"category": "road-collapse"} if "category" not in hit else {}
    assert [r.name for r in ruleset.evaluate(facts(**{**base, **hit})).matched] == ["r"]
    assert ruleset.evaluate(facts(**{**base, **miss})).matched == ()


def test_first_match_stops_and_continue_goes_on_with_later_settings_winning() -> None:
    ruleset = rules(
        """\
        rules:
          - name: note
            match: {category: waterlogging}
            set: {co_handlers: [dept-emergency], time_limits_hours: {department: 3}}
            continue: true
          - name: urgent
            match: {category: waterlogging, severity: urgent}
            set: {call_in: dept-water, co_handlers: [dept-fire], time_limits_hours: {department: 2}}
          - name: any-waterlogging
            match: {category: waterlogging}
            set: {entry_tier: street}
        """
    )
    urgent = ruleset.evaluate(facts("waterlogging", severity="urgent"))
    assert [r.name for r in urgent.matched] == ["note", "urgent"]
    assert (urgent.entry_tier, urgent.call_in) == (Tier.DEPARTMENT, "dept-water")
    assert urgent.co_handlers == ("dept-emergency", "dept-fire")
    assert urgent.time_limits_hours == {Tier.DEPARTMENT: 2.0}
    normal = ruleset.evaluate(facts("waterlogging"))
    assert [r.name for r in normal.matched] == ["note", "any-waterlogging"]
    assert (normal.entry_tier, normal.call_in) == (Tier.STREET, None)
    assert ruleset.evaluate(facts("dirty-road")).matched == ()


def test_explanation_names_each_rule_with_its_line_and_what_it_set() -> None:
    ruleset = rules(
        """\
        rules:
          - name: gas
            match: {labels: [gas-smell]}
            set: {call_in: dept-emergency, calendar: round-the-clock}
        """
    )
    assert ruleset.evaluate(facts(labels=frozenset({"gas-smell"}))).explain() == [
        {
            "rule": "gas",
            "line": 2,
            "continue": False,
            "set": {"call_in": "dept-emergency", "calendar": "round-the-clock"},
        }
    ]


@given(st.integers(0, 1439), st.integers(0, 1439), st.integers(0, 1439))
def test_a_window_across_midnight_is_the_complement_of_its_reverse(
    start: int, end: int, minute: int
) -> None:
    if start == end:
        return
    assert Window(start, end).contains(minute) != Window(end, start).contains(minute)

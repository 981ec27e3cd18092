"""Routing rules as data: matchers and actions, their evaluation against a report's facts,
and the explanation of a decision.

A rule file (docs/routing-rules.md) is parsed and validated by `rules_file.parse_rules`;
this module holds what the parse produces and evaluates it. Rules are tried in order; the
first match stops unless it says `continue: true` (as Alertmanager's `continue`). Every
matcher is compiled once per policy version (category globs expanded against the
catalogue, lists as frozensets), so an evaluation is a few set look-ups per rule.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from gridline.common.policy.tiers import Tier

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Window:
    """A time of day from `start` (inclusive) to `end` (exclusive), in minutes after local
    midnight; `start > end` crosses midnight (22:00-06:00)."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def minutes(self) -> frozenset[int]:
        return frozenset(m for m in range(MINUTES_PER_DAY) if self.contains(m))

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class Match:
    """What a report must have for a rule to match; None (or empty for tags) matches all.
    Lists are any-of, except `flags` and `labels`: every listed tag must be present."""

    categories: tuple[str, ...] | None = None  # codes or globs (fnmatch)
    flags: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    severities: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    grid_kinds: frozenset[str] | None = None
    streets: frozenset[str] | None = None
    districts: frozenset[str] | None = None
    windows: tuple[Window, ...] | None = None

    @property
    def is_catch_all(self) -> bool:
        return self == Match()


@dataclass(frozen=True)
class Actions:
    """What a matching rule sets. `call_in` assigns the order at the department tier to that
    department at once; `calendar` names the catalogue calendar its limits count on."""

    entry_tier: Tier | None = None
    call_in: str | None = None
    co_handlers: tuple[str, ...] = ()
    time_limits_hours: dict[Tier, float] = field(default_factory=dict)
    calendar: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.entry_tier is not None:
            out["entry_tier"] = self.entry_tier.value
        if self.call_in is not None:
            out["call_in"] = self.call_in
        if self.co_handlers:
            out["co_handlers"] = list(self.co_handlers)
        if self.time_limits_hours:
            out["time_limits_hours"] = {t.value: h for t, h in self.time_limits_hours.items()}
        if self.calendar is not None:
            out["calendar"] = self.calendar
        return out


@dataclass(frozen=True)
class Rule:
    name: str
    line: int  # where the rule starts in its file, for problems and explanations
    match: Match
    actions: Actions
    continues: bool = False


@dataclass(frozen=True)
class Facts:
    """What the rules may look at in a report: its category, tags, source, place and time."""

    category: str
    at: datetime  # aware; matched against windows in the catalogue's time zone
    flags: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    severity: str = "normal"
    source: str = "citizen"
    grid_kind: str | None = None
    street_id: str | None = None
    district_id: str | None = None


@dataclass(frozen=True)
class Decision:
    """The rules that matched, in order, and what they set together: a later match (after a
    `continue`) overrides what an earlier one set; co-handlers accumulate; time limits merge
    tier by tier."""

    matched: tuple[Rule, ...] = ()
    entry_tier: Tier | None = None
    call_in: str | None = None
    co_handlers: tuple[str, ...] = ()
    time_limits_hours: dict[Tier, float] = field(default_factory=dict)
    calendar: str | None = None

    def explain(self) -> list[dict[str, object]]:
        """Each matched rule with its line and what it set: stored in the order's history."""
        return [
            {"rule": r.name, "line": r.line, "continue": r.continues, "set": r.actions.as_dict()}
            for r in self.matched
        ]


NO_RULES = Decision()


class _Compiled:
    """One rule's matcher in the cheapest form: concrete category codes as a frozenset
    (globs expanded against the catalogue), or a regex when no catalogue is known."""

    __slots__ = ("codes", "m", "pattern", "rule")

    def __init__(self, rule: Rule, catalogue_codes: frozenset[str] | None) -> None:
        self.rule = rule
        self.m = rule.match
        self.codes: frozenset[str] | None = None
        self.pattern: re.Pattern[str] | None = None
        cats = rule.match.categories
        if cats is not None:
            if catalogue_codes is not None:
                self.codes = expand_categories(cats, catalogue_codes)
            else:
                self.pattern = re.compile("|".join(fnmatch.translate(c) for c in cats))

    def matches(self, f: Facts, minute: int) -> bool:
        m = self.m
        if self.codes is not None and f.category not in self.codes:
            return False
        if self.pattern is not None and not self.pattern.match(f.category):
            return False
        if m.flags and not m.flags <= f.flags:
            return False
        if m.labels and not m.labels <= f.labels:
            return False
        if m.severities is not None and f.severity not in m.severities:
            return False
        if m.sources is not None and f.source not in m.sources:
            return False
        if m.grid_kinds is not None and f.grid_kind not in m.grid_kinds:
            return False
        if m.streets is not None and f.street_id not in m.streets:
            return False
        if m.districts is not None and f.district_id not in m.districts:
            return False
        return m.windows is None or any(w.contains(minute) for w in m.windows)


def expand_categories(patterns: tuple[str, ...], codes: frozenset[str]) -> frozenset[str]:
    """The catalogue's codes that any of `patterns` (codes or fnmatch globs) names."""
    return frozenset(c for c in codes if any(fnmatch.fnmatchcase(c, p) for p in patterns))


class RuleSet:
    """An ordered, validated rule file, compiled for evaluation in `timezone`."""

    def __init__(
        self,
        rules: list[Rule],
        *,
        file: str = "rules.yaml",
        timezone: str = "Asia/Shanghai",
        catalogue_codes: frozenset[str] | None = None,
    ) -> None:
        self.rules = list(rules)
        self.file = file
        self.zone = ZoneInfo(timezone)
        self._compiled = [_Compiled(r, catalogue_codes) for r in rules]

    def __len__(self) -> int:
        return len(self.rules)

    def evaluate(self, facts: Facts) -> Decision:
        if not self._compiled:
            return NO_RULES
        local = facts.at.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        matched: list[Rule] = []
        for c in self._compiled:
            if c.matches(facts, minute):
                matched.append(c.rule)
                if not c.rule.continues:
                    break
        return combine(matched)


EMPTY = RuleSet([])


def combine(matched: list[Rule]) -> Decision:
    """What the matched rules set together, in order (see Decision)."""
    if not matched:
        return NO_RULES
    entry: Tier | None = None
    call_in: str | None = None
    calendar: str | None = None
    co: list[str] = []
    limits: dict[Tier, float] = {}
    for r in matched:
        a = r.actions
        if a.call_in is not None:
            call_in, entry = a.call_in, Tier.DEPARTMENT
        elif a.entry_tier is not None:
            entry = a.entry_tier
            if entry is not Tier.DEPARTMENT:
                call_in = None  # a later rule sent it back below the department tier
        co.extend(d for d in a.co_handlers if d not in co)
        limits.update(a.time_limits_hours)
        calendar = a.calendar if a.calendar is not None else calendar
    return Decision(tuple(matched), entry, call_in, tuple(co), limits, calendar)

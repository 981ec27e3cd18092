"""The routing rule file: YAML read with its line marks, parsed into rules and validated
against the catalogue, each problem with the line it is on (docs/routing-rules.md).

Checks: unknown keys, categories, departments, tiers, severities, sources and grid kinds;
bad time windows; duplicate names; tiers out of order (time limits below the entry tier,
limits that shrink going up, an entry below the category's limits without limits of its
own); unreachable rules (after a stopping catch-all, or shadowed by an earlier stopping
rule whose matcher covers theirs).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import yaml

from gridline.common.events import ReportSource, Severity
from gridline.common.policy.catalogue import Catalogue
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.rules import Actions, Match, Rule, RuleSet, Window, expand_categories

SEVERITIES = frozenset(get_args(Severity))
SOURCES = frozenset(get_args(ReportSource))
GRID_KINDS = frozenset({"comprehensive", "special"})
TOP_KEYS = {"rules"}
RULE_KEYS = {"name", "description", "match", "set", "continue"}
MATCH_KEYS = {
    "category",
    "flags",
    "labels",
    "severity",
    "source",
    "grid_kind",
    "street",
    "district",
    "time",
}
SET_KEYS = {"entry_tier", "call_in", "co_handlers", "time_limits_hours", "calendar"}
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class RulesInvalid(ValueError):
    def __init__(self, file: str, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in {file}")
        self.file = file
        self.problems = sorted(problems, key=lambda p: p.line)

    def lines(self) -> list[str]:
        return [f"{self.file}:{p.line}: {p.message}" for p in self.problems]


class _Node:
    """A YAML value with the line it starts on (1-based)."""

    __slots__ = ("line", "value")

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


def _marked(text: str) -> _Node | None:
    """The document as _Nodes: mappings become dict[str, _Node], sequences list[_Node]."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()

        def walk(node: yaml.Node) -> _Node:
            line = node.start_mark.line + 1
            if isinstance(node, yaml.MappingNode):
                return _Node(
                    {str(loader.construct_object(k)): walk(v) for k, v in node.value}, line
                )
            if isinstance(node, yaml.SequenceNode):
                return _Node([walk(v) for v in node.value], line)
            return _Node(loader.construct_object(node), line)

        return None if root is None else walk(root)
    finally:
        loader.dispose()


def parse_rules(
    text: str, *, file: str = "rules.yaml", catalogue: Catalogue | None = None
) -> RuleSet:
    """Parse and validate a rule file; RulesInvalid lists every problem with its line.
    Without a catalogue, the checks that need one (names, per-category tiers) are skipped."""
    try:
        root = _marked(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise RulesInvalid(file, [Problem(line, f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise RulesInvalid(file, [Problem(1, f"not valid YAML: {exc}")]) from None
    problems: list[Problem] = []
    rules: list[Rule] = []
    if root is None or not isinstance(root.value, dict):
        raise RulesInvalid(file, [Problem(1, "the rule file must be a mapping with 'rules'")])
    _unknown(root, TOP_KEYS, "the rule file", problems)
    listed = root.value.get("rules")
    if listed is None or not isinstance(listed.value, list):
        line = listed.line if listed else root.line
        problems.append(Problem(line, "'rules' must be a list of rules"))
    else:
        names: dict[str, int] = {}
        for i, node in enumerate(listed.value):
            rule = _rule(node, i, catalogue, problems)
            if rule is None:
                continue
            if rule.name in names:
                problems.append(
                    Problem(
                        rule.line, f"duplicate rule name {rule.name!r} (line {names[rule.name]})"
                    )
                )
            names.setdefault(rule.name, rule.line)
            rules.append(rule)
        _reachability(rules, catalogue, problems)
    if problems:
        raise RulesInvalid(file, problems)
    return RuleSet(
        rules,
        file=file,
        timezone=catalogue.timezone if catalogue else "Asia/Shanghai",
        catalogue_codes=frozenset(catalogue.categories_by_code) if catalogue else None,
    )


def _unknown(node: _Node, allowed: set[str], what: str, problems: list[Problem]) -> None:
    for key, child in node.value.items():
        if key not in allowed:
            problems.append(
                Problem(
                    child.line,
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})",
                )
            )


def _strings(node: _Node, what: str, problems: list[Problem]) -> tuple[str, ...] | None:
    """A string or a list of strings (any other shape is a problem)."""
    items = node.value if isinstance(node.value, list) else [node]
    out: list[str] = []
    for item in items:
        if not isinstance(item.value, str) or not item.value:
            problems.append(Problem(item.line, f"{what} must be a string or a list of strings"))
            return None
        out.append(item.value)
    if not out:
        problems.append(Problem(node.line, f"{what} must not be an empty list"))
        return None
    return tuple(out)


def _rule(
    node: _Node, index: int, catalogue: Catalogue | None, problems: list[Problem]
) -> Rule | None:
    if not isinstance(node.value, dict):
        problems.append(Problem(node.line, f"rule {index + 1} must be a mapping"))
        return None
    before = len(problems)
    _unknown(node, RULE_KEYS, f"rule {index + 1}", problems)
    name_node = node.value.get("name")
    if name_node is None or not isinstance(name_node.value, str) or not name_node.value:
        problems.append(Problem(node.line, f"rule {index + 1} needs a name"))
        name = f"rule {index + 1}"
    else:
        name = name_node.value
    cont = node.value.get("continue")
    if cont is not None and not isinstance(cont.value, bool):
        problems.append(Problem(cont.line, "continue must be true or false"))
    match = _match(node.value.get("match"), catalogue, problems)
    actions = _actions(node.value.get("set"), catalogue, problems)
    if len(problems) > before:
        return None
    rule = Rule(name, node.line, match, actions, bool(cont.value) if cont else False)
    _tiers_in_order(rule, node, catalogue, problems)
    return rule


def _match(node: _Node | None, catalogue: Catalogue | None, problems: list[Problem]) -> Match:
    if node is None:
        return Match()
    if not isinstance(node.value, dict):
        problems.append(Problem(node.line, "match must be a mapping"))
        return Match()
    _unknown(node, MATCH_KEYS, "match", problems)
    fields: dict[str, Any] = {}
    v = node.value

    def members(key: str, allowed: frozenset[str] | None) -> frozenset[str] | None:
        if key not in v:
            return None
        got = _strings(v[key], key, problems)
        if got is None:
            return None
        bad = [g for g in got if allowed is not None and g not in allowed]
        if bad:
            problems.append(
                Problem(
                    v[key].line,
                    f"unknown {key} {', '.join(map(repr, bad))} (one of: {', '.join(sorted(allowed or ()))})",
                )
            )
        return frozenset(got)

    if "category" in v:
        cats = _strings(v["category"], "category", problems)
        if cats is not None and catalogue is not None:
            codes = frozenset(catalogue.categories_by_code)
            for c in cats:
                if not expand_categories((c,), codes):
                    problems.append(
                        Problem(
                            v["category"].line,
                            f"unknown category {c!r}: no catalogue category matches it",
                        )
                    )
        fields["categories"] = cats
    fields["flags"] = members("flags", None) or frozenset()
    fields["labels"] = members("labels", None) or frozenset()
    fields["severities"] = members("severity", SEVERITIES)
    fields["sources"] = members("source", SOURCES)
    fields["grid_kinds"] = members("grid_kind", GRID_KINDS)
    fields["streets"] = members("street", None)
    fields["districts"] = members("district", None)
    if "time" in v:
        fields["windows"] = _windows(v["time"], problems)
    return Match(**fields)


def _windows(node: _Node, problems: list[Problem]) -> tuple[Window, ...] | None:
    texts = _strings(node, "time", problems)
    if texts is None:
        return None
    out: list[Window] = []
    for t in texts:
        m = _TIME.match(t.replace(" ", ""))
        if m is None:
            problems.append(
                Problem(node.line, f"time window {t!r} must read HH:MM-HH:MM (e.g. 22:00-06:00)")
            )
            continue
        start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
        if start > 24 * 60 or end > 24 * 60:
            problems.append(Problem(node.line, f"time window {t!r}: 24:00 is the latest time"))
        elif start == end:
            problems.append(Problem(node.line, f"time window {t!r} is empty (start equals end)"))
        else:
            out.append(Window(start % (24 * 60), end % (24 * 60)))
    return tuple(out)


def _tier(node: _Node, what: str, problems: list[Problem]) -> Tier | None:
    try:
        return Tier(node.value)
    except ValueError:
        problems.append(
            Problem(
                node.line,
                f"{what} {node.value!r} is not a tier (grid, community, street, department)",
            )
        )
        return None


def _actions(node: _Node | None, catalogue: Catalogue | None, problems: list[Problem]) -> Actions:
    if node is None:
        return Actions()
    if not isinstance(node.value, dict):
        problems.append(Problem(node.line, "set must be a mapping"))
        return Actions()
    _unknown(node, SET_KEYS, "set", problems)
    v = node.value
    known = set(catalogue.departments_by_id) if catalogue else None

    def department(n: _Node, what: str) -> str | None:
        if not isinstance(n.value, str):
            problems.append(Problem(n.line, f"{what} must be a department id"))
            return None
        if known is not None and n.value not in known:
            problems.append(Problem(n.line, f"unknown department {n.value!r} in {what}"))
        return n.value

    entry = _tier(v["entry_tier"], "entry_tier", problems) if "entry_tier" in v else None
    call_in = department(v["call_in"], "call_in") if "call_in" in v else None
    co: list[str] = []
    if "co_handlers" in v:
        items = (
            v["co_handlers"].value
            if isinstance(v["co_handlers"].value, list)
            else [v["co_handlers"]]
        )
        co = [d for d in (department(i, "co_handlers") for i in items) if d is not None]
    limits: dict[Tier, float] = {}
    if "time_limits_hours" in v:
        ln = v["time_limits_hours"]
        if not isinstance(ln.value, dict):
            problems.append(Problem(ln.line, "time_limits_hours must map tiers to hours"))
        else:
            for key, hours in ln.value.items():
                tier = _tier(_Node(key, hours.line), "time_limits_hours key", problems)
                ok = isinstance(hours.value, int | float) and not isinstance(hours.value, bool)
                if not ok or not hours.value > 0:
                    problems.append(
                        Problem(hours.line, f"time limit for {key} must be positive hours")
                    )
                elif tier is not None:
                    limits[tier] = float(hours.value)
    calendar = None
    if "calendar" in v:
        if not isinstance(v["calendar"].value, str) or not v["calendar"].value:
            problems.append(Problem(v["calendar"].line, "calendar must be a calendar's name"))
        elif catalogue is not None and v["calendar"].value not in catalogue.model.calendars:
            defined = ", ".join(sorted(catalogue.model.calendars)) or "none defined"
            problems.append(
                Problem(
                    v["calendar"].line,
                    f"unknown calendar {v['calendar'].value!r} (the catalogue's: {defined})",
                )
            )
        else:
            calendar = v["calendar"].value
    return Actions(entry, call_in, tuple(co), limits, calendar)


def _tiers_in_order(
    rule: Rule, node: _Node, catalogue: Catalogue | None, problems: list[Problem]
) -> None:
    a = rule.actions
    line = node.value["set"].line if "set" in node.value else rule.line
    if a.call_in is not None and a.entry_tier not in (None, Tier.DEPARTMENT):
        problems.append(
            Problem(
                line,
                f"call_in assigns at the department tier; entry_tier {a.entry_tier} contradicts it",
            )
        )
        return
    entry = Tier.DEPARTMENT if a.call_in else a.entry_tier
    if entry is not None:
        below = [t.value for t in a.time_limits_hours if t.rank < entry.rank]
        if below:
            problems.append(
                Problem(
                    line,
                    f"time limits for {', '.join(below)}, below the rule's entry tier {entry.value}",
                )
            )
    ordered = sorted(a.time_limits_hours.items(), key=lambda th: th[0].rank)
    for (lo, h_lo), (hi, h_hi) in itertools.pairwise(ordered):
        if h_hi < h_lo:
            problems.append(
                Problem(
                    line,
                    f"time limits shrink going up: {hi.value} {h_hi:g} h < {lo.value} {h_lo:g} h",
                )
            )
    if catalogue is None or entry is None or entry is Tier.DEPARTMENT:
        return
    cats = rule.match.categories
    codes = (
        expand_categories(cats, frozenset(catalogue.categories_by_code))
        if cats is not None
        else frozenset(catalogue.categories_by_code)
    )
    for code in sorted(codes):
        have = set(catalogue.categories_by_code[code].time_limits_hours) | set(a.time_limits_hours)
        missing = [t.value for t in Tier if t.rank >= entry.rank and t not in have]
        if missing:
            problems.append(
                Problem(
                    line,
                    f"entry tier {entry.value} for category {code}, which has no time limit for {', '.join(missing)}; give time_limits_hours for them",
                )
            )


def _covers(a: Match, b: Match, expand: Callable[[tuple[str, ...]], frozenset[str]]) -> bool:
    """Whether every report `b` matches is matched by `a` too."""

    def superset(x: frozenset[str] | None, y: frozenset[str] | None) -> bool:
        return x is None or (y is not None and y <= x)

    cats_ok = (
        a.categories is None
        or "*" in a.categories
        or (b.categories is not None and expand(b.categories) <= expand(a.categories))
    )
    windows_ok = a.windows is None or (
        b.windows is not None
        and frozenset().union(*(w.minutes() for w in b.windows))
        <= frozenset().union(*(w.minutes() for w in a.windows))
    )
    return (
        cats_ok
        and windows_ok
        and a.flags <= b.flags
        and a.labels <= b.labels
        and superset(a.severities, b.severities)
        and superset(a.sources, b.sources)
        and superset(a.grid_kinds, b.grid_kinds)
        and superset(a.streets, b.streets)
        and superset(a.districts, b.districts)
    )


def _reachability(rules: list[Rule], catalogue: Catalogue | None, problems: list[Problem]) -> None:
    if catalogue is not None:
        codes = frozenset(catalogue.categories_by_code)

        def expand(p: tuple[str, ...]) -> frozenset[str]:
            return expand_categories(p, codes)
    else:

        def expand(p: tuple[str, ...]) -> frozenset[str]:
            return frozenset(p)  # without a catalogue, globs compare as written

    for j, later in enumerate(rules):
        for earlier in rules[:j]:
            if earlier.continues or not _covers(earlier.match, later.match, expand):
                continue
            why = (
                "a catch-all that does not continue"
                if earlier.match.is_catch_all
                else "an earlier rule that matches all it matches and does not continue"
            )
            problems.append(
                Problem(
                    later.line,
                    f"rule {later.name!r} is unreachable: {why}, {earlier.name!r} (line {earlier.line})",
                )
            )
            break

"""Routing's hot path alone: point-to-grid look-ups in a Changzhou-sized city (7,151 grids)
and rule evaluations with the demo rule file, as medians of rounds, one thread.

    .venv/bin/python bench/routing_micro.py                       # print the section
    .venv/bin/python bench/routing_micro.py --append docs/benchmarks.md

`make bench` runs it after the end-to-end figures and replaces its own section of
docs/benchmarks.md (between the routing-micro markers), leaving the rest as written.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from page import replace_section, stamp

from gridline.common.events import ReportSource
from gridline.common.policy.catalogue import Catalogue, RuleFile, load_catalogue_text
from gridline.operator.citygen import PRESETS, generate_city
from gridline.routing.domain.jurisdiction import parse_jurisdiction
from gridline.routing.domain.placement import Report, open_for_report
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.rules import Facts

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- routing-micro:start -->", "<!-- routing-micro:end -->"
FLAGS = ["safety_hazard", "danger_to_life", "vulnerable_person", "repeated_complaint"]


def rounds(fn: Callable[[], int], n: int) -> list[float]:
    """Operations per second of each round."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        ops = fn()
        out.append(ops / (time.perf_counter() - started))
    return out


def measure(points: int, facts_n: int, n_rounds: int) -> dict[str, Any]:
    rng = random.Random(7)
    started = time.perf_counter()
    city = generate_city(1, **PRESETS["changzhou"])
    jurisdiction = parse_jurisdiction(city)
    built = time.perf_counter() - started
    lons = [c[0] for f in city["features"] for c in f["geometry"]["coordinates"][0]]
    lats = [c[1] for f in city["features"] for c in f["geometry"]["coordinates"][0]]
    box = (min(lons), min(lats), max(lons), max(lats))
    pts = [(rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])) for _ in range(points)]
    found = sum(jurisdiction.locate(x, y) is not None for x, y in pts)

    def lookups() -> int:
        for x, y in pts:
            jurisdiction.locate(x, y)
        return len(pts)

    def batched() -> int:  # as routing's consumer looks up a poll's reports
        for i in range(0, len(pts), 30):
            jurisdiction.locate_many(pts[i : i + 30])
        return len(pts)

    text = (REPO / "config" / "rules.yaml").read_text("utf-8")
    model = load_catalogue_text((REPO / "config" / "catalogue.yaml").read_text("utf-8")).model
    catalogue = Catalogue(
        model.model_copy(update={"rules": RuleFile(name="rules.yaml", text=text)})
    )
    policy = Policy(jurisdiction, catalogue)
    ruleset = policy.rules
    codes = sorted(catalogue.categories_by_code)
    grids = list(jurisdiction.grids.values())
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    facts = []
    for _ in range(facts_n):
        g = rng.choice(grids)
        facts.append(
            Facts(
                category=rng.choice(codes),
                at=t0 + timedelta(minutes=rng.randrange(24 * 60)),
                flags=frozenset(f for f in FLAGS if rng.random() < 0.1),
                labels=frozenset({"gas-smell"}) if rng.random() < 0.01 else frozenset(),
                severity=rng.choice(["normal"] * 8 + ["urgent", "critical"]),
                source=rng.choice(get_args(ReportSource)),
                grid_kind=g.grid_kind,
                street_id=g.street_id,
                district_id=g.district_id,
            )
        )
    matched = sum(bool(ruleset.evaluate(f).matched) for f in facts)

    def evaluations() -> int:
        for f in facts:
            ruleset.evaluate(f)
        return len(facts)

    reports = [
        Report(f"wo{i}", f"r{i}", f.category, f.source, y, x, severity=f.severity)  # type: ignore[arg-type]
        for i, (f, (x, y)) in enumerate(zip(facts, pts, strict=False))
    ]

    def placements() -> int:
        for r in reports:
            open_for_report(r, policy, t0)
        return len(reports)

    return {
        "grids": len(jurisdiction.grids),
        "districts": len(jurisdiction.units_at("district")),
        "built_s": built,
        "points": len(pts),
        "found": found,
        "rules": len(ruleset),
        "facts": len(facts),
        "matched": matched,
        "lookups": rounds(lookups, n_rounds),
        "batched": rounds(batched, n_rounds),
        "evaluations": rounds(evaluations, n_rounds),
        "placements": rounds(placements, n_rounds),
    }


def _rate(per_s: list[float]) -> str:
    median = statistics.median(per_s)
    return f"{median:,.0f}/s ({1e6 / median:.1f} µs each) | {', '.join(f'{r:,.0f}' for r in per_s)}"


def section(m: dict[str, Any], command: str) -> str:
    return "\n".join(
        [
            START,
            "## Routing alone: point-to-grid look-ups and rule evaluation",
            "",
            f"Command: `{command}` (this section alone: `.venv/bin/python bench/routing_micro.py`),"
            f" {stamp()}. One Python thread, while nothing else of the bench runs;"
            f" medians of {len(m['lookups'])} rounds.",
            "",
            "| measure | median | each round (per second) |",
            "|---|---:|---|",
            f"| point → grid look-ups, Changzhou-sized city ({m['grids']:,} grids,"
            f" {m['districts']} districts), {m['points']:,} random points in its box"
            f" ({m['found'] / m['points']:.0%} inside a grid) | {_rate(m['lookups'])} |",
            f"| the same look-ups in batches of 30 (`locate_many`, one query of the index a"
            f" batch, as routing's consumer makes them) | {_rate(m['batched'])} |",
            f"| rule evaluations, config/rules.yaml ({m['rules']} rules), {m['facts']:,} random"
            f" reports ({m['matched'] / m['facts']:.0%} match a rule) | {_rate(m['evaluations'])} |",
            f"| a whole placement (look-up, rules, the opened order), same reports"
            f" | {_rate(m['placements'])} |",
            "",
            f"The city is `gridline city generate --preset changzhou` (built and validated in"
            f" {m['built_s']:.1f} s at routing's start or reload, off the event loop). Look-ups"
            " use the STR-tree of shapely 2; rules are compiled once per catalogue version"
            " (category globs expanded to sets), so an evaluation is a few set look-ups per"
            " rule until the first stopping match.",
            END,
            "",
        ]
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--points", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--append", help="replace (or add) this section in this Markdown file")
    p.add_argument("--command", default="make bench")
    args = p.parse_args()
    text = section(measure(args.points, args.points, args.rounds), args.command)
    if not args.append:
        print(text)
        return 0
    page = Path(args.append)
    replace_section(page, START, END, text.rstrip("\n"))
    print(f"routing figures written to {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

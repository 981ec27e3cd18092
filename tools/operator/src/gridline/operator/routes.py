"""`gridline routes check|test`: validate a routing rule file, and explain where a report
would go (offline on files, or against the running stack's policy in effect)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from gridline.common.events import ReportSource, Severity
from gridline.common.policy.catalogue import (
    Catalogue,
    CatalogueInvalid,
    load_catalogue_text,
    parse_catalogue,
)
from gridline.operator.cli import _admin_key, _fail, _read_json, _routing_url
from gridline.routing.domain.jurisdiction import JurisdictionInvalid, parse_jurisdiction
from gridline.routing.domain.placement import NotRoutable, Report, preview
from gridline.routing.domain.policy import Policy, rules_of
from gridline.routing.domain.rules_file import RulesInvalid, parse_rules

DEFAULT_CATALOGUE = "config/catalogue.yaml"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(_fail(f"{path}: no such file")) from None


def _catalogue(path: str) -> Catalogue:
    try:
        return load_catalogue_text(_read(path))
    except CatalogueInvalid as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        raise SystemExit(
            _fail(f"{path}: {len(exc.problems)} problem(s) in the catalogue")
        ) from None


def with_rules(doc: dict[str, Any], rules_path: str) -> dict[str, Any]:
    """The catalogue document with the rule file embedded, as routing stores and versions it."""
    return {**doc, "rules": {"name": Path(rules_path).name, "text": _read(rules_path)}}


def check_catalogue_rules(doc: dict[str, Any], label: str) -> int:
    """Validate a catalogue document with its embedded rules; 0 when both are valid."""
    try:
        catalogue = parse_catalogue(doc)
    except CatalogueInvalid as exc:
        for problem in exc.problems:
            print(f"{label}: {problem}", file=sys.stderr)
        return _fail(f"{len(exc.problems)} problem(s); nothing was loaded")
    try:
        ruleset = rules_of(catalogue)
    except RulesInvalid as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return _fail(f"{len(exc.problems)} problem(s) in the rule file; nothing was loaded")
    if catalogue.model.rules is not None:
        print(f"{catalogue.model.rules.name}: valid, {len(ruleset)} rules", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    text = _read(args.file)
    catalogue = None
    if args.catalogue or Path(DEFAULT_CATALOGUE).exists():
        catalogue = _catalogue(args.catalogue or DEFAULT_CATALOGUE)
    else:
        print(
            f"{args.file}: no catalogue ({DEFAULT_CATALOGUE} is missing; pass --catalogue):"
            " categories, departments and tiers per category are not checked",
            file=sys.stderr,
        )
    try:
        ruleset = parse_rules(text, file=args.file, catalogue=catalogue)
    except RulesInvalid as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return _fail(f"{len(exc.problems)} problem(s) in {args.file}; fix them and check again")
    print(f"{args.file}: valid, {len(ruleset)} rules")
    return 0


def _offline(args: argparse.Namespace, report: Report, at: datetime) -> dict[str, Any]:
    catalogue_path = args.catalogue or DEFAULT_CATALOGUE
    doc = yaml.safe_load(_read(catalogue_path))
    if args.rules:
        doc = with_rules(doc, args.rules)
    if check_catalogue_rules(doc, catalogue_path) != 0:
        raise SystemExit(1)
    try:
        jurisdiction = parse_jurisdiction(_read_json(args.city))
    except JurisdictionInvalid as exc:
        raise SystemExit(
            _fail(
                f"{args.city}: {len(exc.problems)} problem(s); validate it with"
                " gridline jurisdiction validate"
            )
        ) from None
    try:
        return preview(report, Policy(jurisdiction, parse_catalogue(doc)), at)
    except NotRoutable as exc:
        raise SystemExit(_fail(str(exc))) from None


def _online(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    key = _admin_key(args)
    if not key:
        raise SystemExit(
            _fail(
                "no admin key: pass --credentials .run/credentials.json or set GRIDLINE_ADMIN_KEY"
            )
        )
    url = _routing_url() + "/admin/routes/test"
    try:
        response = httpx.post(
            url, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
        )
    except httpx.HTTPError as exc:
        raise SystemExit(_fail(f"routing is not reachable at {url}: {exc}")) from None
    if response.status_code >= 400:
        try:
            detail = response.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = response.text
        raise SystemExit(_fail(f"{url} answered {response.status_code}: {detail}"))
    answer: dict[str, Any] = response.json()
    return answer


def cmd_test(args: argparse.Namespace) -> int:
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if at.tzinfo is None:
        return _fail(f"--at {args.at}: give a time zone offset, e.g. 2026-11-24T23:30+08:00")
    flags, labels = list(args.tag or []), list(args.label or [])
    if args.city:
        source: ReportSource = args.source
        severity: Severity = args.severity
        report = Report(
            "preview",
            "preview",
            args.category,
            source,
            args.lat,
            args.long,
            severity=severity,
            flags=tuple(flags),
            labels=tuple(labels),
        )
        result = _offline(args, report, at)
    else:
        body = {
            "category": args.category,
            "lat": args.lat,
            "long": args.long,
            "flags": flags,
            "labels": labels,
            "source": args.source,
            "severity": args.severity,
            "at": at.isoformat() if args.at else None,
        }
        result = _online(args, body)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(describe(result))
    return 0


def describe(r: dict[str, Any]) -> str:
    """The preview in words: the grid, the rules in order, and the assignment."""
    zone = ZoneInfo(r.get("time_zone") or "Asia/Shanghai")
    out = [f"policy {r['policy_version']} (rules: {r.get('rules_file') or 'none'})"]
    grid, place = r.get("grid"), r.get("place") or {}
    if grid:
        out.append(
            f"grid: {grid['id']} {grid['name']} ({grid['kind']}); community"
            f" {place.get('community_id')}, street {place.get('street_id')},"
            f" district {place.get('district_id')}"
        )
    else:
        out.append(f"grid: none found (district {place.get('district_id')})")
    rules = r.get("rules") or []
    if rules:
        out.append("rules matched, in order:")
        for i, rule in enumerate(rules, 1):
            sets = ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in rule["set"].items()
            )
            more = "; continues" if rule["continue"] else ""
            out.append(f"  {i}. {rule['rule']} (line {rule['line']}): {sets or 'nothing'}{more}")
    else:
        out.append(f"rules matched: none; the category's entry tier {r.get('category_entry_tier')}")
    if r["state"] == "triage":
        out.append(f"assignment: held for triage at {r['unit_id']}: {r.get('triage_reason')}")
        return "\n".join(out)
    due = datetime.fromisoformat(r["due_at"]).astimezone(zone) if r.get("due_at") else None
    out.append(
        f"assignment: {r['unit_id']} {r.get('unit_name') or ''} at the {r['tier']} tier,"
        f" due {due.isoformat(timespec='minutes') if due else '-'}"
    )
    if r.get("raised_from_tier"):
        out.append(
            f"  moved up at open from the {r['raised_from_tier']} tier by rule"
            " (escalation reason: rule)"
        )
    if r.get("co_handlers"):
        out.append(f"co-handlers: {', '.join(r['co_handlers'])}")
    if r.get("calendar"):
        out.append(f"calendar: {r['calendar']} (recorded; SLA calendars are not applied yet)")
    return "\n".join(out)


def add_parser(sub: Any) -> None:
    group = sub.add_parser(
        "routes", help="routing rules: check a rule file, explain where a report would go"
    ).add_subparsers(dest="command", required=True)
    check = group.add_parser("check", help="validate a rule file; problems with line numbers")
    check.add_argument("file")
    check.add_argument("--catalogue", help=f"the catalogue it routes (default {DEFAULT_CATALOGUE})")
    check.set_defaults(func=cmd_check)

    test = group.add_parser(
        "test",
        help="explain where a report would go: the rules matched, the grid, the assignment",
        description="Against the running stack's policy in effect (routing's POST"
        " /admin/routes/test), or offline on files when --city is given.",
    )
    test.add_argument("--category", required=True, help="the report's service_code")
    test.add_argument("--lat", type=float, required=True)
    test.add_argument("--long", type=float, required=True)
    test.add_argument("--tag", action="append", help="a flag intake would set (repeatable)")
    test.add_argument("--label", action="append", help="a client's free tag (repeatable)")
    test.add_argument(
        "--source",
        default="citizen",
        choices=["citizen", "partner", "grid_worker", "sensor", "hotline"],
    )
    test.add_argument("--severity", default="normal", choices=["normal", "urgent", "critical"])
    test.add_argument("--at", help="when it is reported, ISO 8601 with offset (default: now)")
    test.add_argument("--json", action="store_true", help="print the answer as JSON")
    test.add_argument("--city", help="offline: the jurisdiction GeoJSON file")
    test.add_argument("--catalogue", help=f"offline: the catalogue (default {DEFAULT_CATALOGUE})")
    test.add_argument("--rules", help="offline: the rule file (default: none)")
    test.add_argument(
        "--credentials", default=".run/credentials.json", help="file holding admin_key"
    )
    test.set_defaults(func=cmd_test)

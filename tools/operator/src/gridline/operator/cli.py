"""`gridline`: the operators' command line (city data, policy loading, credentials, topics)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from gridline.common.policy.catalogue import CatalogueInvalid, load_catalogue_text
from gridline.operator.citygen import PRESETS, generate_city
from gridline.routing.domain.jurisdiction import JurisdictionInvalid, parse_jurisdiction


def _fail(message: str) -> int:
    print(f"gridline: {message}", file=sys.stderr)
    return 1


def _routing_url() -> str:
    return os.environ.get("GRIDLINE_ROUTING_URL", "http://127.0.0.1:8001").rstrip("/")


def _admin_key(args: argparse.Namespace) -> str | None:
    if getattr(args, "credentials", None):
        path = Path(args.credentials)
        if path.exists():
            return str(json.loads(path.read_text())["admin_key"])
    return os.environ.get("GRIDLINE_ADMIN_KEY")


def _in_effect(args: argparse.Namespace, kind: str) -> str | None:
    """The version of `kind` routing has in effect (None when nothing is loaded yet)."""
    key = _admin_key(args)
    url = _routing_url() + "/admin/policy"
    try:
        response = httpx.get(url, headers={"authorization": f"Bearer {key}"}, timeout=30)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise SystemExit(_fail(f"could not read the policy in effect from {url}: {exc}")) from None
    version = response.json().get(kind)
    return str(version) if version else None


def _put(args: argparse.Namespace, path: str, body: Any, *, echo: bool = True) -> int:
    return _call(args, "PUT", path, body, echo=echo)


def _call(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: Any = None,
    *,
    echo: bool = True,
    params: dict[str, Any] | None = None,
) -> int:
    key = _admin_key(args)
    if not key:
        return _fail(
            "no admin key: pass --credentials .run/credentials.json or set GRIDLINE_ADMIN_KEY"
        )
    url = _routing_url() + path
    try:
        response = httpx.request(
            method,
            url,
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers={"authorization": f"Bearer {key}"},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        return _fail(f"routing is not reachable at {url}: {exc}")
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        return _fail(
            f"{url} answered {response.status_code}: {json.dumps(detail, ensure_ascii=False)}"
        )
    if echo:
        print(json.dumps(response.json(), ensure_ascii=False))
    return 0


# -- city ------------------------------------------------------------------------------


def cmd_city_generate(args: argparse.Namespace) -> int:
    options: dict[str, int] = dict(PRESETS[args.preset])
    for name in ("districts", "streets", "communities_per_street", "grids"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    city = generate_city(
        args.seed,
        districts=options["districts"],
        streets=options["streets"],
        communities_per_street=options["communities_per_street"],
        grids=options["grids"],
        special=options.get("special") if args.grids is None else None,
    )
    text = json.dumps(city, ensure_ascii=False, sort_keys=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {len(city['features'])} grids to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


# -- policy ----------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(_fail(f"{path}: no such file")) from None
    except json.JSONDecodeError as exc:
        raise SystemExit(_fail(f"{path}: not JSON: {exc}")) from None


def cmd_jurisdiction(args: argparse.Namespace) -> int:
    doc = _read_json(args.file)
    try:
        jurisdiction = parse_jurisdiction(doc)
    except JurisdictionInvalid as exc:
        for problem in exc.problems:
            where = f"feature {problem.index}" if problem.index is not None else "collection"
            ident = f" ({problem.feature_id})" if problem.feature_id else ""
            print(f"{args.file}: {where}{ident}: {problem.message}", file=sys.stderr)
        return _fail(f"{len(exc.problems)} problem(s); nothing was loaded")
    print(
        f"{args.file}: valid, {len(jurisdiction.grids)} grids, version {jurisdiction.version}",
        file=sys.stderr,
    )
    if args.command == "validate":
        return 0
    if args.if_none and (version := _in_effect(args, "jurisdiction")):
        print(f"jurisdiction {version} is in effect; kept it (--if-none)", file=sys.stderr)
        return 0
    return _put(args, "/admin/jurisdiction", doc)


def cmd_catalogue(args: argparse.Namespace) -> int:
    from gridline.operator.routes import check_catalogue_rules, with_rules

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return _fail(f"{args.file}: no such file")
    try:
        catalogue = load_catalogue_text(text)
    except CatalogueInvalid as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return _fail(f"{len(exc.problems)} problem(s); nothing was loaded")
    print(f"{args.file}: valid, {len(catalogue.categories)} categories", file=sys.stderr)
    # As JSON travels: YAML's dates (calendars' holidays) as ISO strings.
    doc = json.loads(json.dumps(yaml.safe_load(text), default=str))
    if args.rules:
        # One policy version covers the catalogue and its rules: routing stores them as one.
        doc = with_rules(doc, args.rules)
        if check_catalogue_rules(doc, args.file) != 0:
            return 1
    if args.command == "validate":
        return 0
    if args.if_none and (version := _in_effect(args, "catalogue")):
        print(f"catalogue {version} is in effect; kept it (--if-none)", file=sys.stderr)
        return 0
    return _put(args, "/admin/catalogue", doc)


# -- credentials -----------------------------------------------------------------------


def _pick_units(city: dict[str, Any], catalogue_file: str) -> dict[str, str]:
    """A grid, its community, its street, and the department of a grid-tier category."""
    jurisdiction = parse_jurisdiction(city)
    grid = next(g for g in jurisdiction.grids.values() if g.grid_kind == "comprehensive")
    catalogue = load_catalogue_text(Path(catalogue_file).read_text(encoding="utf-8"))
    department = catalogue.categories[0].department
    return {
        "grid": grid.grid_id,
        "community": grid.community_id,
        "street": grid.street_id,
        "department": department,
    }


def cmd_credentials_init(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        creds = _read_json(str(out))
        added = []
        if "partner_secret_key" not in creds:  # a file from before partners signed
            creds["partner_secret_key"] = secrets.token_urlsafe(32)
            creds.pop("partner_key", None)  # partners' keys come from the registry now
            added.append("partner_secret_key")
        if "sensor_key" not in creds:  # a file from before sensors reported
            creds["sensor_key"] = secrets.token_urlsafe(24)
            added.append("sensor_key")
        if added:
            out.write_text(json.dumps(creds, indent=2, ensure_ascii=False) + "\n")
            out.chmod(0o600)
            print(f"{out}: added {', '.join(added)}", file=sys.stderr)
        print(f"{out} exists; keeping it (use --force to replace)", file=sys.stderr)
        return 0
    units = _pick_units(_read_json(args.city), args.catalogue)
    creds = {
        "open311_api_key": secrets.token_urlsafe(24),
        "admin_key": secrets.token_urlsafe(32),
        "sensor_key": secrets.token_urlsafe(24),  # POST /v1/sensor-events
        # Partners' signing secrets derive from it (every service: intake verifies, notify
        # signs callbacks); the demo partner's key and secret are added once intake is up.
        "partner_secret_key": secrets.token_urlsafe(32),
        "webhook_secret": secrets.token_urlsafe(32),
        "handlers": {
            units[level]: secrets.token_urlsafe(24)
            for level in ("grid", "community", "street", "department")
        },
        "handler_units": units,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(creds, indent=2) + "\n")
    out.chmod(0o600)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_credentials_env(args: argparse.Namespace) -> int:
    """The services' environment that follows from the credentials file."""
    creds = _read_json(args.credentials)
    print(f"GRIDLINE_ADMIN_KEY={creds['admin_key']}")
    print(f"INTAKE_OPEN311_API_KEYS={creds['open311_api_key']}")
    if "sensor_key" in creds:
        print(f"INTAKE_SENSOR_KEYS={creds['sensor_key']}")
    print(f"GRIDLINE_PARTNER_SECRET_KEY={creds['partner_secret_key']}")
    print(f"NOTIFY_WEBHOOK_SECRET={creds['webhook_secret']}")
    return 0


def _bindings(keys: dict[str, str], expires_at: str | None = None) -> list[dict[str, Any]]:
    """unit -> key as routing stores them: only each key's SHA-256 leaves this machine."""
    return [
        {
            "unit_id": unit,
            "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "expires_at": expires_at,
        }
        for unit, key in keys.items()
    ]


def cmd_handler_keys_load(args: argparse.Namespace) -> int:
    creds = _read_json(args.credentials)
    body = {"keys": _bindings(creds["handlers"]), "skip_unknown": args.skip_unknown}
    return _put(args, "/admin/handler-keys", body)


def cmd_handler_keys_issue(args: argparse.Namespace) -> int:
    """New keys for units of the jurisdiction in effect: bound on routing first (which refuses
    unknown units), then added to the credentials file and printed once."""
    path = Path(args.credentials)
    if not path.exists():
        return _fail(f"{path} does not exist; run make up or gridline credentials init first")
    creds = _read_json(str(path))
    issued = {unit: secrets.token_urlsafe(24) for unit in dict.fromkeys(args.unit_ids)}
    expires_at = None
    if args.expires_in is not None:
        expires_at = (datetime.now(UTC) + timedelta(hours=args.expires_in)).isoformat()
    body = {"keys": _bindings(issued, expires_at)}
    code = _put(args, "/admin/handler-keys", body, echo=False)
    if code:
        return code
    creds.setdefault("handlers", {}).update(issued)
    path.write_text(json.dumps(creds, indent=2, ensure_ascii=False) + "\n")
    path.chmod(0o600)
    for unit, key in issued.items():
        print(f"{unit}\t{key}")
    until = f" (expires {expires_at})" if expires_at else ""
    print(f"added to {path}{until}", file=sys.stderr)
    return 0


def cmd_handler_keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key (given as the key itself) or every key of a unit (given as its id)."""
    handlers = {}
    if Path(args.credentials).exists():
        handlers = _read_json(args.credentials).get("handlers", {})
    target = args.key_or_unit
    if target in handlers.values() or (len(target) >= 32 and target not in handlers):
        body: dict[str, Any] = {"key_sha256": hashlib.sha256(target.encode()).hexdigest()}
    else:
        body = {"unit_id": target}
    body["reason"] = args.reason
    return _call(args, "POST", "/admin/handler-keys/revoke", body)


# -- policy versions -------------------------------------------------------------------


def cmd_policy_versions(args: argparse.Namespace) -> int:
    return _call(
        args,
        "GET",
        "/admin/policy/versions",
        params={"kind": args.kind, "limit": args.limit, "before_id": args.before_id},
    )


def cmd_policy_show(args: argparse.Namespace) -> int:
    return _call(args, "GET", f"/admin/policy/versions/{args.version_id}")


def cmd_policy_rollback(args: argparse.Namespace) -> int:
    return _call(args, "POST", f"/admin/policy/versions/{args.version_id}/rollback")


# -- kafka and docs --------------------------------------------------------------------


def cmd_topics_ensure(_: argparse.Namespace) -> int:
    from gridline.common.kafka import ensure_topics
    from gridline.common.settings import KafkaSettings
    from gridline.common.topics import ALL_TOPICS

    created = asyncio.run(ensure_topics(KafkaSettings(), ALL_TOPICS))
    print(f"topics created: {', '.join(created) or 'none (all exist)'}", file=sys.stderr)
    return 0


def cmd_docs_asyncapi(args: argparse.Namespace) -> int:
    from gridline.operator.asyncapi import asyncapi_yaml

    text = asyncapi_yaml()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridline", description=__doc__)
    sub = p.add_subparsers(dest="area", required=True)

    city = sub.add_parser("city", help="synthetic cities").add_subparsers(
        dest="command", required=True
    )
    gen = city.add_parser("generate", help="write a deterministic synthetic city as GeoJSON")
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    gen.add_argument("--districts", type=int)
    gen.add_argument("--streets", type=int)
    gen.add_argument("--communities-per-street", dest="communities_per_street", type=int)
    gen.add_argument("--grids", type=int)
    gen.add_argument("--out", help="file to write (default: standard output)")
    gen.set_defaults(func=cmd_city_generate)

    for area, func, what in (
        ("jurisdiction", cmd_jurisdiction, "a GeoJSON FeatureCollection of grids"),
        ("catalogue", cmd_catalogue, "a catalogue YAML file"),
    ):
        group = sub.add_parser(area, help=f"validate or load {what}").add_subparsers(
            dest="command", required=True
        )
        for command, text in (
            ("validate", "check only"),
            ("load", "check, then put into effect on the running stack"),
        ):
            c = group.add_parser(command, help=text)
            c.add_argument("file")
            c.add_argument(
                "--credentials", default=".run/credentials.json", help="file holding admin_key"
            )
            if area == "catalogue":
                c.add_argument(
                    "--rules",
                    help="a routing rule file (docs/routing-rules.md) to load with the"
                    " catalogue, as one policy version",
                )
            if command == "load":
                c.add_argument(
                    "--if-none",
                    action="store_true",
                    help=f"load only when no {area} is in effect yet (what make up does)",
                )
            c.set_defaults(func=func)

    creds = sub.add_parser("credentials", help="demo credentials").add_subparsers(
        dest="command", required=True
    )
    init = creds.add_parser("init", help="create the credentials file if missing")
    init.add_argument("--city", required=True)
    init.add_argument("--catalogue", required=True)
    init.add_argument("--out", default=".run/credentials.json")
    init.add_argument("--force", action="store_true")
    init.set_defaults(func=cmd_credentials_init)
    env = creds.add_parser("env", help="print the services' environment for the credentials")
    env.add_argument("--credentials", default=".run/credentials.json")
    env.set_defaults(func=cmd_credentials_env)

    hk = sub.add_parser("handler-keys", help="handler keys").add_subparsers(
        dest="command", required=True
    )
    load = hk.add_parser("load", help="bind the credentials file's handler keys to their units")
    load.add_argument("--credentials", default=".run/credentials.json")
    load.add_argument(
        "--skip-unknown",
        action="store_true",
        help="bind the keys of units in effect and skip the others (what make up does)",
    )
    load.set_defaults(func=cmd_handler_keys_load)
    issue = hk.add_parser(
        "issue", help="create keys for units (grids, communities, streets, departments)"
    )
    issue.add_argument("unit_ids", nargs="+", metavar="unit_id")
    issue.add_argument("--credentials", default=".run/credentials.json")
    issue.add_argument(
        "--expires-in",
        dest="expires_in",
        type=float,
        metavar="HOURS",
        help="the keys are refused this many hours from now (default: never)",
    )
    issue.set_defaults(func=cmd_handler_keys_issue)
    revoke = hk.add_parser(
        "revoke", help="revoke a key (the key itself) or every key of a unit (its id)"
    )
    revoke.add_argument("key_or_unit")
    revoke.add_argument("--reason", default="revoked by the admin")
    revoke.add_argument("--credentials", default=".run/credentials.json")
    revoke.set_defaults(func=cmd_handler_keys_revoke)

    pv = sub.add_parser("policy", help="policy versions and rollback").add_subparsers(
        dest="command", required=True
    )
    versions = pv.add_parser("versions", help="list the versions put into effect, newest first")
    versions.add_argument("--kind", choices=["jurisdiction", "catalogue"])
    versions.add_argument("--limit", type=int, default=50)
    versions.add_argument("--before-id", dest="before_id", type=int)
    versions.add_argument("--credentials", default=".run/credentials.json")
    versions.set_defaults(func=cmd_policy_versions)
    for name, func, text in (
        ("show", cmd_policy_show, "print one version with its document"),
        ("rollback", cmd_policy_rollback, "put an earlier version into effect again"),
    ):
        c = pv.add_parser(name, help=text)
        c.add_argument("version_id", type=int)
        c.add_argument("--credentials", default=".run/credentials.json")
        c.set_defaults(func=func)

    topics = sub.add_parser("topics", help="Kafka topics").add_subparsers(
        dest="command", required=True
    )
    topics.add_parser("ensure", help="create the stack's topics if missing").set_defaults(
        func=cmd_topics_ensure
    )

    from gridline.operator import partners, routes  # they use this module's helpers

    partners.add_parser(sub)
    routes.add_parser(sub)

    docs = sub.add_parser("docs", help="generated docs").add_subparsers(
        dest="command", required=True
    )
    aa = docs.add_parser("asyncapi", help="write the AsyncAPI document from the event models")
    aa.add_argument("--out")
    aa.set_defaults(func=cmd_docs_asyncapi)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

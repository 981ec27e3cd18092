"""`gridline partners ...`: register, list, rotate, revoke and change partners through
intake's admin API (GRIDLINE_INTAKE_URL), and the demo partner `make up` registers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from gridline.operator.cli import _admin_key, _fail

DEMO_PARTNER = "demo-riders"


def _intake_url() -> str:
    return os.environ.get("GRIDLINE_INTAKE_URL", "http://127.0.0.1:8000").rstrip("/")


class Failed(Exception):
    """A call that did not succeed, in words that say what to fix."""


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    key = _admin_key(args)
    if not key:
        raise Failed(
            "no admin key: pass --credentials .run/credentials.json or set GRIDLINE_ADMIN_KEY"
        )
    url = _intake_url() + path
    try:
        response = httpx.request(
            method, url, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
        )
    except httpx.HTTPError as exc:
        raise Failed(f"intake is not reachable at {url} (set GRIDLINE_INTAKE_URL): {exc}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise Failed(
            f"{method} {url} answered {response.status_code}:"
            f" {json.dumps(detail, ensure_ascii=False)}"
        )
    return response.json()


def _run(args: argparse.Namespace, method: str, path: str, body: Any = None) -> int:
    try:
        answer = _call(args, method, path, body)
    except Failed as exc:
        return _fail(str(exc))
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 0


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.rate is not None:
        body["rate_per_s"] = args.rate
    if args.burst is not None:
        body["burst"] = args.burst
    if args.callback_url is not None:
        body["callback_url"] = args.callback_url
    return body


def cmd_add(args: argparse.Namespace) -> int:
    """Prints the partner's id, key and signing secret: shown this once only."""
    code = _run(args, "POST", "/admin/partners", {"name": args.name, **_limits(args)})
    if code == 0:
        print("store the key and secret now: intake keeps neither", file=sys.stderr)
    return code


def cmd_list(args: argparse.Namespace) -> int:
    return _run(args, "GET", "/admin/partners")


def cmd_rotate(args: argparse.Namespace) -> int:
    body = {"overlap_hours": args.overlap_hours, "secret": args.secret}
    return _run(args, "POST", f"/admin/partners/{args.name}/rotate", body)


def cmd_revoke(args: argparse.Namespace) -> int:
    return _run(args, "POST", f"/admin/partners/{args.name}/revoke")


def cmd_set(args: argparse.Namespace) -> int:
    body = _limits(args)
    if args.no_callback:
        body["callback_url"] = None
    if not body:
        return _fail("nothing to change: give --rate, --burst, --callback-url or --no-callback")
    return _run(args, "PATCH", f"/admin/partners/{args.name}", body)


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo partner for `make up`, once: kept when the credentials file names a partner
    intake knows and holds active; else registered (or, when intake has one of that name
    but the file lost its key, given a new key and secret), and written to the file. One
    an operator revoked stays revoked (a revocation is final): nothing is registered or
    written, and `make up` goes on."""
    path = Path(args.credentials)
    if not path.exists():
        return _fail(f"{path} does not exist; run make up or gridline credentials init first")
    creds = json.loads(path.read_text())
    try:
        known = {p["partner_id"]: p for p in _call(args, "GET", "/admin/partners")}
        mine = known.get(creds.get("partner_id", ""))
        if mine and mine["active"] and creds.get("partner_key") and creds.get("partner_secret"):
            print(f"demo partner {mine['name']} ({mine['partner_id']}) kept", file=sys.stderr)
            return 0
        named = [p for p in known.values() if p["name"] == args.name]
        if named and not any(p["active"] for p in named):
            print(
                f"demo partner {args.name} was revoked, and a revocation is final: not"
                " registered again (gridline partners add registers another)",
                file=sys.stderr,
            )
            return 0
        if named:
            issued = _call(
                args,
                "POST",
                f"/admin/partners/{args.name}/rotate",
                {"overlap_hours": 0, "secret": True},
            )
        else:
            body = {"name": args.name, "rate_per_s": args.rate, "burst": args.burst}
            issued = _call(args, "POST", "/admin/partners", body)
    except Failed as exc:
        return _fail(str(exc))
    creds.update(
        partner_id=issued["partner_id"], partner_key=issued["key"], partner_secret=issued["secret"]
    )
    path.write_text(json.dumps(creds, indent=2, ensure_ascii=False) + "\n")
    path.chmod(0o600)
    print(f"demo partner {args.name} ({issued['partner_id']}) written to {path}", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    group = sub.add_parser(
        "partners", help="partners (delivery platforms): keys, secrets, limits"
    ).add_subparsers(dest="command", required=True)

    def command(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        c: argparse.ArgumentParser = group.add_parser(name, help=text)
        c.add_argument(
            "--credentials", default=".run/credentials.json", help="file holding admin_key"
        )
        c.set_defaults(func=func)
        return c

    def limits(c: argparse.ArgumentParser, defaults: bool) -> None:
        c.add_argument(
            "--rate", type=float, help="requests a second" + (" (5)" if defaults else "")
        )
        c.add_argument(
            "--burst", type=int, help="requests saved up" + (" (20)" if defaults else "")
        )
        c.add_argument("--callback-url", help="where the status of the partner's tips goes")

    add = command("add", cmd_add, "register a partner; prints its key and secret once")
    add.add_argument("name")
    limits(add, True)
    command("list", cmd_list, "every partner (never the keys)")
    rotate = command("rotate", cmd_rotate, "a new key; the current one stays valid a while")
    rotate.add_argument("name")
    rotate.add_argument(
        "--overlap-hours",
        type=float,
        default=24.0,
        help="how long the current key (and secret) stay valid (24)",
    )
    rotate.add_argument("--secret", action="store_true", help="a new signing secret too")
    revoke = command("revoke", cmd_revoke, "refuse every key of the partner at once")
    revoke.add_argument("name")
    change = command("set", cmd_set, "change the rate limit or the callback URL")
    change.add_argument("name")
    limits(change, False)
    change.add_argument("--no-callback", action="store_true", help="remove the callback URL")
    demo = command("demo", cmd_demo, "register the demo partner once (what make up does)")
    demo.add_argument("--name", default=DEMO_PARTNER)
    demo.add_argument("--rate", type=float, default=50.0)
    demo.add_argument("--burst", type=int, default=100)

"""`gridline policy versions|show|rollback` and `handler-keys revoke|issue --expires-in`:
what each sends to routing's admin API, and its exit code."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridline.operator.cli import main as gridline

pytestmark = pytest.mark.unit


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request the CLI makes, answered 200 (404 for a revocation of 'nobody')."""
    calls: list[dict[str, Any]] = []

    def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        calls.append({"method": method, "url": url, **kwargs})
        body = kwargs.get("json") or {}
        status = 404 if body.get("unit_id") == "nobody" else 200
        return httpx.Response(status, json={"detail": "x"}, request=httpx.Request(method, url))

    monkeypatch.setattr(httpx, "request", request)
    monkeypatch.setenv("GRIDLINE_ROUTING_URL", "http://routing")
    return calls


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"admin_key": "a" * 32, "handlers": {"G1": "k" * 32}}))
    return path


def test_policy_commands_call_the_versions_api(sent: list[dict[str, Any]], creds: Path) -> None:
    c = ["--credentials", str(creds)]
    assert gridline(["policy", "versions", "--kind", "catalogue", *c]) == 0
    assert gridline(["policy", "show", "7", *c]) == 0
    assert gridline(["policy", "rollback", "7", *c]) == 0
    assert [(s["method"], s["url"]) for s in sent] == [
        ("GET", "http://routing/admin/policy/versions"),
        ("GET", "http://routing/admin/policy/versions/7"),
        ("POST", "http://routing/admin/policy/versions/7/rollback"),
    ]
    assert sent[0]["params"] == {"kind": "catalogue", "limit": 50}
    assert sent[0]["headers"] == {"authorization": f"Bearer {'a' * 32}"}


def test_revoke_takes_a_unit_or_the_key_itself_and_fails_when_nothing_was_revoked(
    sent: list[dict[str, Any]], creds: Path
) -> None:
    c = ["--credentials", str(creds)]
    assert gridline(["handler-keys", "revoke", "G1", "--reason", "left", *c]) == 0
    assert gridline(["handler-keys", "revoke", "k" * 32, *c]) == 0
    assert gridline(["handler-keys", "revoke", "nobody", *c]) == 1
    assert sent[0]["json"] == {"unit_id": "G1", "reason": "left"}
    digest = hashlib.sha256(("k" * 32).encode()).hexdigest()
    assert sent[1]["json"] == {"key_sha256": digest, "reason": "revoked by the admin"}


def test_issue_with_expiry_sends_the_expiry_time(sent: list[dict[str, Any]], creds: Path) -> None:
    before = datetime.now(UTC)
    assert (
        gridline(["handler-keys", "issue", "G2", "--expires-in", "2", "--credentials", str(creds)])
        == 0
    )
    ((key,),) = [s["json"]["keys"] for s in sent]
    expires = datetime.fromisoformat(key["expires_at"])
    assert before + timedelta(hours=2) <= expires <= datetime.now(UTC) + timedelta(hours=2)
    assert "G2" in json.loads(creds.read_text())["handlers"]

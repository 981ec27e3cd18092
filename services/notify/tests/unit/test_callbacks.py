"""Partners' callbacks: their words, their body, who can be called, and the signatures
of a rotation's overlap."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gridline.common.events import TipStatusChanged
from gridline.notify.domain.callbacks import Partner, body, partner_of, render, subscription
from gridline.notify.domain.signing import sign_all, verify

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def tip(**changes: object) -> TipStatusChanged:
    fields: dict[str, object] = {
        "partner_id": "p1",
        "report_id": "r1",
        "rider_id": "rider-7",
        "work_order_id": "wo1",
        "version": 1,
        "status": "assigned",
        "duplicate": False,
        "category": "exposed-garbage",
        "tier": "grid",
        "unit_name": "Grid 3",
        "due_at": AT,
        "points": 0,
        "changed_at": AT,
    }
    return TipStatusChanged.model_validate(fields | changes)


def test_the_body_carries_the_tips_fields_and_nothing_about_a_person() -> None:
    sent = json.loads(body(tip(), "n1"))
    assert list(sent) == [
        "id", "type", "report_id", "rider_id", "work_order_id", "status", "duplicate",
        "category", "tier", "unit_name", "due_at", "points", "changed_at", "message",
    ]  # fmt: skip
    assert sent["id"] == "n1" and sent["type"] == "tip.status_changed"
    assert sent["due_at"] == sent["changed_at"] == "2026-11-02T09:00:00Z"
    assert set(sent["message"]) == {"zh-CN", "en"}


@pytest.mark.parametrize("status", ["assigned", "triage", "escalated", "resolved", "reopened"])
def test_every_status_has_words_in_both_languages_naming_the_tip(status: str) -> None:
    words = render(tip(status=status))
    assert "r1" in words["zh-CN"] and "r1" in words["en"]
    assert "wo1" in words["zh-CN"] and "wo1" in words["en"]


def test_points_and_a_merged_tip_are_said() -> None:
    words = render(tip(status="resolved", points=5, due_at=None, duplicate=True))
    assert "奖励 5 积分" in words["zh-CN"] and "5 points credited" in words["en"]
    assert "并入" in words["zh-CN"] and "joined that work order" in words["en"]
    assert "积分" not in render(tip(status="resolved", points=0))["zh-CN"]


def test_a_partner_subscription_names_its_partner() -> None:
    assert partner_of(subscription("p:1")) == "p:1"
    assert partner_of("webhook-abc") is None


def test_only_an_active_partner_with_a_url_and_a_secret_is_called() -> None:
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    ok = Partner("p1", True, "https://p.example/cb", (1,), at)
    assert ok.why_not_called() is None
    assert Partner("p1", False, "https://p.example/cb", (1,), at).why_not_called() == (
        "partner revoked"
    )
    assert Partner("p1", True, None, (1,), at).why_not_called() == "partner has no callback URL"
    assert Partner("p1", True, "https://p.example/cb", (), at).why_not_called() is not None


def test_a_partner_is_followed_only_as_far_as_its_newest_update() -> None:
    t0, t1 = datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 9, 0, 1, tzinfo=UTC)
    at_t0 = Partner("p1", True, None, (1,), t0)
    assert at_t0.followed(None) and at_t0.followed(t0)
    assert not at_t0.followed(t1)  # its callback URL set at t1 has not arrived yet
    assert not Partner("p1", False, None, (), None).followed(None)  # only seen in tips


def test_during_a_rotation_each_secret_verifies_the_signatures() -> None:
    header = sign_all(["new-secret", "old-secret"], "n1", 1700000000, b"{}")
    assert len(header.split(" ")) == 2
    assert verify("new-secret", "n1", 1700000000, b"{}", header)
    assert verify("old-secret", "n1", 1700000000, b"{}", header)
    assert not verify("other-secret", "n1", 1700000000, b"{}", header)

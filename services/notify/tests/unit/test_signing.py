"""Webhook signatures, backoff, message templates and notification bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gridline.common.events import (
    Assignment,
    WorkOrderEscalated,
    WorkOrderReopened,
    WorkOrderResolved,
    envelope_for,
)
from gridline.notify.domain.attempts import RetryPolicy, Verdict
from gridline.notify.domain.messages import bodies, kind, render
from gridline.notify.domain.signing import backoff_seconds, sign, verify

pytestmark = pytest.mark.unit

# What every work-order event carries and these tests do not vary.
REF = {
    "work_order_id": "wo1",
    "report_id": "r1",
    "street_id": "s1",
    "district_id": "d1",
    "policy_version": "p",
}


def test_signature_verifies_and_any_change_breaks_it() -> None:
    sig = sign("s" * 32, "n1", 1_700_000_000, b'{"a":1}')
    assert sig.startswith("v1,")
    assert verify("s" * 32, "n1", 1_700_000_000, b'{"a":1}', sig)
    assert not verify("s" * 32, "n1", 1_700_000_001, b'{"a":1}', sig)
    assert not verify("s" * 32, "n2", 1_700_000_000, b'{"a":1}', sig)
    assert not verify("t" * 32, "n1", 1_700_000_000, b'{"a":1}', sig)
    assert not verify("s" * 32, "n1", 1_700_000_000, b'{"a":2}', sig)


def test_reopened_message_names_the_new_holder_and_due_time() -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    event = WorkOrderReopened(
        **REF,
        version=3,
        category="exposed-garbage",
        category_name_en="Exposed garbage",
        category_name_zh="暴露垃圾",
        time_zone="Asia/Shanghai",
        feedback_id="fb1",
        resolved_tier="grid",
        resolved_at=at,
        source="citizen",
        opened_at=at,
        assignment=Assignment(
            seq=2,
            tier="grid",
            unit_id="g1",
            unit_name="网格7",
            unit_name_en="Grid 7",
            unit_level="grid",
            assigned_at=at,
            due_at=at,
        ),
    )
    text = render(event)
    assert kind(event) == "workorder.reopened"
    assert "重新打开" in text["zh-CN"] and "网格7" in text["zh-CN"]
    assert "reopened" in text["en"] and "Grid 7" in text["en"]
    assert "2026-11-02T17:00+08:00" in text["en"]


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, 1.0, 10.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_escalation_message_speaks_chinese_and_english() -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    event = WorkOrderEscalated(
        **REF,
        version=2,
        category="exposed-garbage",
        category_name_en="Exposed garbage",
        category_name_zh="暴露垃圾",
        time_zone="Asia/Shanghai",
        reason="timeout",
        from_tier="grid",
        from_unit_id="g1",
        assignment=Assignment(
            seq=2,
            tier="community",
            unit_id="c1",
            unit_name="青龙社区",
            unit_level="community",
            assigned_at=at,
            due_at=at,
        ),
    )
    text = render(event)
    assert kind(event) == "workorder.escalated"
    assert "暴露垃圾" in text["zh-CN"] and "社区" in text["zh-CN"] and "超时" in text["zh-CN"]
    assert "Exposed garbage" in text["en"] and "time limit passed" in text["en"]
    # 09:00 UTC is 17:00 in the city's zone, and people read it there.
    assert "2026-11-02T17:00+08:00" in text["zh-CN"] and "2026-11-02T17:00+08:00" in text["en"]


def test_a_department_is_named_in_each_language_of_the_message() -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    event = WorkOrderResolved(
        **REF,
        version=4,
        category="road-collapse",
        category_name_en="Road collapse",
        category_name_zh="道路塌陷",
        tier="department",
        unit_id="dept-housing",
        unit_name="Housing Bureau 住建局",
        unit_name_zh="住建局",
        unit_name_en="Housing Bureau",
        resolved_by_unit_id="dept-housing",
        opened_at=at,
        resolved_at=at,
        due_at=at,
    )
    text = render(event)
    assert "住建局" in text["zh-CN"] and "Housing Bureau" not in text["zh-CN"]
    assert "Housing Bureau" in text["en"] and "住建局" not in text["en"]


def test_an_attempt_is_delivered_retried_with_backoff_or_given_up_at_the_last() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_max=10.0)
    assert policy.judge("n", "s", 1, None).verdict is Verdict.DELIVERED
    retry = policy.judge("n", "s", 2, "HTTP 503")
    assert (retry.verdict, retry.retry_in, retry.error) == (Verdict.RETRY, 2.0, "HTTP 503")
    assert policy.judge("n", "s", 3, "HTTP 503").verdict is Verdict.DEAD
    assert policy.judge("n", "s", 3, None).verdict is Verdict.DELIVERED


def test_each_subscription_gets_the_whole_notification_under_its_own_id() -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    event = WorkOrderResolved(
        **REF,
        version=3,
        category="exposed-garbage",
        category_name_en="Exposed garbage",
        category_name_zh="暴露垃圾",
        tier="community",
        unit_id="c1",
        unit_name="青龙社区",
        resolved_by_unit_id="c1",
        opened_at=at,
        resolved_at=at,
        due_at=at,
    )
    envelope = envelope_for(event, source="/routing", time=at)
    one, two = bodies(event, envelope, ["n1", "n2"])
    for nid, body in [("n1", one), ("n2", two)]:
        assert json.loads(body) == {
            "id": nid,
            "type": "workorder.resolved",
            "work_order_id": "wo1",
            "message": render(event),
            "event": envelope.model_dump(mode="json"),
        }
        assert "青龙社区".encode() in body  # UTF-8 as it is, not \u escapes
    assert one.replace(b'"n1"', b'"n2"', 1) == two

"""Partners' pure rules: the token bucket, key admission after rotation and revocation,
secret versions in force, rider ids and callback URLs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gridline.intake.domain import partners
from gridline.intake.domain.partners import (
    RIDER_REFUSED,
    Admitted,
    Directory,
    Key,
    Limiter,
    PartnerProblem,
    Refused,
    TokenBucket,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def a_partner(**changes: object) -> partners.Partner:
    p = partners.register("ptn_1", "RiderCo", 2.0, 3, "https://rider.example/cb", NOW)
    return replace(p, **changes)  # type: ignore[arg-type]


def test_a_bucket_lets_a_burst_through_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.5)  # one token every half second
    assert bucket.take(100.5) == 0.0  # refilled
    assert bucket.take(100.5) > 0


def test_a_bucket_never_saves_more_than_its_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=2)
    bucket.take(0.0)
    assert [bucket.take(1000.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert bucket.take(1000.0) == pytest.approx(1.0)


def test_the_limiter_follows_a_changed_limit() -> None:
    limiter = Limiter()
    slow = a_partner(rate_per_s=1.0, burst=1)
    assert limiter.take(slow, 0.0) == 0.0
    assert limiter.take(slow, 0.0) == pytest.approx(1.0)
    fast = replace(slow, rate_per_s=100.0, burst=1)
    assert limiter.take(fast, 0.05) == 0.0  # 0.05 s at 100/s refills the token


def test_a_rotated_out_key_is_admitted_until_its_expiry_then_refused() -> None:
    directory = Directory.of([(b"old", Key("ptn_1", NOW + timedelta(hours=1)))], [a_partner()])
    assert isinstance(directory.admit(b"old", NOW), Admitted)
    refused = directory.admit(b"old", NOW + timedelta(hours=1))
    assert isinstance(refused, Refused) and "expired" in refused.message
    assert directory.admit(b"unknown", NOW) is None


def test_a_revoked_partners_keys_are_refused_as_revoked() -> None:
    directory = Directory.of([(b"k", Key("ptn_1", None))], [a_partner(active=False)])
    refused = directory.admit(b"k", NOW)
    assert isinstance(refused, Refused) and "revoked" in refused.message


def test_a_rotated_secret_keeps_the_previous_version_until_the_overlap_ends() -> None:
    rotated = partners.rotate_secret(a_partner(), NOW, timedelta(hours=2))
    assert rotated.secret_versions == (2, 1)
    assert rotated.versions_in_force(NOW + timedelta(hours=1)) == (2, 1)
    assert rotated.versions_in_force(NOW + timedelta(hours=2)) == (2,)
    again = partners.rotate_secret(rotated, NOW + timedelta(hours=3), timedelta(hours=1))
    assert again.secret_versions == (3, 2)
    assert partners.settled(again, NOW + timedelta(hours=5)).secret_versions == (3,)


@pytest.mark.parametrize(
    "rider", ["r-42", "rider_7:a.b", "550e8400-e29b-41d4-a716-446655440000", "123456", "x" * 64]
)
def test_opaque_rider_ids_are_taken(rider: str) -> None:
    assert partners.check_rider_id(rider) == rider


@pytest.mark.parametrize(
    "rider", ["13800138000", "rider-13800138000", "138-0013-8000", "a@b.cn", "1234567"]
)
def test_a_rider_id_that_looks_like_a_phone_number_or_email_is_refused(rider: str) -> None:
    with pytest.raises(PartnerProblem, match=RIDER_REFUSED):
        partners.check_rider_id(rider)


@pytest.mark.parametrize("rider", ["", "x" * 65, "rider 1", "r/1", "骑手1"])
def test_a_malformed_rider_id_is_refused_naming_the_field(rider: str) -> None:
    with pytest.raises(PartnerProblem, match=r"^rider_id: "):
        partners.check_rider_id(rider)


@pytest.mark.parametrize(
    "url", ["ftp://x.example/a", "https://", "not a url", "https://a.example/\x00", "//x.example"]
)
def test_a_callback_url_must_be_http_or_https_with_a_host(url: str) -> None:
    with pytest.raises(PartnerProblem, match=r"^url: must be an absolute http"):
        partners.check_callback_url(url)


def test_keys_and_ids_have_their_prefixes_and_keys_are_held_as_digests() -> None:
    key = partners.new_key()
    assert key.startswith("gpk_") and len(key) > 40
    assert partners.new_partner_id().startswith("ptn_")
    assert partners.key_digest(key) == partners.key_digest(f" {key} ")
    assert len(partners.key_digest(key)) == 32


def test_limits_and_names_are_checked() -> None:
    with pytest.raises(PartnerProblem, match="rate_per_s"):
        partners.register("ptn_2", "X", 0, 1, None, NOW)
    with pytest.raises(PartnerProblem, match="burst"):
        partners.register("ptn_2", "X", 1, 0, None, NOW)
    with pytest.raises(PartnerProblem, match="name"):
        partners.register("ptn_2", "  ", 1, 1, None, NOW)

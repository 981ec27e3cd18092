"""Keys and roles: a key names a role, and the role decides the report's source."""

from __future__ import annotations

import pytest

from gridline.intake.domain.keys import KeyRing, Role, SourceNotAllowed, report_source

pytestmark = pytest.mark.unit


def test_a_key_names_its_role_and_unknown_or_missing_keys_name_none() -> None:
    ring = KeyRing.of({Role.OPEN311_CLIENT: ["c1", "c2"], Role.SENSOR: ["s"], Role.ADMIN: ["a"]})
    assert [ring.role_of(k) for k in ("c1", "c2", " s ", "a")] == [
        Role.OPEN311_CLIENT,
        Role.OPEN311_CLIENT,
        Role.SENSOR,
        Role.ADMIN,
    ]
    assert ring.role_of("nope") is None
    assert ring.role_of("") is None
    assert ring.role_of(None) is None


def test_a_key_configured_under_two_roles_keeps_the_narrower_one() -> None:
    ring = KeyRing.of({Role.ADMIN: ["same"], Role.PARTNER: ["same"]})
    assert ring.role_of("same") is Role.PARTNER


@pytest.mark.parametrize(
    ("role", "source"),
    [
        (Role.OPEN311_CLIENT, "citizen"),
        (Role.PARTNER, "partner"),
        (Role.SENSOR, "sensor"),
        (Role.HANDLER, "grid_worker"),
        (Role.ADMIN, "hotline"),
    ],
)
def test_each_role_reports_as_its_own_source_when_none_is_asked(role: Role, source: str) -> None:
    assert report_source(role) == source
    assert report_source(role, source) == source


def test_only_the_admin_role_may_choose_another_source() -> None:
    assert report_source(Role.ADMIN, "citizen") == "citizen"
    with pytest.raises(SourceNotAllowed, match="open311_client key reports as citizen"):
        report_source(Role.OPEN311_CLIENT, "sensor")
    with pytest.raises(SourceNotAllowed):
        report_source(Role.PARTNER, "citizen")

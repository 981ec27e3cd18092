"""Who may act: a handler key is stored as its SHA-256 digest, bound to one unit, may
expire or be revoked, and reaches the orders that domain/scope.py allows its unit."""

from __future__ import annotations

import hashlib
from datetime import datetime

from gridline.common.pg import Connection
from gridline.routing.adapters import keys
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.scope import Action, scope_refusal, triage_target_refusal
from gridline.routing.domain.workorder import WorkOrder


class NoKey(Exception):
    """The request carries no key at all."""


class Forbidden(Exception):
    """The key is unknown, revoked or expired, its unit is gone, or the order lies outside
    its unit's reach."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def unit_of_key(conn: Connection, key: str, policy: Policy, now: datetime) -> str:
    """The unit a live handler key is bound to; Forbidden says why a key is not live."""
    bound = await keys.binding(conn, key_digest(key))
    if bound is None:
        raise Forbidden("unknown handler key")
    if bound.revoked_at is not None:
        raise Forbidden(
            f"this handler key (unit {bound.unit_id}) was revoked at"
            f" {bound.revoked_at.isoformat()}: {bound.revoked_reason}; issue a new one"
        )
    if bound.expires_at is not None and bound.expires_at <= now:
        raise Forbidden(
            f"this handler key (unit {bound.unit_id}) expired at"
            f" {bound.expires_at.isoformat()}; issue a new one"
        )
    if not policy.knows_unit(bound.unit_id):
        raise Forbidden(
            f"this handler key is bound to unit {bound.unit_id}, which the policy in effect"
            f" ({policy.version}) does not have"
        )
    return bound.unit_id


def check_scope(
    policy: Policy, key_unit: str | None, order: WorkOrder, action: Action = Action.RESOLVE
) -> None:
    """Raise Forbidden unless the key may do `action` to the order (by default: an act by
    the unit holding it); `policy` is the order's snapshot."""
    refusal = scope_refusal(action, key_unit, order, policy)
    if refusal is not None:
        raise Forbidden(refusal)


def check_triage_target(policy: Policy, key_unit: str | None, grid_id: str) -> None:
    refusal = triage_target_refusal(key_unit, grid_id, policy)
    if refusal is not None:
        raise Forbidden(refusal)

"""Who may act: a handler key is stored as its SHA-256 digest, bound to one unit, and
reaches the orders of that unit's subtree."""

from __future__ import annotations

import hashlib

from gridline.common.pg import Connection
from gridline.routing.adapters import store
from gridline.routing.domain.authority import may_act
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder


class NoKey(Exception):
    """The request carries no key at all."""


class Forbidden(Exception):
    """The key is unknown, or the order lies outside its unit's subtree."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def unit_of_key(conn: Connection, key: str) -> str:
    """The unit a handler key is bound to."""
    unit = await store.unit_of_key(conn, key_digest(key))
    if unit is None:
        raise Forbidden("unknown handler key")
    return unit


def check_scope(policy: Policy, key_unit: str | None, order: WorkOrder) -> None:
    """Raise Forbidden unless the key may act on the order (None, the admin key, may)."""
    if key_unit is not None and not may_act(key_unit, order, policy.ancestors):
        raise Forbidden(
            f"this key is bound to unit {key_unit}; work order {order.id} is held by "
            f"{order.unit_id}, outside that unit's subtree"
        )

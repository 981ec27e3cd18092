"""Which handler may act on which work order: a key is bound to one unit and its subtree."""

from __future__ import annotations

from collections.abc import Callable

from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder


def may_act(key_unit: str, order: WorkOrder, ancestors: Callable[[str], list[str]]) -> bool:
    """True if `key_unit` holds the order or is above the unit that holds it.

    `ancestors(unit)` lists the unit's ancestors in the jurisdiction (empty for a
    department, which has no subtree beyond itself)."""
    return key_unit == order.unit_id or key_unit in ancestors(order.unit_id)


def units_in_view(key_unit: str, policy: Policy) -> list[str]:
    """The units whose orders a key sees: its unit and every unit below it (a department
    has nothing below it)."""
    if policy.catalogue.departments_by_id.get(key_unit):
        return [key_unit]
    return [key_unit, *policy.jurisdiction.descendants(key_unit)]

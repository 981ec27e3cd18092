"""Which handler may do what to which work order: a key is bound to one unit.

A grid, community, street or district acts on the orders held in its subtree; a department
on the orders it holds or was called into, and it reads those of the categories it owns.
The admin key (no unit) reads, lists and triages everything and holds no tier, so it
cannot accept, resolve, escalate, return or call in."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder


class Action(StrEnum):
    READ = "read"
    LIST = "list"
    ACCEPT = "accept"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    RETURN = "return"
    CALL_IN = "call in"
    TRIAGE = "triage"
    CANCEL = "cancel"  # the admin key may cancel too (an operator removing a duplicate)


# What only a unit can do: the admin key has no tier to act at.
UNIT_ACTS = frozenset(
    {Action.ACCEPT, Action.RESOLVE, Action.ESCALATE, Action.RETURN, Action.CALL_IN}
)
# What a department may do to an order of its own category that it neither holds nor was
# called into: look at it.
OWNER_READS = frozenset({Action.READ, Action.LIST})


def called_in(order: WorkOrder) -> Collection[str]:
    """The department called into the order (吹哨), if any: it acts on the order it was
    called to (reports in, and so on), not only on what it holds."""
    return (order.call_in.department_id,) if order.call_in is not None else ()


def scope_refusal(
    action: Action, key_unit: str | None, order: WorkOrder, policy: Policy
) -> str | None:
    """Why the key may not do `action` to the order, or None when it may."""
    if key_unit is None:
        if action in UNIT_ACTS:
            return (
                f"{action.value} needs a handler key bound to a unit; the admin key holds no tier"
            )
        return None
    if key_unit in policy.catalogue.departments_by_id:
        if action is Action.TRIAGE:
            return f"department {key_unit} does not triage; the district holding the order does"
        if order.unit_id == key_unit or key_unit in called_in(order):
            return None
        if action in OWNER_READS and order.department_id == key_unit:
            return None
        return (
            f"this key is bound to department {key_unit}; work order {order.id} is held by"
            f" {order.unit_id}, outside that department's reach (it neither holds the order"
            " nor was called into it)"
        )
    if key_unit == order.unit_id or key_unit in policy.ancestors(order.unit_id):
        return None
    return (
        f"this key is bound to unit {key_unit}; work order {order.id} is held by"
        f" {order.unit_id}, outside that unit's subtree"
    )


def triage_target_refusal(key_unit: str | None, grid_id: str, policy: Policy) -> str | None:
    """Why the key may not place an order into `grid_id`: a district triages only into its
    own grids (the admin key into any)."""
    grid = policy.jurisdiction.grids.get(grid_id)
    if grid is None:  # no such grid: placing the order refuses it (409)
        return None
    if key_unit is None or key_unit == grid_id or key_unit in policy.ancestors(grid_id):
        return None
    return (
        f"grid {grid_id} of district {grid.district_id} lies outside unit {key_unit}'s subtree; a district triages"
        " only into its own grids"
    )

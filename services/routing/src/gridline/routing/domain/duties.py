"""Whether a unit's tier may resolve a category under the order's duty lists (N+X)."""

from __future__ import annotations

from collections.abc import Mapping

from gridline.common.policy.duties import DutyLists
from gridline.common.policy.tiers import Tier
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import TransitionRefused, WorkOrder


class OutsideDutyList(TransitionRefused):
    """The resolver's tier may not resolve this category: it must escalate or call in."""


def duty_refusal(
    duties: DutyLists | None,
    tier: Tier,
    category: str,
    lineage: list[tuple[str, str]],
) -> str | None:
    """Why a unit at `tier` may not resolve `category`, or None when it may.

    `lineage` is the resolving unit and its ancestors as (unit id, level), nearest first:
    a local (X) list of any of them applies. No duty lists, or a tier they do not list,
    restricts nothing."""
    if duties is None:
        return None
    city = duties.city_wide(tier)
    if city is None:
        return None
    local = duties.local_for([unit for unit, _ in lineage])
    if category in city or any(category in entry.categories for entry in local):
        return None
    levels = dict(lineage)
    extras = " + ".join(
        f"X: {len(entry.categories)} for {levels[entry.unit]} {entry.unit}" for entry in local
    )
    listed = f"N: {len(city)} city-wide" + (f" + {extras}" if extras else "")
    return (
        f"the {tier.value} tier's duty list ({listed}) does not include {category!r}:"
        " escalate or call a department in"
    )


def resolver_duty_refusal(
    snapshot: Policy, current: Policy, unit_id: str, order: WorkOrder
) -> str | None:
    """Why `unit_id` may not resolve the order under the duty lists of the order's
    snapshot, or None. The resolver's tier is its own unit's (a street resolving an order
    its grid holds resolves as a street); a district holds no tier and is not restricted.
    A unit the snapshot's jurisdiction does not have is looked up in the policy in effect."""
    policy = snapshot if snapshot.knows_unit(unit_id) else current
    level = policy.unit_level(unit_id)
    if level not in {t.value for t in Tier}:
        return None
    lineage = [(unit_id, level)]
    if level != Tier.DEPARTMENT.value:
        lineage += [(u.unit_id, u.level) for u in policy.jurisdiction.ancestors(unit_id)]
    return duty_refusal(snapshot.catalogue.duty_lists, Tier(level), order.category, lineage)


def unknown_local_units(duties: DutyLists | None, policy_units: Mapping[str, str]) -> list[str]:
    """The local (X) lists' units that are not a street or community of the jurisdiction;
    `policy_units` maps unit id to level."""
    if duties is None:
        return []
    return [
        unit
        for unit in duties.local_units()
        if policy_units.get(unit) not in {"street", "community"}
    ]

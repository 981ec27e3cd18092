"""Policy snapshots: every work order keeps the jurisdiction and catalogue it was opened
under (tiers, time limits, duty lists) for its whole life; a reload changes only new orders.

An order names its snapshot by its policy_version label, `j:<jurisdiction>+c:<catalogue>`.
Both parts are content hashes, so a label names exactly one stored document (policy_versions
keeps every version ever put into effect). Parsed versions are kept in a small LRU cache:
most orders are on the policy in effect, which is never re-read."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gridline.common.pg import Connection
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.routing.domain.jurisdiction import Jurisdiction, parse_jurisdiction
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder
from gridline.routing.policy_cache import PolicyHolder

# The label's prefixes and the policy_versions kind each names; later kinds (a rule file)
# add theirs here.
LABEL_KINDS = {"j": "jurisdiction", "c": "catalogue"}


def label_parts(policy_version: str) -> dict[str, str]:
    """{kind: version} of a policy_version label; unknown prefixes are ignored."""
    parts: dict[str, str] = {}
    for part in policy_version.split("+"):
        prefix, sep, version = part.partition(":")
        if sep and prefix in LABEL_KINDS:
            parts[LABEL_KINDS[prefix]] = version
    return parts


T = TypeVar("T")


class _Lru(Generic[T]):
    """A bounded map of parsed versions, least recently used out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, version: str) -> T | None:
        item = self._items.get(version)
        if item is not None:
            self._items.move_to_end(version)
        return item

    def put(self, version: str, item: T) -> None:
        self._items[version] = item
        self._items.move_to_end(version)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Snapshots:
    """The policy each order was opened under, read through the holder's policy in effect."""

    holder: PolicyHolder
    size: int = 4  # parsed versions kept per kind; a city's jurisdiction is the big one
    jurisdictions: _Lru[Jurisdiction] = field(init=False)
    catalogues: _Lru[Catalogue] = field(init=False)

    def __post_init__(self) -> None:
        self.jurisdictions = _Lru(self.size)
        self.catalogues = _Lru(self.size)

    async def of(self, conn: Connection, order: WorkOrder) -> Policy:
        return (await self.of_orders(conn, [order]))[order.policy_version]

    async def of_orders(self, conn: Connection, orders: Iterable[WorkOrder]) -> dict[str, Policy]:
        """policy_version label -> the policy of that snapshot, for every order given: one
        read per version not parsed yet, none for the policy in effect."""
        current = self.holder.require()
        policies: dict[str, Policy] = {}
        for label in sorted({o.policy_version for o in orders}):
            if label == current.version:
                policies[label] = current
                continue
            want = label_parts(label)
            jurisdiction = await self._version(
                conn,
                "jurisdiction",
                want.get("jurisdiction"),
                current.jurisdiction,
                self.jurisdictions,
                _parse_jurisdiction,
            )
            catalogue = await self._version(
                conn,
                "catalogue",
                want.get("catalogue"),
                current.catalogue,
                self.catalogues,
                _parse_catalogue,
            )
            policies[label] = Policy(jurisdiction, catalogue)
        return policies

    async def _version(
        self,
        conn: Connection,
        kind: str,
        version: str | None,
        in_effect: T,
        cache: _Lru[T],
        parse: Callable[[Any], T],
    ) -> T:
        """The parsed version; the one in effect when the label does not name one that was
        stored (an order opened before its policy was kept, or in a test without one)."""
        if version is None or version == _version_of(in_effect):
            return in_effect
        cached = cache.get(version)
        if cached is not None:
            return cached
        doc = await conn.fetchval(
            "SELECT document FROM policy_versions WHERE kind = $1 AND version = $2"
            " ORDER BY id DESC LIMIT 1",
            kind,
            version,
        )
        if doc is None:
            return in_effect
        parsed = await asyncio.to_thread(parse, doc)
        cache.put(version, parsed)
        return parsed


def _version_of(item: object) -> str:
    if isinstance(item, Jurisdiction):
        return item.version
    if isinstance(item, Catalogue):
        return item.version_hash
    raise TypeError(item)


def _parse_jurisdiction(doc: Any) -> Jurisdiction:
    return parse_jurisdiction(doc)


def _parse_catalogue(doc: Any) -> Catalogue:
    return parse_catalogue(doc)

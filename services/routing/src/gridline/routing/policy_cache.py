"""The jurisdiction and catalogue in effect in this process: loaded from the database,
followed when another instance changes them, and put into effect by the admin API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridline.common.consumer import NotReadyYet
from gridline.common.events import PolicyActivated
from gridline.common.pg import Connection, Outgoing, add_to_outbox
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.routing.adapters import store
from gridline.routing.domain.jurisdiction import Jurisdiction, parse_jurisdiction
from gridline.routing.domain.policy import Policy


class PolicyNotLoaded(NotReadyYet):
    """Nothing can be routed before a jurisdiction and a catalogue are loaded."""

    def __init__(self) -> None:
        super().__init__(
            "no jurisdiction and catalogue loaded yet;"
            " run gridline jurisdiction load and gridline catalogue load"
        )


@dataclass
class PolicyHolder:
    """The jurisdiction and catalogue in effect in this process; swapped atomically."""

    jurisdiction: Jurisdiction | None = None
    catalogue: Catalogue | None = None

    @property
    def current(self) -> Policy | None:
        if self.jurisdiction is None or self.catalogue is None:
            return None
        return Policy(self.jurisdiction, self.catalogue)

    def require(self) -> Policy:
        """The policy in effect; raises PolicyNotLoaded (events wait, requests get 503)."""
        policy = self.current
        if policy is None:
            raise PolicyNotLoaded()
        return policy

    async def load(self, conn: Connection) -> None:
        """Take up the latest stored jurisdiction and catalogue: after a restart, and when
        another routing instance loaded a new one. What the admin API put into effect
        while this read and parsed (half a second for a city) is newer than what was read:
        it stays, and the next load compares again."""
        held = self.jurisdiction
        version = await store.latest_version(conn, "jurisdiction")
        if version is not None and (held is None or held.version != version):
            doc = await store.latest_policy(conn, "jurisdiction")
            parsed = await asyncio.to_thread(parse_jurisdiction, doc)
            if self.jurisdiction is held:
                self.jurisdiction = parsed
        catalogue = self.catalogue
        version = await store.latest_version(conn, "catalogue")
        if version is not None and (catalogue is None or catalogue.version_hash != version):
            parsed_catalogue = parse_catalogue(await store.latest_policy(conn, "catalogue"))
            if self.catalogue is catalogue:
                self.catalogue = parsed_catalogue


async def store_jurisdiction(
    conn: Connection, source: str, jurisdiction: Jurisdiction, doc: dict[str, Any], now: datetime
) -> None:
    """Store a new jurisdiction version and announce it; the version in effect again is a
    no-op that emits nothing."""
    if await store.latest_version(conn, "jurisdiction") == jurisdiction.version:
        return
    await store.save_policy(conn, "jurisdiction", jurisdiction.version, doc, now)
    event = PolicyActivated(
        kind="jurisdiction",
        version=jurisdiction.version,
        activated_at=now,
        extent=jurisdiction.extent_geojson(),
        districts={u.unit_id: u.name for u in jurisdiction.units_at("district")},
        places=jurisdiction.places(),
    )
    await add_to_outbox(conn, source, [Outgoing(event, now)])


async def store_catalogue(
    conn: Connection, source: str, catalogue: Catalogue, now: datetime
) -> None:
    """Store a new catalogue version and announce it; the version in effect again is a
    no-op that emits nothing."""
    if await store.latest_version(conn, "catalogue") == catalogue.version_hash:
        return
    doc = catalogue.to_dict()
    await store.save_policy(conn, "catalogue", catalogue.version_hash, doc, now)
    event = PolicyActivated(
        kind="catalogue", version=catalogue.version_hash, activated_at=now, catalogue=doc
    )
    await add_to_outbox(conn, source, [Outgoing(event, now)])

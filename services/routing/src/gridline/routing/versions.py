"""Policy versions for the admin: list them, show one, roll back to an earlier one.

A rollback puts the earlier document into effect again as a new activation: it is stored
as a new row and PolicyActivated is published, so intake and sla follow as after a load.
Open orders keep their snapshots (snapshots.py); only new orders take the rolled-back one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from gridline.common.policy.catalogue import parse_catalogue
from gridline.routing.adapters import versions
from gridline.routing.commands import Commands, NotFound
from gridline.routing.domain.jurisdiction import parse_jurisdiction


@dataclass
class PolicyVersions:
    commands: Commands

    async def listing(
        self, kind: str | None, limit: int, before_id: int | None
    ) -> list[dict[str, Any]]:
        async with self.commands.pool.acquire() as conn:
            return await versions.listing(conn, kind, limit, before_id)

    async def show(self, version_id: int) -> dict[str, Any]:
        async with self.commands.pool.acquire() as conn:
            row = await versions.one(conn, version_id)
        if row is None:
            raise NotFound(f"policy version {version_id} not found")
        return row

    async def rollback(self, version_id: int) -> dict[str, Any]:
        """Put version `version_id` into effect again; the one in effect already is a no-op."""
        row = await self.show(version_id)
        doc = row["document"]
        if row["kind"] == "jurisdiction":
            jurisdiction = await asyncio.to_thread(parse_jurisdiction, doc)
            await self.commands.activate_jurisdiction(jurisdiction, doc)
        else:
            await self.commands.activate_catalogue(parse_catalogue(doc))
        async with self.commands.pool.acquire() as conn:
            newest = await versions.listing(conn, row["kind"], 1, None)
        return {
            "kind": row["kind"],
            "version": row["version"],
            "rolled_back_from_id": version_id,
            "id": newest[0]["id"],
            "activated_at": newest[0]["activated_at"],
        }

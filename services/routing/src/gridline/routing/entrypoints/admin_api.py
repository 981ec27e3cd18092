"""Routing's admin routes for policy versions (list, show, roll back) and handler keys
(list, revoke). The admin key only; refusals are answered by api.py's one handler."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, model_validator

from gridline.common.auth import require_admin
from gridline.routing.adapters import keys
from gridline.routing.entrypoints.api import ADMIN, Service, admin_answering
from gridline.routing.versions import PolicyVersions

# A version's id as stored (bigserial): larger numbers name no version, and asyncpg cannot
# even send them.
BIGSERIAL_MAX = 2**63 - 1
VersionId = Annotated[int, Path(ge=1, le=BIGSERIAL_MAX, description="the version's id")]

VERSIONS = admin_answering(
    {
        404: "no policy version has that id",
        422: "the request does not fit (where and what), or the version to roll back to"
        " names units or categories the policy in effect lacks",
    }
)


class PolicyVersionView(BaseModel):
    id: int = Field(description="Its row; a rollback stores the document again under a new id.")
    kind: Literal["jurisdiction", "catalogue"]
    version: str = Field(description="The content hash work orders' policy_version names.")
    label: str | None = Field(description="The catalogue's own `version` label.")
    activated_at: datetime
    in_effect: bool


class PolicyVersionDocument(PolicyVersionView):
    document: dict[str, Any]


class Revocation(BaseModel):
    unit_id: str | None = Field(default=None, description="Revoke every live key of this unit.")
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    reason: str = Field(default="revoked by the admin", max_length=500)

    @model_validator(mode="after")
    def _one(self) -> Revocation:
        if (self.unit_id is None) == (self.key_sha256 is None):
            raise ValueError("send exactly one of unit_id and key_sha256")
        return self


def add_routes(app: FastAPI) -> None:
    @app.get("/admin/policy/versions", response_model=list[PolicyVersionView], **VERSIONS)
    async def list_policy_versions(
        request: Request,
        svc: Service,
        kind: Literal["jurisdiction", "catalogue"] | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before_id: Annotated[
            int | None, Query(ge=1, le=BIGSERIAL_MAX, description="page on: ids below this")
        ] = None,
    ) -> list[dict[str, Any]]:
        """Every jurisdiction and catalogue version put into effect, newest first."""
        require_admin(request, svc.settings.admin_key)
        return await PolicyVersions(svc.commands).listing(kind, limit, before_id)

    @app.get(
        "/admin/policy/versions/{version_id}", response_model=PolicyVersionDocument, **VERSIONS
    )
    async def show_policy_version(
        version_id: VersionId, request: Request, svc: Service
    ) -> dict[str, Any]:
        """One version with its document (the GeoJSON, or the catalogue as JSON)."""
        require_admin(request, svc.settings.admin_key)
        return await PolicyVersions(svc.commands).show(version_id)

    @app.post("/admin/policy/versions/{version_id}/rollback", **VERSIONS)
    async def roll_back_policy(
        version_id: VersionId, request: Request, svc: Service
    ) -> dict[str, Any]:
        """Put an earlier version into effect again, as a new activation (PolicyActivated
        is published, so intake and sla follow). Open orders keep the policy they were
        opened under; only new orders take this one. A jurisdiction without a unit revokes
        that unit's keys."""
        require_admin(request, svc.settings.admin_key)
        return await PolicyVersions(svc.commands).rollback(version_id)

    @app.get("/admin/handler-keys", **ADMIN)
    async def list_handler_keys(
        request: Request, svc: Service, unit_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every handler key (a digest prefix, never the key), its unit, expiry and revocation."""
        require_admin(request, svc.settings.admin_key)
        async with svc.runtime.pool.acquire() as conn:
            return await keys.listing(conn, unit_id)

    @app.post(
        "/admin/handler-keys/revoke",
        **admin_answering({404: "no live handler key matches; nothing was revoked"}),
    )
    async def revoke_handler_keys(
        request: Request, svc: Service, body: Revocation
    ) -> dict[str, Any]:
        """Revoke one key (by its digest) or every live key of a unit; 404 when there is
        no live key to revoke. A revoked key is never bound again."""
        require_admin(request, svc.settings.admin_key)
        async with svc.runtime.pool.acquire() as conn:
            units = await keys.revoke(
                conn,
                key_sha256=body.key_sha256,
                unit_id=body.unit_id,
                reason=body.reason,
                now=svc.runtime.clock.now(),
            )
        if not units:
            raise HTTPException(404, "no live handler key matches; nothing was revoked")
        return {"revoked": len(units), "units": sorted(set(units))}

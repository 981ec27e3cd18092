"""intake's use cases: accept a report durably; keep its Open311 view current from events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from gridline.common.clock import Clock
from gridline.common.events import (
    Envelope,
    PolicyActivated,
    Reporter,
    ReportSubmitted,
    WorkOrderAssigned,
    WorkOrderEscalated,
    WorkOrderResolved,
)
from gridline.common.ids import new_id
from gridline.common.pg import Connection, Outgoing, Pool, add_to_outbox
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.common.policy.jurisdiction import Extent
from gridline.intake.adapters import store
from gridline.intake.domain import status
from gridline.intake.domain.submission import Submission

SCHEMA = "intake"


@dataclass
class PolicyView:
    """The catalogue and city extent intake validates against; follows routing's policy."""

    catalogue: Catalogue | None = None
    extent: Extent | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.catalogue.timezone if self.catalogue else "Asia/Shanghai")

    def apply(self, kind: str, version: str, document: dict[str, Any]) -> None:
        if kind == "catalogue":
            self.catalogue = parse_catalogue(document["catalogue"])
        else:
            self.extent = Extent.from_geojson(document["extent"])
        self.versions[kind] = version


@dataclass
class Intake:
    clock: Clock
    source: str
    policy: PolicyView = field(default_factory=PolicyView)

    async def submit(self, pool: Pool, submission: Submission, source: str) -> dict[str, Any]:
        """Store the report and its event in one transaction: nothing is acknowledged
        that is not durable, and nothing durable is left unpublished."""
        now = self.clock.now()
        request_id = new_id()
        reporter = Reporter(
            email=submission.email,
            phone=submission.phone,
            first_name=submission.first_name,
            last_name=submission.last_name,
            device_id=submission.device_id,
            account_id=submission.account_id,
        )
        row = {
            "service_request_id": request_id,
            "work_order_id": request_id,
            "token": new_id(),
            "service_code": submission.service_code,
            "description": submission.description,
            "lat": submission.lat,
            "lon": submission.lon,
            "address_string": submission.address_string,
            "media_url": submission.media_url,
            "source": source,
            "reporter": reporter.model_dump(exclude_none=True),
            "requested_datetime": now,
            "status_notes": "Received; routing to the grid that holds this location.",
        }
        event = ReportSubmitted(
            report_id=request_id,
            work_order_id=request_id,
            service_code=submission.service_code,
            description=submission.description,
            lat=submission.lat,
            lon=submission.lon,
            address_string=submission.address_string,
            media_url=submission.media_url,
            source=source,
            reporter=reporter,
            submitted_at=now,
        )
        async with pool.acquire() as conn, conn.transaction():
            await store.insert_request(conn, row)
            await add_to_outbox(conn, self.source, [Outgoing(event, now)])
        return row

    async def refresh_policy(self, conn: Connection) -> None:
        """Pick up a policy another intake instance stored (the topic has one partition)."""
        versions = await store.policy_versions(conn)
        for kind, version in versions.items():
            if self.policy.versions.get(kind) != version:
                self.policy.apply(kind, version, await store.policy_document(conn, kind))

    # -- events ------------------------------------------------------------------------

    async def on_policy(self, conn: Connection, event: PolicyActivated, _: Envelope) -> None:
        document = event.model_dump(mode="json")
        await store.save_policy(conn, event.kind, event.version, document, event.activated_at)
        self.policy.apply(event.kind, event.version, document)

    async def on_assigned(self, conn: Connection, e: WorkOrderAssigned, env: Envelope) -> None:
        if e.assignment is not None:
            view = status.assigned(
                e.assignment.unit_name, e.assignment.tier, e.assignment.due_at, self.policy.tz
            )
        else:
            view = status.held_for_triage(
                e.triage_unit_name or e.triage_unit_id or "?", e.triage_reason
            )
        await store.apply_status(conn, e.work_order_id, e.version, view, env.time, e.category)

    async def on_escalated(self, conn: Connection, e: WorkOrderEscalated, env: Envelope) -> None:
        a = e.assignment
        view = status.escalated(
            a.unit_name, e.from_tier, a.tier, e.reason, a.due_at, self.policy.tz
        )
        await store.apply_status(conn, e.work_order_id, e.version, view, env.time, e.category)

    async def on_resolved(self, conn: Connection, e: WorkOrderResolved, env: Envelope) -> None:
        view = status.resolved(e.unit_name, e.tier, e.note, e.due_at)
        await store.apply_status(conn, e.work_order_id, e.version, view, env.time, e.category)

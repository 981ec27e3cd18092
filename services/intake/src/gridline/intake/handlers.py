"""intake's use cases: accept a report durably; keep its Open311 view current from events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridline.common.clock import Clock
from gridline.common.consumer import Incoming
from gridline.common.events import PolicyActivated, ReportSubmitted
from gridline.common.ids import new_id
from gridline.common.pg import Connection, Outgoing, Pool, outbox_rows
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.common.policy.extent import Extent
from gridline.intake.adapters import reports, store
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain import reporters, status, timeline
from gridline.intake.domain.submission import RECEIVED_NOTES, Accepted, Submission

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
    # The HMAC key of reporters' opaque references (see domain/reporters.py).
    reporter_key: bytes = b""

    def accept(self, submission: Submission, source: str) -> Accepted:
        """Give a valid submission its identity and the time it was received."""
        request_id = new_id()
        return Accepted(request_id, new_id(), submission, source, self.clock.now())

    async def submit(
        self, writer: GroupCommit[Accepted], submission: Submission, source: str
    ) -> Accepted:
        """Accept the report and return once it is stored with its event (group commit):
        nothing is acknowledged that is not durable."""
        accepted = self.accept(submission, source)
        await writer.write(accepted)
        return accepted

    async def store_accepted(self, conn: Connection, batch: list[Accepted]) -> None:
        """Store reports and their ReportSubmitted events in ONE statement, atomic on its
        own: nothing durable is left unpublished, and a group commit costs one round trip
        (no BEGIN and COMMIT)."""
        submitted = [report_submitted(a, self.reporter_ref(a)) for a in batch]
        events = outbox_rows(
            self.source,
            [Outgoing(e, a.requested_at) for e, a in zip(submitted, batch, strict=True)],
        )
        # Each timeline starts at acceptance: received and tagged, named by the event's id.
        entries = [
            entry
            for event, event_id in zip(submitted, events[0], strict=True)
            for entry in timeline.of_report(event, event_id)
        ]
        await store.insert_requests(
            conn,
            batch,
            [contact_details(a.submission) for a in batch],
            RECEIVED_NOTES,
            events,
            entries,
        )

    def reporter_ref(self, accepted: Accepted) -> str | None:
        s = accepted.submission
        who = reporters.identity(
            email=s.email,
            phone=s.phone,
            device_id=s.device_id,
            account_id=s.account_id,
            client=accepted.source,
        )
        return reporters.reference(self.reporter_key, who)

    # -- queries: plain reads, no transaction needed ---------------------------------------

    async def find_requests(
        self,
        pool: Pool,
        *,
        ids: list[str] | None,
        codes: list[str] | None,
        start: datetime | None,
        end: datetime | None,
        statuses: list[str] | None,
        limit: int,
    ) -> list[Any]:
        async with pool.acquire() as conn:
            return await store.find_requests(
                conn, ids=ids, codes=codes, start=start, end=end, statuses=statuses, limit=limit
            )

    async def get_request(self, pool: Pool, request_id: str) -> Any:
        async with pool.acquire() as conn:
            return await store.get_request(conn, request_id)

    async def request_id_for_token(self, pool: Pool, token: str) -> str | None:
        async with pool.acquire() as conn:
            return await store.request_id_for_token(conn, token)

    async def load_reporter_key(self, conn: Connection) -> None:
        self.reporter_key = (await store.reporter_ref_key(conn)).encode()

    async def refresh_policy(self, conn: Connection) -> None:
        """Pick up a policy another intake instance stored (the topic has one partition)."""
        versions = await store.policy_versions(conn)
        for kind, version in versions.items():
            if self.policy.versions.get(kind) != version:
                self.policy.apply(kind, version, await store.policy_document(conn, kind))

    # -- events: each handler gets a batch, in the consumer's transaction ---------------

    async def on_policy(self, conn: Connection, events: list[Incoming[PolicyActivated]]) -> None:
        # A policy changes a few times a day: one statement per event is fine.
        for incoming in events:
            event = incoming.data
            document = event.model_dump(mode="json")
            await store.save_policy(conn, event.kind, event.version, document, event.activated_at)
            self.policy.apply(event.kind, event.version, document)

    async def on_work_order(
        self, conn: Connection, events: list[Incoming[status.WorkOrderEvent]]
    ) -> None:
        """Assigned, escalated, resolved and reopened, mixed: each sets the view of its
        request (an older or repeated version changes nothing) and adds to its timeline."""
        tz = self.policy.tz
        changes = [status.change_of(e.data, e.envelope.time, tz) for e in events]
        await store.apply_statuses(conn, status.newest(changes))
        await reports.add_entries(
            conn, [timeline.of_work_order(e.data, e.envelope.id, e.envelope.time) for e in events]
        )


def contact_details(submission: Submission) -> dict[str, str]:
    """The reporter's personal data, kept in intake's own table and nowhere else."""
    fields = {
        "email": submission.email,
        "phone": submission.phone,
        "first_name": submission.first_name,
        "last_name": submission.last_name,
        "device_id": submission.device_id,
        "account_id": submission.account_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def report_submitted(accepted: Accepted, reporter_ref: str | None) -> ReportSubmitted:
    s = accepted.submission
    return ReportSubmitted(
        report_id=accepted.request_id,
        work_order_id=accepted.request_id,
        service_code=s.service_code,
        description=s.description,
        lat=s.lat,
        lon=s.lon,
        address_string=s.address_string,
        media_url=s.media_url,
        source=accepted.source,
        reporter_ref=reporter_ref,
        submitted_at=accepted.requested_at,
    )

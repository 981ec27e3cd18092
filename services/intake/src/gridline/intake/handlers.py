"""intake's use cases: accept a report durably; keep its Open311 view current from events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gridline.common.clock import Clock
from gridline.common.consumer import Incoming
from gridline.common.events import PolicyActivated, ReportSubmitted, ReportTags
from gridline.common.ids import new_id
from gridline.common.pg import Connection, Outgoing, Pool, outbox_rows
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.common.policy.extent import Extent
from gridline.intake.adapters import store
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain import duplicates, reporters, status, tagging
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
            # Built here, not on the first report: jieba learns the catalogue's terms once.
            tagging.tagger_for(self.catalogue)
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

    def accept(
        self, submission: Submission, source: str, tags: ReportTags | None = None
    ) -> Accepted:
        """Give a valid submission its identity, the time it was received and its tags
        (severity and flags from the text; the category is the client's service_code
        unless `tags` were inferred by the caller)."""
        request_id = new_id()
        if tags is None:
            tags = self.tags(submission.description, submission.service_code)
        return Accepted(request_id, new_id(), submission, source, self.clock.now(), tags)

    def tags(self, text: str, service_code: str | None, labels: Sequence[str] = ()) -> ReportTags:
        catalogue = self.policy.catalogue
        if catalogue is None:  # the caller refuses reports before a catalogue is loaded
            return ReportTags(labels=tagging.clean_labels(labels))
        return tagging.tag(catalogue, text, service_code, labels)

    async def submit(
        self, writer: GroupCommit[Accepted], submission: Submission, source: str
    ) -> Accepted:
        """Accept the report and return once it is stored with its event (group commit):
        nothing is acknowledged that is not durable."""
        accepted = self.accept(submission, source)
        await writer.write(accepted)
        return accepted

    async def store_accepted(self, conn: Connection, batch: list[Accepted]) -> None:
        """Store reports and their ReportSubmitted events, merging duplicates (并单): in one
        transaction, a look-up of the stored reports near the batch's, then ONE statement
        that writes the rows and their outbox events. Nothing durable is left unpublished."""
        catalogue = self.policy.catalogue
        if catalogue is None or catalogue.tagging.duplicate_radius_m <= 0:
            # No catalogue yet, or merging switched off: every report opens its own order.
            await self._insert(conn, batch, [None] * len(batch), [False] * len(batch))
            return
        settings = catalogue.tagging
        window = timedelta(hours=settings.duplicate_window_hours)
        new = [
            duplicates.NewReport(
                a.request_id,
                a.submission.service_code,
                a.submission.lat,
                a.submission.lon,
                a.requested_at,
            )
            for a in batch
        ]
        async with conn.transaction():
            await store.lock_duplicates(conn)
            found = await store.earlier_reports(
                conn,
                new,
                radius_m=settings.duplicate_radius_m,
                window=window,
                repeat_window=timedelta(days=settings.repeat_window_days),
            )
            joins = duplicates.link(new, found, radius_m=settings.duplicate_radius_m, window=window)
            await self._insert(conn, batch, joins, [f.repeated for f in found])

    async def _insert(
        self,
        conn: Connection,
        batch: list[Accepted],
        joins: list[str | None],
        repeated: list[bool],
    ) -> None:
        events = outbox_rows(
            self.source,
            [
                Outgoing(report_submitted(a, self.reporter_ref(a), joined, again), a.requested_at)
                for a, joined, again in zip(batch, joins, repeated, strict=True)
            ],
        )
        await store.insert_requests(
            conn,
            batch,
            [contact_details(a.submission) for a in batch],
            RECEIVED_NOTES,
            events,
            joins,
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
        """Assigned, escalated and resolved, mixed: each sets the view of its request; an
        older or repeated version changes nothing."""
        tz = self.policy.tz
        changes = [status.change_of(e.data, e.envelope.time, tz) for e in events]
        await store.apply_statuses(conn, status.newest(changes))


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


def report_submitted(
    accepted: Accepted,
    reporter_ref: str | None,
    duplicate_of: str | None = None,
    repeated: bool = False,
) -> ReportSubmitted:
    """The event of a stored report: it opens its own work order, or joins `duplicate_of`."""
    s = accepted.submission
    tags = accepted.tags
    if repeated:
        tags = tagging.with_flag(tags, tagging.REPEATED_COMPLAINT)
    return ReportSubmitted(
        report_id=accepted.request_id,
        work_order_id=duplicate_of or accepted.request_id,
        duplicate_of=duplicate_of,
        tags=tags,
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

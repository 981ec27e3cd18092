"""intake's use cases: accept a report durably; keep its Open311 view current from events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from gridline.common.clock import Clock
from gridline.common.consumer import Incoming, idempotent
from gridline.common.events import LifecycleEvent, PolicyActivated, ReportSubmitted, ReportTags
from gridline.common.ids import new_id
from gridline.common.pg import Connection, Outgoing, Pool, outbox_rows
from gridline.common.policy.catalogue import Catalogue, parse_catalogue
from gridline.common.policy.extent import Extent
from gridline.intake import tips
from gridline.intake.adapters import reports, store
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain import duplicates, idempotency, reporters, status, tagging, timeline
from gridline.intake.domain.gazetteer import Gazetteer
from gridline.intake.domain.idempotency import Claim, Once
from gridline.intake.domain.inputs import RequestQuery
from gridline.intake.domain.points import TIP_MOVES, TipEvent
from gridline.intake.domain.submission import RECEIVED_NOTES, Accepted, Submission

SCHEMA = "intake"


class KeyTaken(Exception):
    """Another request holds this Idempotency-Key: this one stored nothing."""

    def __init__(self, once: Once | None) -> None:
        super().__init__(once.label if once else "")
        self.once = once


@dataclass
class PolicyView:
    """The catalogue, city extent and named places intake validates against; follows
    routing's policy."""

    catalogue: Catalogue | None = None
    extent: Extent | None = None
    places: Gazetteer = field(default_factory=Gazetteer)
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
            # A jurisdiction announced before places were added names none.
            self.places = Gazetteer(document.get("places") or [])
        self.versions[kind] = version


@dataclass
class Intake:
    clock: Clock
    source: str
    policy: PolicyView = field(default_factory=PolicyView)
    # The HMAC key of reporters' opaque references (see domain/reporters.py).
    reporter_key: bytes = b""
    # How long an Idempotency-Key is remembered.
    key_ttl: timedelta = timedelta(hours=24)

    def accept(
        self,
        submission: Submission,
        source: str,
        tags: ReportTags | None = None,
        *,
        partner_id: str | None = None,
        rider_id: str | None = None,
    ) -> Accepted:
        """Give a valid submission its identity, the time it was received and its tags
        (severity and flags from the text; the category is the client's service_code
        unless `tags` were inferred by the caller). A partner's tip names the partner and
        its rider."""
        request_id = new_id()
        if tags is None:
            tags = self.tags(submission.description, submission.service_code, submission.labels)
        return Accepted(
            request_id,
            new_id(),
            submission,
            source,
            self.clock.now(),
            tags=tags,
            partner_id=partner_id,
            rider_id=rider_id,
        )

    def tags(self, text: str, service_code: str | None, labels: Sequence[str] = ()) -> ReportTags:
        catalogue = self.policy.catalogue
        if catalogue is None:  # the caller refuses reports before a catalogue is loaded
            return ReportTags(labels=tagging.clean_labels(labels))
        return tagging.tag(catalogue, text, service_code, labels)

    async def submit(
        self,
        writer: GroupCommit[Accepted],
        submission: Submission,
        source: str,
        once: Once | None = None,
        answer: Callable[[Accepted], tuple[int, bytes]] | None = None,
        tags: ReportTags | None = None,
        *,
        partner_id: str | None = None,
        rider_id: str | None = None,
    ) -> Accepted:
        """Accept the report and return once it is stored with its event (group commit):
        nothing is acknowledged that is not durable. With `once`, `answer` is the answer to
        remember with the key; raises KeyTaken if another request holds the key. `tags`:
        the caller's (an inferred category); by default read off the submission."""
        accepted = self.accept(submission, source, tags, partner_id=partner_id, rider_id=rider_id)
        if once is not None and answer is not None:
            accepted = replace(accepted, claim=Claim(once, accepted.request_id, *answer(accepted)))
        if not await writer.write(accepted):
            raise KeyTaken(once)
        return accepted

    async def store_batch(self, pool: Pool, batch: list[Accepted]) -> None:
        """Store a batch request's reports together, all or none, in one transaction (not
        through the group commit, which may split a batch). Raises KeyTaken if another
        request holds the batch's idempotency key: then none is stored."""
        if not batch:
            return
        async with pool.acquire() as conn:
            declined = await self.store_accepted(conn, batch)
        if declined:
            raise KeyTaken(batch[0].claim.once if batch[0].claim else None)

    async def store_accepted(self, conn: Connection, batch: list[Accepted]) -> list[int]:
        """Store reports and their ReportSubmitted events, merging duplicates (并单): in one
        transaction, a look-up of the stored reports near the batch's, then ONE statement
        that writes the rows, their idempotency keys and their outbox events. Nothing
        durable is left unpublished. Returns the indexes of reports not stored because
        another request holds their idempotency key (in the database, or earlier in
        `batch`)."""
        owners: dict[str, str] = {}
        for a in batch:
            if a.claim is not None:
                owners.setdefault(a.claim.once.label, a.claim.owner)

        def first_with_its_key(a: Accepted) -> bool:
            return a.claim is None or owners[a.claim.once.label] == a.claim.owner

        rows = [a for a in batch if first_with_its_key(a)]
        catalogue = self.policy.catalogue
        if catalogue is None or catalogue.tagging.duplicate_radius_m <= 0:
            # No catalogue yet, or merging switched off: every report opens its own order,
            # one statement, no transaction block.
            claimed = await self._insert(conn, rows, [None] * len(rows), [False] * len(rows))
        else:
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
                for a in rows
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
                joins = duplicates.link(
                    new, found, radius_m=settings.duplicate_radius_m, window=window
                )
                claimed = await self._insert(conn, rows, joins, [f.repeated for f in found])
        return [
            i
            for i, a in enumerate(batch)
            if a.claim is not None
            and (not first_with_its_key(a) or a.claim.once.label not in claimed)
        ]

    async def _insert(
        self,
        conn: Connection,
        batch: list[Accepted],
        joins: list[str | None],
        repeated: list[bool],
    ) -> set[str]:
        submitted = [
            report_submitted(a, self.reporter_ref(a), joined, again)
            for a, joined, again in zip(batch, joins, repeated, strict=True)
        ]
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
        return await store.insert_requests(
            conn,
            batch,
            [contact_details(a.submission) for a in batch],
            RECEIVED_NOTES,
            events,
            joins,
            self.key_ttl,
            entries,
        )

    async def answer_once(
        self,
        pool: Pool,
        once: Once | None,
        attempt: Callable[[], Awaitable[tuple[int, bytes]]],
    ) -> tuple[int, bytes, bool]:
        """Answer a write at most once per Idempotency-Key: the remembered answer if the key
        was used (Conflict if with another request), else `attempt`'s. A concurrent request
        with the same key that wins the claim first is answered as a retry would be: its
        answer, or Conflict. Returns the status, body and whether it is a replay."""
        if once is None:
            return (*await attempt(), False)
        replayed = await self.replayed(pool, once)
        if replayed is not None:
            return (*replayed, True)
        try:
            return (*await attempt(), False)
        except KeyTaken:
            replayed = await self.replayed(pool, once)
            if replayed is None:  # the holder's key expired in between: vanishingly rare
                raise idempotency.Conflict(
                    f"{idempotency.HEADER} {once.key!r} is in use by another request; retry"
                ) from None
            return (*replayed, True)

    async def replayed(self, pool: Pool, once: Once) -> tuple[int, bytes] | None:
        async with pool.acquire() as conn:
            remembered = await store.remembered_answer(conn, once, self.clock.now())
        return None if remembered is None else idempotency.replay(remembered, once)

    async def forget_expired_keys(self, pool: Pool) -> int:
        async with pool.acquire() as conn:
            return await store.forget_expired_keys(conn, self.clock.now())

    def reporter_ref(self, accepted: Accepted) -> str | None:
        s = accepted.submission
        who = reporters.identity(
            email=s.email,
            phone=s.phone,
            device_id=s.device_id,
            account_id=s.account_id,
            client=accepted.source,
            partner_id=accepted.partner_id,
            rider_id=accepted.rider_id,
        )
        return reporters.reference(self.reporter_key, who)

    # -- queries: plain reads, no transaction needed ---------------------------------------

    async def find_requests(self, pool: Pool, query: RequestQuery) -> list[Any]:
        async with pool.acquire() as conn:
            return await store.find_requests(conn, query)

    async def get_request(self, pool: Pool, request_id: str) -> Any:
        async with pool.acquire() as conn:
            return await store.get_request(conn, request_id)

    async def request_id_for_token(self, pool: Pool, token: str) -> str | None:
        async with pool.acquire() as conn:
            return await store.request_id_for_token(conn, token)

    async def load_reporter_key(self, conn: Connection) -> None:
        self.reporter_key = (await store.reporter_ref_key(conn)).encode()

    async def refresh_policy(self, conn: Connection) -> None:
        """Pick up a policy another intake instance stored (the topic has one partition).
        A version this process applied from its event while this read is newer than what
        was read: it stays, and the next refresh compares again."""
        held = dict(self.policy.versions)
        versions = await store.policy_versions(conn)
        for kind, version in versions.items():
            if held.get(kind) != version:
                document = await store.policy_document(conn, kind)
                if self.policy.versions.get(kind) == held.get(kind):
                    self.policy.apply(kind, version, document)

    # -- events: each handler gets a batch, in the consumer's transaction ---------------

    async def on_policy(self, conn: Connection, events: list[Incoming[PolicyActivated]]) -> None:
        # A policy changes a few times a day: one statement per event is fine.
        for incoming in events:
            event = incoming.data
            document = event.model_dump(mode="json")
            await store.save_policy(conn, event.kind, event.version, document, event.activated_at)
            self.policy.apply(event.kind, event.version, document)

    @idempotent
    async def on_work_order(
        self, conn: Connection, events: list[Incoming[status.WorkOrderEvent]]
    ) -> None:
        """Assigned, escalated, resolved and reopened, mixed: each sets the view of its
        request (an older or repeated version changes nothing) and adds to its timeline.
        Idempotent (no inbox row): the view moves only forward by version, timeline
        entries and tips' announcements carry ids derived from the event, and the points
        ledger takes one credit per tip."""
        tz = self.policy.tz
        changes = [status.change_of(e.data, e.envelope.time, tz) for e in events]
        await store.apply_statuses(conn, status.newest(changes))
        await reports.add_entries(
            conn, [timeline.of_work_order(e.data, e.envelope.id, e.envelope.time) for e in events]
        )
        # Partners' tips on these orders: status events and points (tips.py).
        await tips.follow(conn, events, self.policy.catalogue, tz, self.source)

    @idempotent
    async def on_lifecycle(self, conn: Connection, events: list[Incoming[LifecycleEvent]]) -> None:
        """The lifecycle's further moves: the request's view where the move changes it
        (an older or repeated version changes nothing) and a timeline entry each."""
        tz = self.policy.tz
        changes = [
            status.StatusChange(
                e.data.work_order_id, e.data.version, view, e.envelope.time, e.data.category
            )
            for e in events
            if (view := status.lifecycle_view(e.data, tz)) is not None
        ]
        await store.apply_statuses(conn, status.newest(changes))
        await reports.add_entries(
            conn, [timeline.of_lifecycle(e.data, e.envelope.id, e.envelope.time) for e in events]
        )
        # Partners hear of their tips' moves too (status callbacks).
        told = [cast(Incoming[TipEvent], e) for e in events if isinstance(e.data, TIP_MOVES)]
        if told:
            await tips.follow(conn, told, self.policy.catalogue, tz, self.source)


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
        photos=list(s.photos),
        attributes=s.attributes,
        grid_id=s.grid_id,
        source=accepted.source,
        reporter_ref=reporter_ref,
        occurred_at=s.occurred_at,
        submitted_at=accepted.requested_at,
    )

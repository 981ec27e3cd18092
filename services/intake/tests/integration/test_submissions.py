"""Accepting reports by group commit, on the real PostgreSQL: concurrent reports share
transactions, each is answered only once stored with its event, and a failure is shared
only by the reports it concerns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool, is_transient
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SUBMISSION = Submission(
    service_code="exposed-garbage",
    lat=31.78,
    lon=119.95,
    description="垃圾堆在路边",
    address_string="青龙路 1 号",
    media_url=None,
    email="a@b.cn",
    phone=None,
    first_name=None,
    last_name=None,
    device_id=None,
    account_id="acct-7",
)


@pytest.fixture
async def intake(pool: Pool) -> Intake:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    return intake


class Writer:
    """A running group-commit writer and the batch sizes it committed."""

    def __init__(self, pool: Pool, intake: Intake, wait: float = 0.002) -> None:
        self.batches: list[int] = []
        self.commit: GroupCommit[Accepted] = GroupCommit(
            pool, intake.store_accepted, wait=wait, max_rows=256, observe=self.batches.append
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.commit.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def writer(pool: Pool, intake: Intake) -> AsyncIterator[Writer]:
    w = Writer(pool, intake)
    w.start()
    yield w
    await w.stop()


async def stored(pool: Pool) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    requests = await pool.fetch(
        "SELECT service_request_id, token, reporter, status_notes, xmin::text AS tx FROM requests"
    )
    outbox = await pool.fetch("SELECT key, topic, payload, xmin::text AS tx FROM outbox")
    return list(requests), list(outbox)


async def test_concurrent_reports_share_transactions_and_each_has_its_event(
    pool: Pool, intake: Intake, writer: Writer
) -> None:
    n = 60
    answers = await asyncio.gather(
        *(intake.submit(writer.commit, SUBMISSION, "citizen") for _ in range(n))
    )
    requests, outbox = await stored(pool)
    ids = {a.request_id for a in answers}
    assert len(ids) == n
    assert {r["service_request_id"] for r in requests} == ids
    assert {r["token"] for r in requests} == {a.token for a in answers}
    assert requests[0]["reporter"] == {"email": "a@b.cn", "account_id": "acct-7"}
    # One ReportSubmitted per report, keyed by its work order, in the same transactions.
    assert sorted(o["key"] for o in outbox) == sorted(ids)
    envelopes = [json.loads(o["payload"]) for o in outbox]
    assert {e["type"] for e in envelopes} == {"gridline.report.submitted.v1"}
    assert {e["data"]["report_id"] for e in envelopes} == ids
    # The reporter's contact details stay in intake's table: the event names them by an
    # opaque reference, the same for every report of the same person.
    assert not any(b"a@b.cn" in o["payload"] or b"acct-7" in o["payload"] for o in outbox)
    refs = {e["data"]["reporter_ref"] for e in envelopes}
    assert len(refs) == 1 and next(iter(refs)).startswith("rep_")
    transactions = {r["tx"] for r in requests}
    tx_of = {r["service_request_id"]: r["tx"] for r in requests}
    assert all(o["tx"] == tx_of[o["key"]] for o in outbox), "an event outside its report's tx"
    assert len(transactions) < n, "concurrent reports were committed one by one"
    assert len(transactions) == len(writer.batches)
    assert sum(writer.batches) == n


async def test_a_lone_report_on_an_idle_writer_is_committed_without_waiting(
    pool: Pool, intake: Intake
) -> None:
    w = Writer(pool, intake, wait=5.0)  # a wait that would show if it were applied
    w.start()
    try:
        async with asyncio.timeout(2):
            accepted = await intake.submit(w.commit, SUBMISSION, "partner")
    finally:
        await w.stop()
    requests, outbox = await stored(pool)
    assert [r["service_request_id"] for r in requests] == [accepted.request_id]
    assert [o["key"] for o in outbox] == [accepted.request_id]
    assert w.batches == [1]


async def test_a_failed_commit_stores_none_of_its_reports_and_fails_every_one_transiently(
    pool: Pool, intake: Intake, writer: Writer
) -> None:
    # The outbox insert fails as a full disk would (SQLSTATE class 53: the server's fault).
    await pool.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH STATEMENT"
        " EXECUTE FUNCTION refuse()"
    )
    n = 20
    outcomes = await asyncio.gather(
        *(intake.submit(writer.commit, SUBMISSION, "citizen") for _ in range(n)),
        return_exceptions=True,
    )
    assert all(isinstance(o, BaseException) and is_transient(o) for o in outcomes), outcomes
    assert await stored(pool) == ([], [])

    # The writer outlives the outage: once the database takes rows again, reports go in.
    await pool.execute("DROP TRIGGER refuse ON outbox")
    accepted = await intake.submit(writer.commit, SUBMISSION, "citizen")
    requests, outbox = await stored(pool)
    assert [r["service_request_id"] for r in requests] == [accepted.request_id]
    assert len(outbox) == 1


async def test_one_reports_bad_row_fails_it_alone_and_its_neighbours_are_stored(
    pool: Pool, intake: Intake, writer: Writer
) -> None:
    # PostgreSQL text cannot hold NUL: the database refuses this one row, not the batch.
    bad = replace(SUBMISSION, description="nul \x00 inside")
    submissions = [SUBMISSION] * 9 + [bad] + [SUBMISSION] * 6
    outcomes = await asyncio.gather(
        *(intake.submit(writer.commit, s, "citizen") for s in submissions),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and outcomes[9] is failed[0]
    assert isinstance(failed[0], asyncpg.PostgresError) and not is_transient(failed[0])
    requests, outbox = await stored(pool)
    good = {o.request_id for o in outcomes if isinstance(o, Accepted)}
    assert len(good) == 15
    assert {r["service_request_id"] for r in requests} == good
    assert {o["key"] for o in outbox} == good


async def test_a_request_cancelled_while_its_batch_commits_leaves_the_batch_whole(
    pool: Pool, intake: Intake
) -> None:
    started = asyncio.Event()

    async def slow_store(conn: asyncpg.Connection, batch: list[Accepted]) -> None:
        started.set()
        await asyncio.sleep(0.2)
        await intake.store_accepted(conn, batch)

    commit: GroupCommit[Accepted] = GroupCommit(pool, slow_store, wait=0, max_rows=256)
    # Queued before the writer runs, so that the three are one batch.
    tasks = [asyncio.create_task(intake.submit(commit, SUBMISSION, "citizen")) for _ in range(3)]
    gone_early = asyncio.create_task(intake.submit(commit, SUBMISSION, "citizen"))
    await asyncio.sleep(0)
    gone_early.cancel()  # a client that left before its report was taken: never stored
    runner = asyncio.create_task(commit.run())
    try:
        await started.wait()
        tasks[1].cancel()  # a client that left while its batch was committing
        answers = [await tasks[0], await tasks[2]]
        with pytest.raises(asyncio.CancelledError):
            await tasks[1]
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    requests, outbox = await stored(pool)
    assert len(requests) == 3 == len(outbox)
    assert {a.request_id for a in answers} <= {r["service_request_id"] for r in requests}
    assert len({r["tx"] for r in requests}) == 1

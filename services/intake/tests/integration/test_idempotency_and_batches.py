"""Idempotency keys and batch intake on the real PostgreSQL: a key is stored in the same
statement as its reports, a replay stores nothing, concurrent requests with one key store
one report, and a batch is stored whole, one transaction, or not at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gridline.common.clock import ManualClock
from gridline.common.pg import Pool, is_transient
from gridline.intake.adapters.group_commit import GroupCommit
from gridline.intake.domain import idempotency
from gridline.intake.domain.idempotency import Claim, Once
from gridline.intake.domain.submission import Accepted, Submission
from gridline.intake.handlers import Intake, KeyTaken

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SUBMISSION = Submission(
    service_code="exposed-garbage",
    lat=31.78,
    lon=119.95,
    description="垃圾堆在路边",
    address_string=None,
    media_url=None,
    email="w@b.cn",
    phone="13800000000",
    first_name=None,
    last_name=None,
    device_id=None,
    account_id=None,
    grid_id="g-7",
    occurred_at=NOW - timedelta(hours=2),
    photos=("https://img.example/1.jpg",),
    labels=("night", "smell"),
)


@pytest.fixture
async def intake(pool: Pool) -> Intake:
    intake = Intake(ManualClock(NOW), "/gridline/intake")
    async with pool.acquire() as conn:
        await intake.load_reporter_key(conn)
    return intake


@pytest.fixture
async def writer(pool: Pool, intake: Intake) -> AsyncIterator[GroupCommit[Accepted]]:
    async with RunningWriter(pool, intake) as w:
        yield w


class RunningWriter:
    def __init__(self, pool: Pool, intake: Intake, wait: float = 0.002) -> None:
        self.commit: GroupCommit[Accepted] = GroupCommit(
            pool, intake.store_accepted, wait=wait, max_rows=256
        )

    async def __aenter__(self) -> GroupCommit[Accepted]:
        self.task = asyncio.create_task(self.commit.run())
        return self.commit

    async def __aexit__(self, *_: object) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def once(body: str, key: str = "k-1", api_key: str = "citizen-key") -> Once:
    op = "POST /v1/reports"
    return idempotency.once(api_key, key, op, idempotency.fingerprint(op, body.encode()))


def answer(accepted: Accepted) -> tuple[int, bytes]:
    return 201, json.dumps({"id": accepted.request_id}).encode()


async def submit_once(
    intake: Intake, pool: Pool, writer: GroupCommit[Accepted], request: Once
) -> tuple[int, bytes, bool]:
    async def attempt() -> tuple[int, bytes]:
        accepted = await intake.submit(writer, SUBMISSION, "citizen", request, answer)
        return answer(accepted)

    return await intake.answer_once(pool, request, attempt)


async def counts(pool: Pool) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM requests) AS r, (SELECT count(*) FROM outbox) AS o,"
        " (SELECT count(*) FROM idempotency_keys) AS k"
    )
    assert row is not None
    return row["r"], row["o"], row["k"]


async def test_a_retry_with_the_same_key_and_body_gets_the_first_answer_and_no_second_report(
    pool: Pool, intake: Intake, writer: GroupCommit[Accepted]
) -> None:
    first = await submit_once(intake, pool, writer, once("body"))
    retry = await submit_once(intake, pool, writer, once("body"))
    assert first[:2] == retry[:2] and first[0] == 201
    assert (first[2], retry[2]) == (False, True)
    assert await counts(pool) == (1, 1, 1)
    # Every field reached the table and the event; contact details only the table.
    row = await pool.fetchrow("SELECT grid_id, occurred_at, photos, labels, reporter FROM requests")
    assert row is not None
    assert (row["grid_id"], row["occurred_at"]) == ("g-7", SUBMISSION.occurred_at)
    assert (row["photos"], row["labels"]) == (["https://img.example/1.jpg"], ["night", "smell"])
    assert row["reporter"] == {"email": "w@b.cn", "phone": "13800000000"}
    payload = await pool.fetchval("SELECT payload FROM outbox")
    data = json.loads(payload)["data"]
    assert data["grid_id"] == "g-7" and data["photos"] == ["https://img.example/1.jpg"]
    assert data["tags"]["labels"] == ["night", "smell"]
    assert data["occurred_at"].startswith("2026-11-02T07:00")
    assert b"w@b.cn" not in payload and b"13800000000" not in payload


async def test_the_same_key_with_another_body_is_a_conflict_that_stores_nothing(
    pool: Pool, intake: Intake, writer: GroupCommit[Accepted]
) -> None:
    await submit_once(intake, pool, writer, once("body"))
    with pytest.raises(idempotency.Conflict, match="different request"):
        await submit_once(intake, pool, writer, once("another body"))
    # Another client may use the same key for its own report.
    other = await submit_once(intake, pool, writer, once("another body", api_key="partner-key"))
    assert other[2] is False
    assert await counts(pool) == (2, 2, 2)


async def test_concurrent_requests_with_one_key_store_one_report_and_get_one_answer(
    pool: Pool, intake: Intake, writer: GroupCommit[Accepted]
) -> None:
    # Ten at once share a group commit (one statement); two more writers stand for other
    # intake instances, whose statements meet on the key's row in PostgreSQL.
    async with RunningWriter(pool, intake) as second, RunningWriter(pool, intake) as third:
        answers = await asyncio.gather(
            *(submit_once(intake, pool, w, once("body")) for w in [writer] * 10 + [second, third])
        )
    assert len({(status, body) for status, body, _ in answers}) == 1
    assert sum(1 for *_, replay in answers if not replay) == 1
    assert await counts(pool) == (1, 1, 1)


async def test_concurrent_requests_with_one_key_and_other_bodies_store_one_and_409_the_rest(
    pool: Pool, intake: Intake, writer: GroupCommit[Accepted]
) -> None:
    outcomes = await asyncio.gather(
        *(submit_once(intake, pool, writer, once(f"body {i}")) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, tuple) for o in outcomes) == 1
    assert sum(isinstance(o, idempotency.Conflict) for o in outcomes) == 4
    assert await counts(pool) == (1, 1, 1)


async def test_an_expired_key_is_forgotten_and_may_open_a_new_report(
    pool: Pool, intake: Intake, writer: GroupCommit[Accepted]
) -> None:
    first = await submit_once(intake, pool, writer, once("body"))
    assert isinstance(intake.clock, ManualClock)
    intake.clock.advance(intake.key_ttl + timedelta(seconds=1))
    again = await submit_once(intake, pool, writer, once("another body"))
    assert again[2] is False and again[1] != first[1]
    assert await counts(pool) == (2, 2, 1)  # the expired row was taken over
    intake.clock.advance(intake.key_ttl + timedelta(seconds=1))
    assert await intake.forget_expired_keys(pool) == 1
    assert await counts(pool) == (2, 2, 0)


def batch(intake: Intake, n: int, request: Once | None = None) -> list[Accepted]:
    accepted = [intake.accept(SUBMISSION, "partner") for _ in range(n)]
    if request is None:
        return accepted
    claim = Claim(request, accepted[0].request_id, 200, b'{"accepted": %d}' % n)
    return [replace(a, claim=claim) for a in accepted]


async def test_a_batch_of_500_is_one_transaction_with_one_event_per_report(
    pool: Pool, intake: Intake
) -> None:
    request = once("batch")
    stored = batch(intake, 500, request)
    await intake.store_batch(pool, stored)
    rows = await pool.fetch("SELECT service_request_id, xmin::text AS tx FROM requests")
    events = await pool.fetch("SELECT key, xmin::text AS tx FROM outbox")
    assert {r["service_request_id"] for r in rows} == {a.request_id for a in stored}
    assert sorted(e["key"] for e in events) == sorted(a.request_id for a in stored)
    assert len({r["tx"] for r in rows} | {e["tx"] for e in events}) == 1
    # The same key again (a retry built anew) stores none of its reports.
    with pytest.raises(KeyTaken):
        await intake.store_batch(pool, batch(intake, 3, request))
    assert await counts(pool) == (500, 500, 1)
    assert await intake.replayed(pool, request) == (200, b'{"accepted": 500}')


async def test_a_batch_whose_commit_fails_stores_none_of_its_reports_nor_its_key(
    pool: Pool, intake: Intake
) -> None:
    await pool.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON outbox FOR EACH STATEMENT"
        " EXECUTE FUNCTION refuse()"
    )
    with pytest.raises(asyncpg.PostgresError) as failure:
        await intake.store_batch(pool, batch(intake, 20, once("batch")))
    assert is_transient(failure.value)  # the app answers 503
    assert await counts(pool) == (0, 0, 0)

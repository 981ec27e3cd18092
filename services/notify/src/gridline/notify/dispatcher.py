"""notify's use case for deliveries: send due ones, retry failures with backoff, and never
let a slow receiver hold up the others.

The dispatcher holds one connection that LISTENs for stored deliveries and claims with
it: as many due rows per subscription as that subscription has free sending slots, in
one statement. Each claimed row is sent on its own task; its result goes to a recorder
that writes whatever has accumulated (a few ms, or a full batch) in one UPDATE per kind
of outcome, then frees the slots and wakes the claimer, since recording an order's
delivery makes its next event due. A claimed row keeps its lease until recorded, so no
one claims it twice; a periodic claim catches retries that come due.

Stopping is two steps: `drain` (the composition root calls it at shutdown) claims nothing
more and lets the sends in flight finish and be recorded, for a bounded time; cancelling
`run` then gives up what is left, whose rows keep their lease and go out again after it
under the same notification id. Without the drain every rolling restart would send each
delivery in flight twice.

Partners' callbacks are deliveries like the others, one subscription per partner
("partner:<id>"), learnt from the partners table when notify's partner handler notifies.
They are signed at send time with the partner's secrets in force (so a rotation applies to
retries) and sent to its callback URL of that moment; a partner revoked or left without a
URL has its claimed callbacks marked dead instead of sent. Without the partner secret key
they are not claimed at all: they wait, stored, until notify runs with the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from gridline.common.partners import signing_secret
from gridline.common.pg import Connection, Pool, run_on_notify
from gridline.notify.adapters import partners, store, webhook
from gridline.notify.domain import callbacks
from gridline.notify.domain.attempts import Outcome, RetryPolicy, Verdict
from gridline.notify.metrics import NotifyMetrics

log = logging.getLogger(__name__)

LEASE_SECONDS = 60  # a claimed delivery is retried by someone else if we die mid-send


class Dispatcher:
    def __init__(
        self,
        pool: Pool,
        client: webhook.Client,
        schema: str,
        subscriptions: list[str],
        *,
        secret: str | None,
        partner_secret_key: str | None = None,
        policy: RetryPolicy,
        metrics: NotifyMetrics,
        slots_per_subscription: int,
        poll_interval: float = 1.0,
        record_interval: float = 0.005,
        record_batch: int = 256,
    ) -> None:
        self._pool = pool
        self._client = client
        self._channel = store.deliveries_channel(schema)
        self._partners_channel = partners.changes_channel(schema)
        self._subscriptions = set(subscriptions)
        self._claimable = frozenset(self._subscriptions)
        self._refresh_partners = True
        self._secrets: tuple[str, ...] = (secret or "",)
        self._partner_key = partner_secret_key
        self._warned = False
        metrics.partner_signing.set(0 if partner_secret_key is None else 1)
        self._partner_secrets: dict[tuple[str, int], str] = {}  # derived once per version
        self._policy = policy
        self._metrics = metrics
        self._slots = slots_per_subscription
        self._poll_interval = poll_interval
        self._record_interval = record_interval
        self._record_batch = record_batch
        self._in_flight: Counter[str] = Counter()  # claimed and not yet recorded
        self._sending: set[asyncio.Task[None]] = set()
        self._results: list[Outcome] = []
        self._recording: list[Outcome] = []  # the batch being written now
        self._wake = asyncio.Event()  # something may be due: claim
        self._has_results = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._next_retry: float | None = None  # loop time the earliest known retry is due
        self._draining = False  # stopping: claim nothing more
        self._claiming = False  # a claim is under way
        self._progress = asyncio.Event()  # a claim ended or a batch was recorded

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_forever(), name="notify-recorder")

        def partners_changed(*_: object) -> None:
            self._refresh_partners = True
            self._wake.set()

        async def prepare(conn: Connection) -> None:
            await conn.add_listener(self._partners_channel, partners_changed)
            # Rows of a subscription since removed from the settings still go out.
            self._subscriptions |= await store.pending_subscriptions(conn)
            self._refresh_partners = True

        async def work(conn: Connection) -> bool:
            self._claiming = True
            try:
                await self._claim(conn)
            finally:
                self._claiming = False
                self._progress.set()
            return False

        try:
            await run_on_notify(
                self._pool,
                self._channel,
                work,
                wake=self._wake,
                idle=self._wait_seconds,
                prepare=prepare,
            )
        finally:
            recorder.cancel()
            for task in list(self._sending):
                task.cancel()  # those rows keep their lease and are retried after it
            await asyncio.gather(recorder, *self._sending, return_exceptions=True)
            unrecorded = self._recording + self._results
            if unrecorded:  # answers already received: record them if we still can
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._record(unrecorded), 2.0)
            # A restarted run starts afresh; rows not recorded are retried after their lease.
            self._results, self._recording = [], []
            self._in_flight.clear()

    async def drain(self, within: float) -> int:
        """Claim nothing more; wait up to `within` seconds for the sends in flight to end
        and their outcomes to be recorded. Returns how many are left unrecorded (they keep
        their lease: retried after it, under the same notification id)."""
        self._draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        # A claim under way as the drain began is waited for, and the sends it starts.
        while self._claiming or self._sending or self._results or self._recording:
            left = deadline - loop.time()
            if left <= 0:
                break
            if self._sending:
                await asyncio.wait(set(self._sending), timeout=left)
                continue
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)
        unrecorded = len(self._sending) + len(self._results) + len(self._recording)
        log.info(
            "notify dispatcher: stopped claiming; %d sends in flight left unrecorded"
            " (retried after their lease)",
            unrecorded,
        )
        return unrecorded

    def _wait_seconds(self) -> float:
        """Until the next fallback poll, or sooner when a retry we scheduled comes due."""
        if self._next_retry is None:
            return self._poll_interval
        now = asyncio.get_running_loop().time()
        if self._next_retry <= now:
            self._next_retry = None
            return 0.0
        return min(self._poll_interval, self._next_retry - now)

    async def _learn_partners(self, conn: Connection) -> None:
        """The partners' subscriptions to claim for (a handful of rows, read at start and
        when the partner handler says partners changed)."""
        self._refresh_partners = False
        can_call = await partners.callable_subscriptions(conn)
        if self._partner_key is None:
            waiting = can_call or any(callbacks.partner_of(s) for s in self._subscriptions)
            if waiting and not self._warned:
                self._warned = True
                log.warning(
                    "notify dispatcher: partners' callbacks wait, stored: they cannot be"
                    " signed until notify runs with GRIDLINE_PARTNER_SECRET_KEY"
                )
            self._claimable = frozenset(
                s for s in self._subscriptions if not callbacks.partner_of(s)
            )
            return
        self._claimable = frozenset(self._subscriptions | can_call)

    async def _claim(self, conn: Connection) -> None:
        if self._draining:
            return
        if self._refresh_partners:
            await self._learn_partners(conn)
        free = {s: n for s in self._claimable if (n := self._slots - self._in_flight[s]) > 0}
        if not free:
            return
        rows = await store.claim_due(conn, free, LEASE_SECONDS)
        self._metrics.claims.inc()
        self._metrics.claimed.inc(len(rows))
        partner_ids = {p for row in rows if (p := callbacks.partner_of(row["subscription"]))}
        to_call = (
            {p.partner_id: p for p in await partners.read(conn, sorted(partner_ids))}
            if partner_ids
            else {}
        )
        for row in rows:
            self._in_flight[row["subscription"]] += 1
            url, secrets = row["url"], self._secrets
            if (partner_id := callbacks.partner_of(row["subscription"])) is not None:
                partner = to_call.get(partner_id)
                why = "partner unknown" if partner is None else partner.why_not_called()
                if partner is None or why is not None:
                    # No attempt made: the partner is no longer to be called.
                    self._judged(
                        Outcome(
                            row["notification_id"],
                            row["subscription"],
                            row["attempts"],
                            Verdict.DEAD,
                            why,
                        )
                    )
                    continue
                url, secrets = partner.callback_url or "", self._signing_secrets(partner)
            task = asyncio.create_task(self._send(row, url, secrets))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _signing_secrets(self, partner: callbacks.Partner) -> tuple[str, ...]:
        assert self._partner_key is not None  # partners are claimed only with the key
        out = []
        for version in partner.secret_versions:
            key = (partner.partner_id, version)
            if key not in self._partner_secrets:
                self._partner_secrets[key] = signing_secret(
                    self._partner_key, partner.partner_id, version
                )
            out.append(self._partner_secrets[key])
        return tuple(out)

    async def _send(self, row: Any, url: str, secrets: tuple[str, ...]) -> None:
        nid, attempts = row["notification_id"], row["attempts"] + 1
        try:
            error = await webhook.post(self._client, url, nid, bytes(row["body"]), secrets)
        except Exception as exc:  # e.g. a malformed URL: a failed attempt like any other
            error = f"{type(exc).__name__}: {exc}"
        self._judged(self._policy.judge(nid, row["subscription"], attempts, error))

    def _judged(self, outcome: Outcome) -> None:
        self._results.append(outcome)
        self._has_results.set()
        if len(self._results) >= self._record_batch:
            self._batch_full.set()

    async def _record_forever(self) -> None:
        """Record results as they come, a batch at a time; wait out database outages."""
        backoff = 0.2
        while True:
            await self._has_results.wait()
            # A short wait lets results that complete together share one statement.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_full.wait(), self._record_interval)
            self._has_results.clear()
            self._batch_full.clear()
            batch, self._results = self._results, []
            self._recording = batch
            try:
                await self._record(batch)
            except Exception as exc:
                log.warning("notify dispatcher: recording failed: %s", exc, exc_info=True)
                self._recording = []
                self._results = batch + self._results
                self._has_results.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            self._recording = []
            self._recorded(batch)

    async def _record(self, batch: list[Outcome]) -> None:
        # The pool's bounded wait: a pool that hands out no connection is a logged, retried
        # failure, not a recorder that waits in silence while its claimed rows hold every slot.
        async with self._pool.acquire() as conn:
            await store.record(conn, batch)

    def _recorded(self, batch: list[Outcome]) -> None:
        self._metrics.recordings.inc()
        now = asyncio.get_running_loop().time()
        for outcome in batch:
            self._in_flight[outcome.subscription] -= 1
            if outcome.verdict is Verdict.DELIVERED:
                self._metrics.delivered.inc()
            elif outcome.verdict is Verdict.DEAD:
                self._metrics.dead.inc()
            else:
                self._metrics.retried.inc()
                # A little after the database's due time, so the claim finds it due.
                due = now + outcome.retry_in + 0.01
                if self._next_retry is None or due < self._next_retry:
                    self._next_retry = due
        self._wake.set()  # slots are free, and each order's next event may be due now
        self._progress.set()

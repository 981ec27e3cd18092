"""A replay with known ground truth on the running stack (clock 1800x), sla SIGKILLed a
third of the way in: the figures sla gives through its API and /metrics equal what the
replay did, and no deadline fires twice.

The replay has one street to itself (one no handler key of another test can act in, with
no order of the replay's categories before it starts). Each order follows a plan:
resolved at its grid (some rejected by the reporter and resolved again there: rework),
whistled (吹哨) up one, two or three tiers and resolved there, left to time out at its
grid and resolved by the community, or left to time out all the way to its department and
resolved there late. Where each was resolved, on time or not, reopened or not and how
often it escalated for which reason is known before it starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from gridline.common.clock import ScaledClock
from gridline.common.events import DeadlineBreached, DeadlineWarning, Envelope
from gridline.common.policy.catalogue import Catalogue
from gridline.common.settings import PostgresSettings
from gridline.common.topics import SLA

from .stack import Stack, await_until, wait_until
from .test_pipeline import grid_point

pytestmark = pytest.mark.e2e

# The replay's categories: damaged-bin's limits (16 h at the grid: 32 s here) leave room
# for every planned move, crowd-gathering's (1, 2, 4, 8 h) reach the department quickly.
STEADY, QUICK = "damaged-bin", "crowd-gathering"
# Plans and how many orders follow each (1,500 orders).
PLANS = {
    "grid": 840,  # resolved at the grid
    "grid-rework": 60,  # resolved at the grid, rejected, resolved there again
    "whistle-1": 200,  # whistled to the community, resolved there
    "whistle-2": 150,  # to the street
    "whistle-3": 100,  # to the department
    "timeout-1": 100,  # timed out at the grid, resolved by the community
    "late": 50,  # QUICK: timed out up to the department, resolved there after its due time
}
RESOLVER = {
    "grid": "grid",
    "grid-rework": "grid",
    "whistle-1": "community",
    "whistle-2": "street",
    "whistle-3": "department",
    "timeout-1": "community",
    "late": "department",
}
CONCURRENCY = 24


@dataclass
class Place:
    street: str
    grids: dict[str, tuple[str, tuple[float, float]]]  # comprehensive grid -> (community, point)
    units: set[str]  # every grid and community of the street, special grids included


def replay_street(stack: Stack, pg_url: str) -> Place:
    """The first street with no handler unit of another test in it and no order of the
    replay's categories yet."""
    taken = set(stack.credentials["handler_units"].values())

    async def used() -> set[str]:
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch(
                "SELECT DISTINCT street_id FROM routing.work_orders"
                " WHERE category = ANY($1::text[])",
                [STEADY, QUICK],
            )
            return {r["street_id"] for r in rows}
        finally:
            await conn.close()

    busy = asyncio.run(used())
    streets: dict[str, Place] = {}
    for f in stack.city["features"]:
        p = f["properties"]
        place = streets.setdefault(p["street_id"], Place(p["street_id"], {}, set()))
        place.units |= {p["grid_id"], p["community_id"]}
        if p["grid_kind"] == "comprehensive":
            place.grids[p["grid_id"]] = (p["community_id"], grid_point(stack, p["grid_id"]))
    for street_id, place in sorted(streets.items()):
        units = {street_id, *place.units}
        if street_id not in busy and not units & taken and len(place.grids) >= 3:
            return place
    raise AssertionError("no street is free for the replay")


@dataclass
class Order:
    plan: str
    category: str
    grid: str
    community: str
    id: str = ""
    token: str = ""


class Replay:
    def __init__(
        self,
        stack: Stack,
        place: Place,
        keys: dict[str, str],
        catalogue: Catalogue,
        pool: asyncpg.Pool,
    ) -> None:
        self.stack = stack
        self.place = place
        self.keys = keys
        self.catalogue = catalogue
        self.pool = pool  # routing's and sla's tables, read to wait without HTTP polling
        self.routing = f"{stack.url('routing')}/v1/workorders"
        self.done = 0

    def key_of(self, order: Order, tier: str) -> str:
        unit = {
            "grid": order.grid,
            "community": order.community,
            "street": self.place.street,
            "department": self.catalogue.category(order.category).department,
        }[tier]
        return self.keys[unit]

    async def at(self, order: Order, tier: str, *, breached: bool = False) -> None:
        """Until routing holds the order at `tier` (and, with `breached`, sla has fired that
        assignment's breach)."""

        async def held() -> bool:
            row = await self.pool.fetchrow(
                "SELECT w.tier, w.state, w.grid_id, w.community_id, d.fired_at"
                " FROM routing.work_orders w"
                " LEFT JOIN sla.deadlines d"
                "  ON d.work_order_id = w.id AND d.assignment_seq = w.assignment_seq"
                " WHERE w.id = $1",
                order.id,
            )
            if row is None:
                return False
            # The grid routing found (a special grid may overlay the point).
            order.grid, order.community = row["grid_id"], row["community_id"]
            return (
                row["tier"] == tier
                and row["state"] in ("open", "accepted")
                and (not breached or row["fired_at"] is not None)
            )

        await await_until(held, within=120, what=f"{order.plan} {order.id} at {tier}")

    async def act(self, client: httpx.AsyncClient, order: Order, action: str, tier: str) -> None:
        r = await client.post(
            f"{self.routing}/{order.id}/{action}",
            json={"note": f"replay {order.plan}"},
            headers={"authorization": f"Bearer {self.key_of(order, tier)}"},
        )
        assert r.status_code == 200, (order, action, tier, r.text)

    async def run(self, client: httpx.AsyncClient, order: Order) -> None:
        lat, lon = self.place.grids[order.grid][1]
        created = await client.post(
            f"{self.stack.url('intake')}/open311/v2/requests.json",
            data={
                "api_key": self.stack.credentials["open311_api_key"],
                "service_code": order.category,
                "lat": str(lat),
                "long": str(lon),
                "description": f"replay {order.plan}",
            },
        )
        assert created.status_code == 200, created.text
        order.id, order.token = created.json()[0]["service_request_id"], created.json()[0]["token"]
        tiers = ["grid", "community", "street", "department"]
        if order.plan.startswith("whistle-"):
            for step in range(int(order.plan[-1])):
                await self.at(order, tiers[step])
                await self.act(client, order, "escalate", tiers[step])
        elif order.plan == "late":
            # Resolved only once its department's breach has fired: late, and the number
            # of breaches known whenever sla is killed.
            await self.at(order, "department", breached=True)
        resolver = RESOLVER[order.plan]
        await self.at(order, resolver)
        await self.act(client, order, "resolve", resolver)
        if order.plan == "grid-rework":
            await self.reject(client, order)
            await self.at(order, "grid")
            await self.act(client, order, "resolve", "grid")
        self.done += 1

    async def reject(self, client: httpx.AsyncClient, order: Order) -> None:
        """The reporter rejects the resolution once intake knows of it (within the window)."""

        async def rejected() -> bool:
            r = await client.post(
                f"{self.stack.url('intake')}/v1/reports/{order.id}/feedback",
                json={"outcome": "reject", "satisfaction": 1, "comment": "还在 still there"},
                headers={"authorization": f"Bearer {order.token}"},
            )
            if r.status_code == 409:  # intake has not seen the resolution yet
                return False
            assert r.status_code == 201 and r.json()["reopens"] is True, r.text
            return True

        await await_until(rejected, within=60, what=f"the rejection of {order.id}")


def plan_orders(place: Place) -> list[Order]:
    grids = sorted(place.grids)
    orders = []
    for plan, n in PLANS.items():
        for i in range(n):
            grid = grids[i % len(grids)]
            category = QUICK if plan == "late" else STEADY
            orders.append(Order(plan, category, grid, place.grids[grid][0]))
    return orders


def stack_district(stack: Stack, street: str) -> str:
    return str(
        next(
            f["properties"]["district_id"]
            for f in stack.city["features"]
            if f["properties"]["street_id"] == street
        )
    )


def settled(read: Callable[[], float], quiet: float = 2.0) -> float:
    """A city-wide figure once it has stopped moving for `quiet` seconds: earlier tests'
    last events may still be on their way into sla's snapshot."""
    last, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.25)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    return last


def escalations(stack: Stack, reason: str) -> float:
    """sla's escalation counter for `reason`, summed over its tiers."""
    with httpx.Client(timeout=10) as client:
        text = client.get(f"{stack.url('sla')}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gridline_escalations_total{") and f'reason="{reason}"' in line
    )


async def fired_events(order_ids: set[str]) -> list[Envelope]:
    """Every DeadlineBreached and DeadlineWarning on sla's topic for these orders, read from
    the beginning to the log end (no group: nothing committed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=os.environ.get("GRIDLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(SLA.name, p) for p in range(SLA.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Envelope] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    envelope = Envelope.model_validate(json.loads(record.value))
                    if envelope.subject in order_ids and envelope.type in (
                        DeadlineBreached.TYPE,
                        DeadlineWarning.TYPE,
                    ):
                        out.append(envelope)
        return out
    finally:
        await consumer.stop()


def test_a_replay_ends_with_figures_equal_to_its_ground_truth_despite_a_sigkill_of_sla(
    stack: Stack, catalogue: Catalogue, pg_settings: PostgresSettings
) -> None:
    place = replay_street(stack, pg_settings.url)
    orders = plan_orders(place)
    departments = sorted({catalogue.category(c).department for c in (STEADY, QUICK)})
    units = [place.street, *sorted(place.units), *departments]
    with httpx.Client(timeout=10) as client:
        keys = stack.issue_handler_keys(client, units)
    whistled_before = settled(lambda: escalations(stack, "whistle"))

    async def run_all() -> Replay:
        limits = httpx.Limits(max_connections=CONCURRENCY * 2)
        async with (
            httpx.AsyncClient(timeout=30, limits=limits) as client,
            asyncpg.create_pool(pg_settings.url, min_size=2, max_size=8) as pool,
        ):
            replay = Replay(stack, place, keys, catalogue, pool)
            slow = [o for o in orders if o.plan in ("late", "timeout-1")]
            queue: asyncio.Queue[Order] = asyncio.Queue()
            for order in orders:
                if order.plan not in ("late", "timeout-1"):
                    queue.put_nowait(order)

            async def worker() -> None:
                while not queue.empty():
                    await replay.run(client, queue.get_nowait())

            async def kill_sla() -> None:
                await await_until(
                    lambda: asyncio.sleep(0, replay.done >= len(orders) // 3),
                    within=300,
                    what="a third of the replay",
                )
                stack.processes["sla"].kill(signal.SIGKILL)
                await asyncio.sleep(2)
                stack.start("sla")
                await asyncio.to_thread(stack.processes["sla"].wait_ready, 90)

            # The slow plans mostly wait: each its own task, their waits overlapping the rest.
            await asyncio.gather(
                kill_sla(),
                *(replay.run(client, o) for o in slow),
                *(worker() for _ in range(CONCURRENCY)),
            )
            return replay

    clock = ScaledClock(
        float(stack.env["GRIDLINE_CLOCK_SPEED"]), float(stack.env["GRIDLINE_CLOCK_EPOCH"])
    )
    began = clock.now()
    replay = asyncio.run(run_all())
    assert replay.done == len(orders)
    # The calendar months the replay's days fall in (Shanghai, the catalogue's zone).
    months = sorted(
        {t.astimezone(ZoneInfo(catalogue.timezone)).strftime("%Y-%m") for t in (began, clock.now())}
    )

    # The ground truth, per category: where each was resolved (its latest resolution), on
    # time or not, reopened or not, escalated how often for which reason.
    truth = {
        category: Counter(RESOLVER[o.plan] for o in orders if o.category == category)
        for category in (STEADY, QUICK)
    }
    whistles = sum(int(o.plan[-1]) for o in orders if o.plan.startswith("whistle-"))
    late = {STEADY: 0, QUICK: PLANS["late"]}
    reworked = PLANS["grid-rework"]
    escalated = {
        STEADY: {"timeout": PLANS["timeout-1"], "whistle": whistles, "rule": 0},
        QUICK: {"timeout": 3 * PLANS["late"], "whistle": 0, "rule": 0},
    }

    sla = stack.url("sla")
    with httpx.Client(timeout=10) as client:
        for category in (STEADY, QUICK):
            expected = sum(truth[category].values())

            def figures(category: str = category, expected: int = expected) -> Any:
                f = client.get(
                    f"{sla}/v1/measures",
                    params={"scope": f"street:{place.street}", "category": category},
                ).json()
                return f if f["resolved"] == expected else None

            f = wait_until(figures, timeout=60, what=f"sla's figures for {category}")
            assert f["resolved_by_tier"] == {
                t: truth[category][t] for t in ("grid", "community", "street", "department")
            }
            assert f["on_time_rate"] == (expected - late[category]) / expected
            quality = f["quality"]
            assert quality["opened"] == expected
            assert quality["escalations"] == escalated[category]
            assert quality["reopened"] == (reworked if category == STEADY else 0)
            assert quality["rework_rate"] == quality["reopened"] / expected
            assert quality["feedbacks"] == (reworked if category == STEADY else 0)
            if category == STEADY:  # every feedback was a rejection with satisfaction 1
                assert (quality["mean_satisfaction"], quality["satisfied_share"]) == (1.0, 0.0)
        whole = client.get(
            f"{sla}/v1/measures", params={"scope": f"street:{place.street}", "category": "*"}
        ).json()
        resolved = truth[STEADY] + truth[QUICK]
        n = sum(resolved.values())
        assert whole["resolved"] == n
        assert whole["attainment"] == pytest.approx(
            {
                "grid": resolved["grid"] / n,
                "community": (resolved["grid"] + resolved["community"]) / n,
                "street": (n - resolved["department"]) / n,
            }
        )

        # /metrics (a snapshot refreshed in the background, so waited for): the counters
        # per street (a re-resolution counts once more), the reopened (rework) counter, and
        # the street's attainment gauge over 30 days.
        expected_metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
            ("gridline_workorders_reopened_total", (("tier", "grid"), ("category", STEADY))): (
                reworked
            ),
        }
        for category in (STEADY, QUICK):
            for tier in ("grid", "community", "street", "department"):
                expected_metrics[
                    (
                        "gridline_workorders_resolved_total",
                        (("tier", tier), ("category", category)),
                    )
                ] = truth[category][tier] + (
                    reworked if (category, tier) == (STEADY, "grid") else 0
                )

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            return {
                (name, labels): stack.metric(
                    client, "sla", name, street_id=place.street, **dict(labels)
                )
                or 0
                for name, labels in expected_metrics
            }

        wait_until(lambda: scraped() == expected_metrics, what="the counters on /metrics")
        for tier, share in whole["attainment"].items():
            gauge = stack.metric(
                client,
                "sla",
                "gridline_sla_tier_attainment_ratio",
                scope_level="street",
                scope_id=place.street,
                tier=tier,
                window="30d",
            )
            assert gauge == pytest.approx(share), tier

    # Two-way assessment and the monthly report: each grid's own completions (a reworked
    # order resolved twice there counts twice), all on time; the street's row.
    completed = Counter(
        o.grid
        for o in orders
        if RESOLVER[o.plan] == "grid"
        for _ in range(1 + (o.plan == "grid-rework"))
    )
    reopened_at = Counter(o.grid for o in orders if o.plan == "grid-rework")
    with httpx.Client(timeout=30) as client:
        ranking = client.get(
            f"{sla}/v1/assessments",
            params={"scope": f"street:{place.street}", "level": "grid", "window": "30d"},
        ).json()
        units = {u["unit"]: u for u in ranking["units"]}
        assert {u: units[f"grid:{u}"]["completed"] for u in completed} == dict(completed)
        for grid in completed:
            unit = units[f"grid:{grid}"]
            assert unit["on_time_share"] == 1.0
            assert unit["rework_share"] == pytest.approx(reopened_at[grid] / completed[grid])
        scores = [u["score"] for u in ranking["units"]]
        assert scores == sorted(scores, reverse=True)

        street_rows: list[dict[str, Any]] = []
        grid_completed: Counter[str] = Counter()
        for month in months:
            report = client.get(
                f"{sla}/v1/reports/monthly",
                params={"street": place.street, "month": month, "format": "json"},
            )
            assert report.status_code == 200, report.text
            rows = report.json()["rows"]
            street_rows += [r for r in rows if r["level"] == "street"]
            for r in rows:
                if r["level"] == "grid":
                    grid_completed[r["unit"].removeprefix("grid:")] += r["completed"] or 0
        assert sum(r["resolved"] or 0 for r in street_rows) == n
        assert {g: grid_completed[g] for g in completed} == dict(completed)
        csv = client.get(
            f"{sla}/v1/reports/monthly",
            params={"street": place.street, "month": months[-1], "format": "csv"},
        )
        assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf"), csv.text[:200]
        header = csv.content.decode("utf-8-sig").splitlines()[0]
        assert "网格内解决率 (grid_attainment)" in header and "按期结案率 (on_time_rate)" in header
        # A street sla never heard of is a 404 that names it, not a month of zeros (its id
        # in Chinese with a "/" and a space: ids are the city's own text).
        unknown = client.get(
            f"{sla}/v1/reports/monthly",
            params={"street": "天宁/街道 1", "month": months[-1], "format": "csv"},
        )
        assert unknown.status_code == 404, unknown.text
        assert unknown.json()["detail"].startswith("scope: no street '天宁/街道 1'"), unknown.text

    # Deadlines: each assignment that breached fired once (one event id), SIGKILL or not:
    # timeout-1 orders once at the grid, late ones at grid, community, street and department.
    by_order = {o.id: o for o in orders}
    fired = asyncio.run(fired_events(set(by_order)))
    ids: dict[tuple[str, int, str], set[str]] = {}
    for envelope in fired:
        what = envelope.data.get("level", "breach")
        key = (str(envelope.subject), envelope.data["assignment_seq"], what)
        ids.setdefault(key, set()).add(envelope.id)
    assert all(len(v) == 1 for v in ids.values()), {k: v for k, v in ids.items() if len(v) > 1}
    breached = Counter(by_order[order_id].plan for order_id, _, what in ids if what == "breach")
    assert breached == {"timeout-1": PLANS["timeout-1"], "late": 4 * PLANS["late"]}
    # A red warning at each breach; the late orders' red at the department goes to the
    # district (where nothing escalates).
    red = {(o, seq) for o, seq, what in ids if what == "red"}
    assert {(o, seq) for o, seq, what in ids if what == "breach"} <= red
    districts = {
        e.data["supervisor_id"]
        for e in fired
        if e.type == DeadlineWarning.TYPE
        and e.data["level"] == "red"
        and e.data["tier"] == "department"
    }
    assert districts == {stack_district(stack, place.street)}
    # Escalations by whistle: only the replay whistles while it runs (timeouts are
    # city-wide in /metrics, where the open orders of other tests time out too).
    wait_until(
        lambda: escalations(stack, "whistle") - whistled_before == whistles,
        what=f"{whistles} more whistle escalations on /metrics",
    )
    assert settled(lambda: escalations(stack, "whistle")) - whistled_before == whistles

"""Two in-process costs quoted in docs/performance.md, measured alone:

- the garbage collector: a full collection of intake's start-up heap (its modules, jieba's
  dictionary), then the same after `gc.freeze()` as every service now does once started;
- working calendars: `WorkCalendar.add` and `.between` on a two-interval calendar with
  holidays, per call;
- intake's duplicate linking within one group commit (`duplicates.link`), per batch of the
  largest size (256 reports, one category, spread over the demo city as in `make bench`),
  at the bench's radius (5 cm) and the demo catalogue's (250 m).

Run it at two commits to compare them (it uses only what both sides have):
`.venv/bin/python bench/python_costs.py`.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import timeit
from datetime import UTC, date, datetime, timedelta

from gridline.common.policy.calendar import WorkCalendar


def full_collection_ms(repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        gc.collect(2)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    from gridline.intake.domain import tagging

    tagging.warm_up()
    import gridline.intake.entrypoints.api  # noqa: F401  (intake's modules, as started)

    print(f"tracked objects after intake's start-up: {len(gc.get_objects())}")
    print(f"full collection, start-up heap: {full_collection_ms():.1f} ms (median of 5)")
    gc.freeze()
    print(f"full collection, start-up heap frozen: {full_collection_ms():.2f} ms")
    gc.unfreeze()

    calendar = WorkCalendar(
        hours=["08:30-12:00", "13:30-17:30"],
        holidays=[date(2026, 10, 1), date(2026, 10, 2)],
        workdays=[date(2026, 9, 27)],
    )
    start = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    n = 20_000
    for span in (timedelta(hours=4), timedelta(hours=24)):
        add = timeit.repeat(
            lambda s=span: calendar.add(start, s, "Asia/Shanghai"), number=n, repeat=5
        )
        between = timeit.repeat(
            lambda s=span: calendar.between(start, start + 3 * s, "Asia/Shanghai"),
            number=n,
            repeat=5,
        )
        print(
            f"calendar, {span} of working time: add {min(add) / n * 1e6:.1f} us,"
            f" between (3x that span of clock time) {min(between) / n * 1e6:.1f} us"
        )

    from gridline.intake.domain.duplicates import NewReport, Stored, link

    rng = random.Random(7)
    batch = [
        NewReport(
            f"o{i}",
            "exposed-garbage",
            rng.uniform(31.64, 31.92),  # the demo city's box
            rng.uniform(119.82, 120.10),
            start + timedelta(milliseconds=i),
        )
        for i in range(256)
    ]
    stored = [Stored(None, False)] * len(batch)
    for radius in (0.05, 250.0):
        runs = timeit.repeat(
            lambda r=radius: link(batch, stored, radius_m=r, window=timedelta(hours=72)),
            number=20,
            repeat=5,
        )
        merged = sum(
            j is not None for j in link(batch, stored, radius_m=radius, window=timedelta(hours=72))
        )
        print(
            f"duplicate linking, a batch of 256 at {radius} m ({merged} merged):"
            f" {min(runs) / 20 * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()

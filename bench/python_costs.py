"""Two in-process costs quoted in docs/performance.md, measured alone:

- the garbage collector: a full collection of intake's start-up heap (its modules, jieba's
  dictionary), then the same after `gc.freeze()` as every service now does once started;
- working calendars: `WorkCalendar.add` and `.between` on a two-interval calendar with
  holidays, per call.

Run it at two commits to compare them (it uses only what both sides have):
`.venv/bin/python bench/python_costs.py`.
"""

from __future__ import annotations

import gc
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


if __name__ == "__main__":
    main()

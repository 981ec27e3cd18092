"""What events add to sla's counters."""

from __future__ import annotations

import pytest

from gridline.sla.domain.counts import HISTOGRAM, RESOLVED, Tally

pytestmark = pytest.mark.unit


def test_increments_of_one_counter_are_summed_and_each_counter_listed_once() -> None:
    tally = Tally()
    tally.resolved("s1", "grid", "garbage", 1800.0, [3600.0, 7200.0])
    tally.resolved(None, "grid", "garbage", 5000.0, [3600.0, 7200.0])
    items = {(m, tuple(sorted(labels.items()))): v for m, labels, v in tally.items()}
    assert len(items) == len(tally.items())
    grid = (("tier", "grid"),)
    assert items[(f"{HISTOGRAM}_bucket", (("le", "3600.0"), ("tier", "grid")))] == 1
    assert items[(f"{HISTOGRAM}_bucket", (("le", "7200.0"), ("tier", "grid")))] == 2
    assert items[(f"{HISTOGRAM}_bucket", (("le", "+Inf"), ("tier", "grid")))] == 2
    assert items[(f"{HISTOGRAM}_sum", grid)] == 6800.0
    assert items[(f"{HISTOGRAM}_count", grid)] == 2
    street = (("category", "garbage"), ("street_id", "none"), ("tier", "grid"))
    assert items[(RESOLVED, street)] == 1

"""Time to resolve as a histogram with fixed, log-spaced bucket bounds, kept per tally row
and summed over days, from which p50 / p90 / p99 are interpolated.

The bounds run from one minute to 2^18 minutes (about 182 days), eight buckets per
doubling: an estimate lies in the same bucket as the true percentile of the counted times,
so it is within a factor 2^(1/8) (9.05 %) of it; past the last bound it is that bound."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence

PER_DOUBLING = 8
FIRST_BOUND = 60.0  # seconds
BOUNDS: tuple[float, ...] = tuple(
    FIRST_BOUND * 2 ** (k / PER_DOUBLING) for k in range(18 * PER_DOUBLING + 1)
)
BUCKETS = len(BOUNDS) + 1  # the last one holds what is over the last bound
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
RELATIVE_ERROR = 2 ** (1 / PER_DOUBLING) - 1


def bucket_of(seconds: float) -> int:
    """The bucket (lower bound, upper bound] that holds `seconds`: 0 for up to a minute."""
    return bisect_left(BOUNDS, seconds)


def dense(buckets: Mapping[int, int]) -> list[int]:
    """A sparse histogram as its full row of BUCKETS counts."""
    row = [0] * BUCKETS
    for i, n in buckets.items():
        row[i] += n
    return row


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) in seconds, interpolated geometrically inside its
    bucket (linearly in the first, which starts at 0); None for an empty histogram."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n > 0 and seen + n >= rank:
            share = (rank - seen) / n
            if i == 0:
                return BOUNDS[0] * share
            if i >= len(BOUNDS):
                return BOUNDS[-1]
            low, high = BOUNDS[i - 1], BOUNDS[i]
            # Clamped: floating point may land a hair past the bucket's upper bound.
            return min(high, low * math.exp(share * math.log(high / low)))
        seen += n
    return BOUNDS[-1]  # only reached through negative counts, which sums never have


def percentiles(counts: Sequence[int]) -> dict[str, float | None]:
    """p50, p90 and p99 in hours."""
    result: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        seconds = percentile(counts, q)
        result[name] = None if seconds is None else seconds / 3600
    return result

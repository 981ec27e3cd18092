"""The consumer's batching keeps each key's events in order and applies each once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.common.consumer import in_key_order

pytestmark = [pytest.mark.unit]


def item(n: int, key: bytes | None, handler: Any) -> Any:
    return SimpleNamespace(record=SimpleNamespace(key=key), incoming=n, handler=handler)


async def h1(*_: Any) -> None: ...
async def h2(*_: Any) -> None: ...


@given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", None]), st.booleans()), max_size=60))
def test_each_key_keeps_its_order_and_every_event_is_applied_once(
    spec: list[tuple[bytes | None, bool]],
) -> None:
    items = [item(n, key, h1 if first else h2) for n, (key, first) in enumerate(spec)]
    calls = in_key_order(items)  # type: ignore[arg-type]
    flat = [n for _, events in calls for n in events]
    assert sorted(flat) == list(range(len(items)))
    for key in (b"a", b"b", b"c"):
        mine = [n for n in flat if spec[n][0] == key]
        assert mine == sorted(mine)
    for handler, events in calls:  # each call holds only its handler's events
        assert all((h1 if spec[n][1] else h2) is handler for n in events)


def test_one_event_per_key_is_one_call_per_handler() -> None:
    items = [item(n, f"k{n}".encode(), h1 if n % 2 else h2) for n in range(100)]
    calls = in_key_order(items)  # type: ignore[arg-type]
    assert len(calls) == 2

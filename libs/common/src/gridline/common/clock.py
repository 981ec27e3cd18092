"""The one clock: real time, or real time run faster from a shared epoch."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What domain code and adapters need of time."""

    @property
    def speed(self) -> float: ...

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class ScaledClock:
    """Simulated time = epoch + (real time - epoch) x speed.

    With speed 1 this is the wall clock. Sleeping takes simulated seconds, so a time limit
    of four hours passes in four seconds at speed 3600.
    """

    def __init__(self, speed: float = 1.0, epoch: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self._speed = speed
        self._epoch = time.time() if epoch is None else epoch

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        real = time.time()
        return datetime.fromtimestamp(self._epoch + (real - self._epoch) * self._speed, UTC)

    def real_seconds(self, simulated: float) -> float:
        return simulated / self._speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """A clock that moves only when told to; for unit tests of pure code."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    @property
    def speed(self) -> float:
        return 1.0

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    async def sleep(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)

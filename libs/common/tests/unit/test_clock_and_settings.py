"""The one clock and settings that fail fast."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from gridline.common.clock import ScaledClock
from gridline.common.ids import uuid7
from gridline.common.settings import ClockSettings, KafkaSettings

pytestmark = pytest.mark.unit


def test_scaled_clock_runs_speed_times_faster_from_the_shared_epoch() -> None:
    epoch = time.time() - 10
    clock = ScaledClock(speed=3600, epoch=epoch)
    ahead = clock.now().timestamp() - epoch
    assert 10 * 3600 <= ahead <= 12 * 3600
    assert clock.real_seconds(7200) == 2


def test_clock_speed_without_epoch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINE_CLOCK_SPEED", "60")
    monkeypatch.delenv("GRIDLINE_CLOCK_EPOCH", raising=False)
    with pytest.raises(ValidationError, match="GRIDLINE_CLOCK_EPOCH"):
        ClockSettings()


def test_bad_kafka_bootstrap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINE_KAFKA_BOOTSTRAP", "localhost")
    with pytest.raises(ValidationError, match="host:port"):
        KafkaSettings()


def test_uuid7_sorts_by_creation_time() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(u.version == 7 for u in ids)
    assert [u.int >> 80 for u in ids] == sorted(u.int >> 80 for u in ids)

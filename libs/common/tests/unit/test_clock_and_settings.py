"""The one clock and settings that fail fast."""

from __future__ import annotations

import time

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from gridline.common.clock import ScaledClock
from gridline.common.ids import uuid7
from gridline.common.settings import ClockSettings, KafkaSettings, ServiceSettings, load

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


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore")

    scan_interval: float = Field(default=1.0, gt=0)


def test_bad_settings_stop_with_the_variables_to_fix_and_not_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_SCAN_INTERVAL", "-1")
    monkeypatch.setenv("GRIDLINE_ADMIN_KEY", "short-secret")
    with pytest.raises(SystemExit) as stopped:
        load(DemoSettings)
    message = str(stopped.value)
    assert "DEMO_SCAN_INTERVAL: Input should be greater than 0" in message
    assert "GRIDLINE_ADMIN_KEY: String should have at least 16 characters" in message
    assert "short-secret" not in message
    # Settings nested in every service's (their own prefix), and checks across fields.
    monkeypatch.delenv("DEMO_SCAN_INTERVAL")
    monkeypatch.delenv("GRIDLINE_ADMIN_KEY")
    monkeypatch.setenv("GRIDLINE_INBOX_RETENTION_HOURS", "0.5")
    with pytest.raises(SystemExit, match="GRIDLINE_INBOX_RETENTION_HOURS: Input should be"):
        load(DemoSettings)
    monkeypatch.delenv("GRIDLINE_INBOX_RETENTION_HOURS")
    monkeypatch.setenv("GRIDLINE_CLOCK_SPEED", "10")
    with pytest.raises(SystemExit, match=r"GRIDLINE_CLOCK_EPOCH \(unix seconds\) is required"):
        load(DemoSettings)
    monkeypatch.delenv("GRIDLINE_CLOCK_SPEED")
    assert load(DemoSettings).scan_interval == 1.0

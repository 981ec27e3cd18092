"""sla's settings (env prefix SLA_)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from gridline.common.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    port: int = Field(default=8002, ge=1, le=65535)
    # Real seconds: the deadline scheduler's longest sleep (it wakes at the earliest
    # pending due time when that is sooner), and between metric snapshots.
    scan_interval: float = Field(default=0.5, gt=0, le=60)
    # Rows fired per transaction, doubled round by round up to the max while behind.
    scan_batch: int = Field(default=500, ge=1, le=100_000)
    scan_batch_max: int = Field(default=8000, ge=1, le=100_000)
    metrics_refresh: float = Field(default=2.0, gt=0, le=300)
    # Bucket bounds of gridline_workorder_resolution_seconds, in hours: the default time
    # limits of the demo catalogue, config/catalogue.yaml (a unit test keeps them equal).
    resolution_buckets_hours: str = "1,2,4,8,16,24,32,40,56,80,120"

    @field_validator("resolution_buckets_hours")
    @classmethod
    def _buckets(cls, value: str) -> str:
        try:
            hours = [float(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(
                "SLA_RESOLUTION_BUCKETS_HOURS: comma-separated hours, e.g. 4,8,24"
            ) from None
        if hours != sorted(set(hours)) or hours[0] <= 0:
            raise ValueError("SLA_RESOLUTION_BUCKETS_HOURS must be positive and increasing")
        return value

    @property
    def bucket_seconds(self) -> list[float]:
        return [float(h) * 3600 for h in self.resolution_buckets_hours.split(",")]

"""notify's settings (env prefix NOTIFY_)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from gridline.common.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    port: int = Field(default=8003, ge=1, le=65535)
    # Comma-separated webhook URLs; each receives every assigned / escalated / resolved event.
    webhook_urls: str = ""
    webhook_secret: str | None = Field(default=None, min_length=16)
    max_attempts: int = Field(default=12, ge=1, le=100)
    backoff_base: float = Field(default=1.0, gt=0, le=3600)
    backoff_max: float = Field(default=300.0, gt=0, le=86_400)
    timeout: float = Field(default=5.0, gt=0, le=60)
    # Sends in flight per subscription: a slow receiver fills only its own slots. A slot is
    # held from claim until the outcome is recorded, so this bounds one receiver's rate
    # (measured: 16 slots drained ~1,600/s, 64 ~3,500/s).
    concurrency: int = Field(default=64, ge=1, le=256)
    # Real seconds: the fallback claim when no insert notified (retries coming due are
    # also claimed on time without it), and how long results wait to share one UPDATE.
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    record_interval: float = Field(default=0.005, ge=0, le=1)

    @property
    def urls(self) -> list[str]:
        return [u.strip() for u in self.webhook_urls.split(",") if u.strip()]

    @model_validator(mode="after")
    def _secret_needed(self) -> NotifySettings:
        if self.urls and not self.webhook_secret:
            raise ValueError(
                "NOTIFY_WEBHOOK_SECRET (16+ characters) is required with NOTIFY_WEBHOOK_URLS"
            )
        bad = [u for u in self.urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"NOTIFY_WEBHOOK_URLS must be http(s) URLs, got {bad}")
        return self

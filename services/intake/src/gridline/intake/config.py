"""intake's settings (env prefix INTAKE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gridline.common.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = Field(default=8000, ge=1, le=65535)
    # Comma-separated keys accepted as Open311 api_key: citizen apps, and partner apps
    # (delivery riders' employers) whose reports are attributed to source=partner.
    open311_api_keys: str = ""
    partner_keys: str = ""
    # Where clients reach this service, for discovery.json.
    public_url: str | None = None
    contact: str = "Gridline operations <ops@gridline.invalid>"
    policy_refresh: float = Field(default=1.0, gt=0, le=60)
    # Group commit of Open311 POSTs: while reports are queuing, wait up to this long for
    # more before committing them together (a lone report on an idle writer never waits).
    group_commit_wait_ms: float = Field(default=2.0, ge=0, le=50)
    # The most reports one transaction stores.
    group_commit_max_rows: int = Field(default=256, ge=1, le=5000)
    # How long an Idempotency-Key is remembered (its answer replayed), on the service clock.
    idempotency_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)

    def key_sources(self) -> dict[str, str]:
        keys: dict[str, str] = {}
        for raw, source in ((self.open311_api_keys, "citizen"), (self.partner_keys, "partner")):
            for key in raw.split(","):
                if key.strip():
                    keys[key.strip()] = source
        return keys

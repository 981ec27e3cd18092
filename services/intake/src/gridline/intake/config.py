"""intake's settings (env prefix INTAKE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gridline.common.settings import ServiceSettings
from gridline.intake.domain.keys import KeyRing, Role, split_keys


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = Field(default=8000, ge=1, le=65535)
    # Comma-separated keys, one setting per role (domain/keys.py): citizen apps (Open311
    # clients, source=citizen), sensors (source=sensor) and handlers' tools
    # (source=grid_worker). GRIDLINE_ADMIN_KEY is the admin role's key. Partners' keys
    # come from the partner registry (`gridline partners add`), not from settings.
    open311_api_keys: str = ""
    sensor_keys: str = ""
    handler_keys: str = ""
    # Where clients reach this service, for discovery.json.
    public_url: str | None = None
    contact: str = "Gridline operations <ops@gridline.invalid>"
    policy_refresh: float = Field(default=1.0, gt=0, le=60)
    # Group commit of Open311 POSTs: while reports are queuing, wait up to this long for
    # more before committing them together (a lone report on an idle writer never waits).
    group_commit_wait_ms: float = Field(default=2.0, ge=0, le=50)
    # The most reports one transaction stores.
    group_commit_max_rows: int = Field(default=256, ge=1, le=5000)
    # Accepted reports wait in the outbox while Kafka is away; once the relay has failed to
    # reach it for this long, writes are refused with 503 until it publishes again.
    kafka_outage_grace_s: float = Field(default=30.0, ge=0, le=3600)
    # The Retry-After (seconds) of every 503 intake answers.
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    # How long an Idempotency-Key is remembered (its answer replayed), on the service clock.
    idempotency_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # How often the partner directory (keys, limits, secrets' versions) is re-read.
    partner_refresh_s: float = Field(default=1.0, gt=0, le=60)

    def key_ring(self) -> KeyRing:
        return KeyRing.of(
            {
                Role.OPEN311_CLIENT: split_keys(self.open311_api_keys),
                Role.SENSOR: split_keys(self.sensor_keys),
                Role.HANDLER: split_keys(self.handler_keys),
                Role.ADMIN: split_keys(self.admin_key),
            }
        )

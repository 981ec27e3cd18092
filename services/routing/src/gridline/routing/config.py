"""Routing's settings (env prefix ROUTING_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gridline.common.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTING_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535)
    # Seconds between checks for a policy loaded through another routing instance.
    policy_refresh: float = Field(default=2.0, gt=0, le=300)
    # Seconds between sweeps that close resolved orders whose feedback window passed.
    close_sweep_interval: float = Field(default=2.0, gt=0, le=3600)

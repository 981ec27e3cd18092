"""sla's HTTP app: the operations endpoints (/healthz, /readyz, /metrics)."""

from __future__ import annotations

from fastapi import FastAPI

from gridline.common.http import service_app
from gridline.sla.bootstrap import bootstrap
from gridline.sla.config import SlaSettings


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    return service_app(
        "sla",
        description="Keeps due times, fires breaches once, and measures tier attainment.",
        settings=settings or SlaSettings(),
        bootstrap=bootstrap,
    )

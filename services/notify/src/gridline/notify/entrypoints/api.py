"""notify's HTTP app: the operations endpoints (/healthz, /readyz, /metrics)."""

from __future__ import annotations

from fastapi import FastAPI

from gridline.common.http import service_app
from gridline.common.settings import load
from gridline.notify.bootstrap import bootstrap
from gridline.notify.config import NotifySettings


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    return service_app(
        "notify",
        description="Delivers work-order events to signed webhooks, retried with backoff.",
        settings=settings or load(NotifySettings),
        bootstrap=bootstrap,
    )

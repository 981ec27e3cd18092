"""The app every service runs: what its start-up built is kept out of the collector's
walk (gc.freeze), so that full collections under load stay short."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from gridline.common.http import service_app
from gridline.common.settings import ServiceSettings


async def test_what_start_up_built_is_frozen_once_the_service_runs() -> None:
    built: list[Any] = []

    @asynccontextmanager
    async def bootstrap(_: Any) -> AsyncIterator[Any]:
        built.append({str(i): [i] for i in range(1_000)})  # a catalogue, say
        yield SimpleNamespace(runtime=None)

    app = service_app("test", description="t", settings=ServiceSettings(), bootstrap=bootstrap)
    gc.unfreeze()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 1_000
            assert not any(gc.is_tracked(o) and o is built[0] for o in gc.get_objects())
    finally:
        gc.unfreeze()

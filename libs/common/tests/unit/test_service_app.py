"""The app every service runs: what its start-up built is kept out of the collector's
walk (gc.freeze), so that full collections under load stay short."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from gridline.common.http import attachment, service_app
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


def test_a_download_name_in_any_script_makes_a_latin1_header_with_the_exact_name() -> None:
    name = 'gridline-天宁街道/1 "x"-2026-11.csv'
    header = attachment(name)
    header.encode("latin-1")  # what a header must be; the name as-is failed the answer
    plain, exact = header.removeprefix("attachment; ").split("; ")
    assert plain == 'filename="gridline-_____1__x_-2026-11.csv"'
    assert unquote(exact.removeprefix("filename*=UTF-8''")) == name

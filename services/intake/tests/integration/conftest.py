"""intake's integration tests: a pool on a scratch schema of the real PostgreSQL, with
intake's migrations applied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import resources

import pytest

from gridline.common.pg import Pool, migrate, open_pool
from gridline.common.settings import PostgresSettings


@pytest.fixture
async def pool(pg_settings: PostgresSettings, scratch_schema: str) -> AsyncIterator[Pool]:
    async with open_pool(pg_settings, scratch_schema) as pool:
        await migrate(pool, scratch_schema, [resources.files("gridline.intake") / "migrations"])
        yield pool

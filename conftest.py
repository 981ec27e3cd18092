"""Fixtures shared by every test folder: where the real Kafka and PostgreSQL are."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gridline.common.kafka import ensure_topics
from gridline.common.settings import KafkaSettings, PostgresSettings
from gridline.common.topics import ALL_TOPICS


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    return KafkaSettings()


@pytest.fixture(scope="session")
def pg_settings() -> PostgresSettings:
    return PostgresSettings()


@pytest.fixture(scope="session")
async def stack_topics(kafka_settings: KafkaSettings) -> None:
    await ensure_topics(kafka_settings, ALL_TOPICS)


@pytest.fixture
def unique() -> str:
    """A short random suffix that keeps tests' schemas, groups and topics apart."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def scratch_schema(pg_settings: PostgresSettings, unique: str) -> AsyncIterator[str]:
    """A throw-away schema name, dropped after the test."""
    schema = f"t_{unique}"
    yield schema
    conn = await asyncpg.connect(pg_settings.url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def pytest_report_header() -> list[str]:
    return [
        f"kafka: {os.environ.get('GRIDLINE_KAFKA_BOOTSTRAP', '127.0.0.1:9092')}",
        f"postgres: {os.environ.get('DATABASE_URL', '(default)')}",
    ]

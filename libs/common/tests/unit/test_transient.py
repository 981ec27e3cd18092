"""Which failures a consumer waits out (the database or network) and which count against
the event (and finally dead-letter it)."""

from __future__ import annotations

import asyncpg
import pytest

from gridline.common.pg import is_transient

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.AdminShutdownError(
            "terminating connection due to administrator command"
        ),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.InternalClientError("cannot switch to state 15; another operation is in progress"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DiskFullError("could not extend file"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        TimeoutError(),
    ],
    ids=type,
)
def test_outages_are_waited_out(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedColumnError("column does not exist"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax"),
        ValueError("bad data"),
        KeyError("x"),
    ],
    ids=type,
)
def test_faults_of_the_event_or_the_code_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)

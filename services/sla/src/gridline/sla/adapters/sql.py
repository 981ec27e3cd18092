"""Set-based SQL that sla's tables share: rows as the column arrays `unnest` takes, and
counts added to the rows of their keys in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from gridline.common.pg import Connection

Column = tuple[str, str]  # name, PostgreSQL type


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as the column arrays `unnest` takes."""
    return [[row[i] for row in rows] for i in range(width)]


def counts(names: Sequence[str], kind: str = "int") -> list[Column]:
    return [(name, kind) for name in names]


async def add_counts(
    conn: Connection,
    table: str,
    keys: Sequence[Column],
    counted: Sequence[Column],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Upsert `rows` (the key values, then the counts, in the order named): a new key's
    row is inserted, a known one's counts are added to. In key order, so that concurrent
    transactions lock rows in one order; each key at most once."""
    if not rows:
        return
    named = [*keys, *counted]
    arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(named, 1))
    sums = ", ".join(f"{c} = t.{c} + EXCLUDED.{c}" for c, _ in counted)
    await conn.execute(
        f"INSERT INTO {table} AS t ({', '.join(name for name, _ in named)})"
        f" SELECT * FROM unnest({arrays})"
        f" ON CONFLICT ({', '.join(name for name, _ in keys)}) DO UPDATE SET {sums}",
        *columns(sorted(rows, key=lambda r: tuple(r[: len(keys)])), len(named)),
    )


async def sums_by_scope(
    conn: Connection,
    table: str,
    counted: Sequence[Column],
    scopes: Sequence[str],
    category: str,
    first: date,
    last: date,
) -> dict[str, tuple[Any, ...]]:
    """Each scope's counts of one category summed over local days first..last, from a
    table keyed (scope, category, day): one statement, an index range scan per scope.
    A scope without rows sums to zeros."""
    total = ", ".join(f"coalesce(sum({c}), 0)::{kind}" for c, kind in counted)
    rows = await conn.fetch(
        f"SELECT scope, {total} FROM {table} WHERE scope = ANY($1::text[]) AND category = $2"
        " AND day BETWEEN $3 AND $4 GROUP BY scope",
        list(scopes),
        category,
        first,
        last,
    )
    found = {r["scope"]: tuple(r.values())[1:] for r in rows}
    zero = tuple(0.0 if kind == "float8" else 0 for _, kind in counted)
    return {scope: found.get(scope, zero) for scope in scopes}

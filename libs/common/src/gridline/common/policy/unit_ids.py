"""Unit ids as a city writes them: the one rule the loads check and sla's scopes read.

A grid's, community's, street's, district's or department's id is the city's own text, in
any script, with "/", ":" and inner spaces (percent-encoded in URLs; a scope splits at its
first ":"). It travels in paths, query strings, metrics labels and CSV files, so it holds
no control characters (a tab, a line break) and no spaces at its ends (the loads strip
them, so "street: 1" is a typo), and it is at most MAX_LENGTH characters."""

from __future__ import annotations

import re

MAX_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control(text: str) -> bool:
    """Whether `text` holds a control character (names follow this part of the rule)."""
    return _CONTROL.search(text) is not None


def is_unit_id(value: str) -> bool:
    return problem(value) is None


def problem(value: str) -> str | None:
    """What is wrong with `value` as a unit id, said so that it can follow the id's
    name or path in a message; None for a good one."""
    if not value:
        return "is empty"
    if has_control(value):
        return f"{value[:40]!r} holds a control character (a tab, a line break, ...)"
    if value != value.strip():
        return f"{value[:40]!r} has spaces at its ends"
    if len(value) > MAX_LENGTH:
        return f"is {len(value)} characters long; at most {MAX_LENGTH}"
    return None

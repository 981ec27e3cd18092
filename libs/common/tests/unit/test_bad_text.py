"""Where a request carries a NUL (which PostgreSQL's text and jsonb cannot hold), and a
body that is not UTF-8."""

from __future__ import annotations

import json

import pytest

from gridline.common.bad_text import bad_body, nul_in_json, nul_in_query

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("query", "where"),
    [
        (b"", None),
        (b"limit=5&state=open", None),
        (b"a=%2500", None),  # the text "%00", percent-encoded: no NUL
        (b"limit=5&category=a%00b", "query.category"),
        (b"category=ok&category=%00", "query.category"),
        (b"na%00me=1", "query.name"),
        (b"unit_id=\x00", "query.unit_id"),
    ],
)
def test_the_query_parameter_holding_a_nul_is_named(query: bytes, where: str | None) -> None:
    assert nul_in_query(query) == where


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"unit_id": "g1", "note": "a \\u0000 in words"}, None),  # backslash, then text
        ({"unit_id": "g\x001"}, "body.unit_id"),
        ({"keys": [{"unit_id": "ok"}, {"unit_id": "\x00"}]}, "body.keys.1.unit_id"),
        ({"features": [{"properties": {"na\x00me": "x"}}]}, "body.features.0.properties.name"),
        (["\x00"], "body.0"),
    ],
)
def test_the_json_field_holding_a_nul_is_named(doc: object, where: str | None) -> None:
    assert nul_in_json(json.dumps(doc).encode()) == where


def test_an_escaped_backslash_before_u0000_is_text_and_an_odd_run_is_a_nul() -> None:
    assert nul_in_json(rb'{"a": "\\\\u0000"}') is None  # \\ then "u0000"
    assert nul_in_json(rb'{"a": "\\\\\u0000"}') == "body.a"  # \\ then a NUL
    assert nul_in_json(rb'{"a": "\u0000", oops}') == "body"  # does not parse


def test_a_body_that_is_not_utf8_is_named_before_its_nuls() -> None:
    assert bad_body(b'{"a": "\xc3"}') == "body: is not UTF-8; send JSON in UTF-8 (RFC 8259)"
    assert bad_body('{"a": "é"}'.encode()) is None
    assert bad_body(rb'{"a": ["\u0000"]}') == (
        "body.a.0: must not contain NUL (U+0000), which no stored text can hold"
    )

"""docs/api.md's worked example of a partner's signature is what the code computes, and
what the front door's check accepts: a client written from the docs signs correctly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridline.common.partners import SignatureProblem, check_request, request_signature

pytestmark = pytest.mark.unit

API_MD = Path(__file__).resolve().parents[4] / "docs" / "api.md"


def worked_example() -> dict[str, str]:
    text = API_MD.read_text(encoding="utf-8")
    block = text.split("<!-- worked-example")[1].split("<!-- /worked-example -->")[0]
    return dict(re.findall(r"^- (\w+)[^:]*: `(.*)`$", block, re.MULTILINE))


def test_the_worked_example_signature_is_recomputed_from_its_inputs() -> None:
    example = worked_example()
    assert set(example) == {"secret", "timestamp", "body", "signature"}
    body = example["body"].encode("utf-8")
    assert request_signature(example["secret"], example["timestamp"], body) == example["signature"]


def test_the_worked_example_passes_the_check_within_the_window_only() -> None:
    example = worked_example()
    body = example["body"].encode("utf-8")
    at = int(example["timestamp"])
    check_request([example["secret"]], example["timestamp"], example["signature"], body, at + 299)
    with pytest.raises(SignatureProblem, match="within"):
        check_request(
            [example["secret"]], example["timestamp"], example["signature"], body, at + 301
        )
    with pytest.raises(SignatureProblem, match="does not match"):
        check_request(
            [example["secret"]], example["timestamp"], example["signature"], body + b" ", at
        )

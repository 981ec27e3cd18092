"""No input gives intake a 5xx: schemathesis drives every operation of its OpenAPI
document against the running intake, with a valid key in every write (in the form where
Open311 carries it, else in X-Api-Key), so the write paths are reached, not stopped at 403."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gridline.common.policy.catalogue import Catalogue

from .stack import Stack
from .test_pipeline import grid_category, grid_point

pytestmark = pytest.mark.e2e

# Each operation's examples; the whole run stays under a minute on a loaded 2-core machine.
EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def with_key(case: Any, key: str) -> None:
    """A valid key where a client would send it; the body's other fields stay as generated."""
    if case.method.upper() not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if isinstance(case.body, dict) and case.media_type == "application/x-www-form-urlencoded":
        case.body["api_key"] = key
    else:
        case.headers = {**(case.headers or {}), "X-Api-Key": key}


def in_the_city(case: Any, code: str, point: tuple[float, float]) -> None:
    """A known category and a point inside the city, so that the generated optional fields
    (description, email, media_url, ...) are judged and stored, not refused before."""
    if isinstance(case.body, dict) and "service_code" in case.body:
        case.body.update(service_code=code, lat=point[0], long=point[1])
        # Random attribute codes and place names are (rightly) refused: leave them out of
        # this half, so the other fields reach storage.
        for name in [n for n in case.body if n.startswith("attribute[") or n == "address_id"]:
            del case.body[name]


def exercise(
    operation: Any, mode: GenerationMode, key: str, place: Callable[[Any], None]
) -> Counter[int]:
    """One hypothesis run of one operation; the statuses it answered."""
    statuses: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode), placed=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any, placed: bool) -> None:
        with_key(case, key)
        if placed and mode is GenerationMode.POSITIVE:
            place(case)
        statuses[case.call_and_validate(checks=CHECKS, timeout=15).status_code] += 1

    run()
    return statuses


def test_no_intake_operation_answers_5xx(stack: Stack, catalogue: Catalogue) -> None:
    """Every operation, positive and negative data; every operation runs even when one
    fails, and the failures are listed together with their falsifying requests."""
    schema = schemathesis.openapi.from_url(f"{stack.url('intake')}/openapi.json")
    code = grid_category(catalogue, longest=True).code
    point = grid_point(stack, stack.handler_key("grid")[0])
    failures: list[str] = []
    seen: dict[str, Counter[int]] = {}
    for operation in [result.ok() for result in schema.get_all_operations()]:
        for mode in GenerationMode:
            try:
                statuses = exercise(
                    operation,
                    mode,
                    stack.credentials["open311_api_key"],
                    lambda case: in_the_city(case, code, point),
                )
            except Unsatisfiable:  # no parameters: nothing to make invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
                continue
            except BaseException as exc:  # one operation's failure must not hide the others'
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                failures.append(f"{operation.label} ({mode.value}): {exc}")
                continue
            seen.setdefault(operation.label, Counter()).update(statuses)
    assert not failures, "\n\n".join(failures)
    # The writes were judged on their content, not stopped at the key; some were stored.
    writes = seen["POST /open311/v2/requests.json"]
    assert writes[200] > 0 and writes[403] == 0, writes

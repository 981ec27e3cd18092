"""Each service's OpenAPI document is valid OpenAPI and carries the contract's surfaces, so
a client can be generated from it alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from gridline.intake.entrypoints.api import create_app as intake_app
from gridline.notify.entrypoints.api import create_app as notify_app
from gridline.routing.entrypoints.api import create_app as routing_app
from gridline.sla.entrypoints.api import create_app as sla_app

pytestmark = pytest.mark.unit

APPS: dict[str, Callable[[], FastAPI]] = {
    "intake": intake_app,
    "routing": routing_app,
    "sla": sla_app,
    "notify": notify_app,
}
OPEN311 = "/open311/v2"


def _spec(service: str) -> dict[str, Any]:
    return APPS[service]().openapi()


@pytest.mark.parametrize("service", sorted(APPS))
def test_openapi_document_is_valid_and_has_the_operations_endpoints(service: str) -> None:
    spec = _spec(service)
    validate(spec)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "get" in spec["paths"][path], f"{service} lacks GET {path}"


def test_intake_documents_every_open311_endpoint_of_the_contract() -> None:
    paths = _spec("intake")["paths"]
    for path, method in (
        ("/discovery.json", "get"),
        ("/services.json", "get"),
        ("/services/{service_code}.json", "get"),
        ("/requests.json", "get"),
        ("/requests.json", "post"),
        ("/requests/{service_request_id}.json", "get"),
        ("/tokens/{token}.json", "get"),
    ):
        assert method in paths.get(OPEN311 + path, {}), f"{method.upper()} {OPEN311}{path}"
    for path, operations in paths.items():
        if path.startswith(OPEN311):
            for method, operation in operations.items():
                answers = operation["responses"]
                assert "422" not in answers, f"{method} {path}: Open311 errors are 400"
                assert "content" in answers["200"], f"{method} {path}: 200 has no schema"
    post = paths[OPEN311 + "/requests.json"]["post"]
    form = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"api_key", "service_code", "lat", "long"} <= set(form["required"])
    assert {"400", "403", "404"} <= set(post["responses"])


def test_routing_documents_the_handler_moves_their_key_and_their_errors() -> None:
    spec = _spec("routing")
    schemes = spec["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    for move in ("resolve", "escalate", "assign"):
        operation = spec["paths"][f"/v1/workorders/{{order_id}}/{move}"]["post"]
        assert operation["security"] == [{name: []} for name in schemes]
        assert {"200", "401", "403", "404", "409", "503"} <= set(operation["responses"])
        invalid = operation["responses"]["422"]["content"]["application/json"]["schema"]
        name = invalid["$ref"].rsplit("/", 1)[1]
        detail = spec["components"]["schemas"][name]["properties"]["detail"]
        assert detail["type"] == "string"  # as sent: one sentence, not FastAPI's list
    for path in ("/admin/jurisdiction", "/admin/catalogue", "/admin/handler-keys"):
        assert spec["paths"][path]["put"]["security"], path

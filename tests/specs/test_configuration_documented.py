"""operations.md ("Configuration", "Intake keys") and the services' settings name the same
variables: each one a service reads is documented there, and each one documented there is
read."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
SERVICES = {
    "intake": "IntakeSettings",
    "routing": "RoutingSettings",
    "sla": "SlaSettings",
    "notify": "NotifySettings",
}


def variables(settings: type[BaseModel], prefix: str | None = None) -> Iterator[str]:
    """The environment variables a settings class reads, nested settings included."""
    if prefix is None:
        prefix = str(settings.model_config.get("env_prefix", ""))
    for name, field in settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            yield from variables(kind)
            continue
        alias = field.validation_alias
        yield (alias if isinstance(alias, str) else prefix + name).upper()


def read_by_services() -> set[str]:
    found: set[str] = set()
    for service, name in SERVICES.items():
        module = importlib.import_module(f"gridline.{service}.config")
        found |= set(variables(getattr(module, name)))
    return found


def configuration_section() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    parts = []
    for heading in ("Configuration", "Intake keys"):
        start = text.index(f"\n## {heading}\n")
        parts.append(text[start : text.index("\n## ", start + 1)])
    return "".join(parts)


def test_every_variable_a_service_reads_is_documented() -> None:
    section = configuration_section()
    missing = sorted(v for v in read_by_services() if f"`{v}`" not in section)
    assert not missing, f"add to docs/operations.md, Configuration: {missing}"


def test_every_documented_variable_is_read_by_a_service() -> None:
    pattern = r"`((?:GRIDLINE|INTAKE|ROUTING|SLA|NOTIFY)_[A-Z0-9_]+)`"
    named = set(re.findall(pattern, configuration_section()))
    assert len(named) > 40
    stale = sorted(named - read_by_services())
    assert not stale, f"documented in docs/operations.md but read by no service: {stale}"

"""The catalogue: departments, categories, entry tiers and time limits (a YAML file).

docs/catalogue.md documents the format field by field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridline.common.policy.tiers import Tier

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class CatalogueInvalid(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the catalogue")
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    id: str = Field(min_length=1, description="Unit id of the department tier.")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class Targets(_Strict):
    grid: float = Field(default=0.70, gt=0, le=1)
    community: float = Field(default=0.80, gt=0, le=1)
    street: float = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Targets:
        if not self.grid <= self.community <= self.street:
            raise ValueError("targets must not decrease from grid to community to street")
        return self


class FeedbackRules(_Strict):
    """What a reporter's feedback on a resolution may do."""

    reopen_window_hours: float = Field(
        default=72,
        gt=0,
        description="A rejection this many hours after the resolution at most reopens the order.",
    )


class Category(_Strict):
    code: str = Field(description="The Open311 service_code.")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    group: str = Field(min_length=1)
    group_zh: str = Field(min_length=1)
    group_en: str = Field(min_length=1)
    kind: Literal["event", "component"] = "event"
    entry_tier: Tier
    department: str
    time_limits_hours: dict[Tier, float]
    keywords: list[str] = Field(default_factory=list)
    description_en: str = ""
    description_zh: str = ""

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError(f"code {value!r} must be lowercase letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _limits(self) -> Category:
        needed = [t for t in Tier if t.rank >= self.entry_tier.rank]
        missing = [t.value for t in needed if t not in self.time_limits_hours]
        if missing:
            raise ValueError(
                f"time_limits_hours needs the entry tier and every tier above it; missing: {', '.join(missing)}"
            )
        below = [t.value for t in self.time_limits_hours if t.rank < self.entry_tier.rank]
        if below:
            raise ValueError(
                f"time_limits_hours has tiers below the entry tier {self.entry_tier.value}: {', '.join(below)}"
            )
        bad = [t.value for t, h in self.time_limits_hours.items() if not h > 0]
        if bad:
            raise ValueError(f"time limits must be positive hours: {', '.join(bad)}")
        return self


class CatalogueModel(_Strict):
    version: str = Field(min_length=1, description="The operators' label for this edition.")
    timezone: str = "Asia/Shanghai"
    targets: Targets = Field(default_factory=Targets)
    feedback: FeedbackRules = Field(default_factory=FeedbackRules)
    departments: list[Department] = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)"
            ) from None
        return value


class Catalogue:
    """A validated catalogue with the look-ups routing and intake need."""

    def __init__(self, model: CatalogueModel) -> None:
        self.model = model
        self.version = model.version
        self.timezone = model.timezone
        self.targets = model.targets
        self.departments = list(model.departments)
        self.categories = list(model.categories)
        self.departments_by_id = {d.id: d for d in model.departments}
        self.categories_by_code = {c.code: c for c in model.categories}
        self.version_hash = hashlib.sha256(
            json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()[:16]

    def category(self, code: str) -> Category:
        return self.categories_by_code[code]

    def department(self, department_id: str) -> Department:
        return self.departments_by_id[department_id]

    def time_limit(self, code: str, tier: Tier) -> timedelta:
        """KeyError for an unknown code or a tier below the category's entry tier."""
        return timedelta(hours=self.categories_by_code[code].time_limits_hours[tier])

    def all_time_limits_seconds(self) -> list[float]:
        return sorted({h * 3600 for c in self.categories for h in c.time_limits_hours.values()})

    def to_dict(self) -> dict[str, Any]:
        return self.model.model_dump(mode="json")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(catalogue)"


def _cross_references(doc: dict[str, Any]) -> list[str]:
    """Duplicate ids and codes and unknown departments, read off the raw document so that
    they are reported together with any field errors."""
    problems: list[str] = []
    departments = doc.get("departments")
    categories = doc.get("categories")
    dept_ids: list[Any] = []
    if isinstance(departments, list):
        dept_ids = [d.get("id") for d in departments if isinstance(d, dict)]
        for d in sorted({str(x) for x in dept_ids if dept_ids.count(x) > 1}):
            problems.append(f"departments: duplicate id {d!r}")
    if isinstance(categories, list):
        seen: dict[Any, int] = {}
        for i, c in enumerate(categories):
            if not isinstance(c, dict):
                continue
            code = c.get("code")
            if code is not None and code in seen:
                problems.append(
                    f"categories[{i}].code: duplicate code {code!r} (also categories[{seen[code]}])"
                )
            seen.setdefault(code, i)
            dept = c.get("department")
            if isinstance(departments, list) and dept is not None and dept not in dept_ids:
                problems.append(f"categories[{i}].department: unknown department {dept!r}")
    return problems


def parse_catalogue(doc: Any) -> Catalogue:
    """Validate a parsed catalogue; CatalogueInvalid lists each problem with its path."""
    if not isinstance(doc, dict):
        raise CatalogueInvalid(
            ["the catalogue must be a mapping with version, departments and categories"]
        )
    problems = []
    model: CatalogueModel | None = None
    try:
        model = CatalogueModel.model_validate(doc)
    except ValidationError as exc:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
    problems += _cross_references(doc)
    if problems or model is None:
        raise CatalogueInvalid(problems)
    return Catalogue(model)


def load_catalogue_text(text: str) -> Catalogue:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueInvalid([f"not valid YAML: {exc}"]) from None
    return parse_catalogue(doc)

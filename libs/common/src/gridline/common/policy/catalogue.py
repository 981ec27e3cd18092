"""The catalogue: departments, categories, entry tiers, time limits and the questions
(Open311 attributes) a category asks (a YAML file).

docs/catalogue.md documents the format field by field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridline.common.events import Severity
from gridline.common.policy import unit_ids
from gridline.common.policy.calendar import WorkCalendar
from gridline.common.policy.duties import DutyLists, duty_list_problems
from gridline.common.policy.tiers import Tier

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# An attribute's code is sent back as `attribute[CODE]` in a form: keep it bracket-free.
_ATTRIBUTE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
LIST_DATATYPES = ("singlevaluelist", "multivaluelist")


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
    report_in_hours: float | None = Field(
        default=None,
        gt=0,
        le=720,
        description="Hours a called-in department has to report in (报到); default 2.",
    )

    @field_validator("id")
    @classmethod
    def _readable_id(cls, value: str) -> str:
        if (bad := unit_ids.problem(value)) is not None:
            raise ValueError(bad)
        return value


class Targets(_Strict):
    grid: float = Field(default=0.70, gt=0, le=1)
    community: float = Field(default=0.80, gt=0, le=1)
    street: float = Field(default=0.95, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Targets:
        if not self.grid <= self.community <= self.street:
            raise ValueError("targets must not decrease from grid to community to street")
        return self


class AttributeValue(_Strict):
    key: str = Field(min_length=1, max_length=100, description="What the client sends.")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class Attribute(_Strict):
    """One question a category asks (Open311 GeoReport v2 service definition attribute)."""

    code: str = Field(description="Sent back as attribute[CODE]; unique in its category.")
    datatype: Datatype
    variable: bool = Field(default=True, description="False: information only, no answer.")
    required: bool = False
    order: int | None = Field(default=None, ge=1, description="Default: its position.")
    description_zh: str = Field(min_length=1)
    description_en: str = Field(min_length=1)
    datatype_description_zh: str = ""
    datatype_description_en: str = ""
    values: list[AttributeValue] = Field(default_factory=list)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _ATTRIBUTE_CODE.match(value):
            raise ValueError(
                f"attribute code {value!r} must be 1-64 letters, digits, underscores or dashes"
            )
        return value

    @model_validator(mode="after")
    def _values(self) -> Attribute:
        if self.datatype in LIST_DATATYPES:
            if not self.values:
                raise ValueError(f"a {self.datatype} attribute needs values")
            keys = [v.key for v in self.values]
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            if repeated:
                raise ValueError(f"duplicate value key(s): {', '.join(repeated)}")
        elif self.values:
            raise ValueError(f"values are only for list datatypes, not {self.datatype}")
        if self.required and not self.variable:
            raise ValueError("an attribute that is not variable cannot be required")
        return self


class Warnings(_Strict):
    """When a step shows yellow and red (DOMAIN: green / yellow / red at 80 % / 100 % of its
    limit): shares of each assignment's time limit, counted on its calendar."""

    yellow: float = Field(default=0.8, gt=0, lt=1, description="Share of the limit: yellow.")
    red: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of the limit: red (1: at the due time; a red warning also goes to"
        " the holder's supervisor).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Warnings:
        if not self.yellow < self.red:
            raise ValueError("warnings.yellow must come before warnings.red")
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
    attributes: list[Attribute] = Field(
        default_factory=list, description="Extra questions; Open311 metadata=true when any."
    )
    calendar: str | None = Field(
        default=None,
        description="A calendar of `calendars`: the time limits are working hours on it"
        " (none: clock hours).",
    )
    points: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Points credited to a partner's rider whose tip of this category led to"
        " a resolved work order (none for duplicates).",
    )

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
        codes = [a.code for a in self.attributes]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"duplicate attribute code(s): {', '.join(repeated)}")
        return self

    def attribute_order(self, attribute: Attribute) -> int:
        """Its `order`, or its 1-based position when the catalogue gives none."""
        return attribute.order or self.attributes.index(attribute) + 1


# -- tagging: how intake reads category, severity and flags off a report's text ----------

_FLAG = re.compile(r"^[a-z][a-z0-9_]*$")
SEVERITY_RANK: dict[str, int] = {"normal": 0, "urgent": 1, "critical": 2}


class TaggingRule(_Strict):
    """Any of `keywords` in a report's text sets `flag` (and raises severity to `severity`)."""

    flag: str = Field(description="The flag a match sets, e.g. safety_hazard.")
    keywords: list[str] = Field(min_length=1)
    severity: Severity | None = Field(default=None, description="Raised to at least this.")

    @field_validator("flag")
    @classmethod
    def _flag(cls, value: str) -> str:
        if not _FLAG.match(value):
            raise ValueError(f"flag {value!r} must be lowercase letters, digits and underscores")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise ValueError("keywords must not be blank")
        return value


def _default_factors() -> dict[Severity, float]:
    return {"normal": 1.0, "urgent": 0.5, "critical": 0.25}


class Tagging(_Strict):
    """Category inference, severity and flags, duplicates (并单) and repeated complaints."""

    threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Below this confidence an inferred category goes to triage.",
    )
    candidates: int = Field(default=3, ge=1, le=10, description="Candidates kept for triage.")
    rules: list[TaggingRule] = Field(default_factory=list)
    severity_factors: dict[Severity, float] = Field(
        default_factory=_default_factors,
        description="The entry tier's time limit is multiplied by the factor of the severity.",
    )
    duplicate_radius_m: float = Field(
        default=250, ge=0, le=5000, description="0 switches merging and repeat flags off."
    )
    duplicate_window_hours: float = Field(default=72, gt=0)
    repeat_window_days: float = Field(default=30, gt=0)

    @field_validator("severity_factors")
    @classmethod
    def _factors(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        bad = [s for s, f in value.items() if not 0 < f <= 1]
        if bad:
            raise ValueError(f"severity factors must lie in (0, 1]: {', '.join(bad)}")
        return value

    def factor(self, severity: Severity) -> float:
        """The time-limit factor of a severity; 1 for one the catalogue does not list."""
        return self.severity_factors.get(severity, 1.0)


# -- sensors: the metrics whose threshold breaches open work orders (intake) ------------

_METRIC = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class SensorMetric(_Strict):
    """A metric sensors report (crowd density, water depth): a reading at or over
    `threshold` is a breach, which opens a work order of `category` with `severity`."""

    code: str = Field(description="What a sensor event names as its metric, e.g. crowd_density.")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    unit: str = Field(
        min_length=1, max_length=40, description="As English reads it, e.g. persons/m²."
    )
    unit_zh: str = Field(
        default="", max_length=40, description="As Chinese reads it, e.g. 人/㎡; default: unit."
    )
    threshold: float = Field(description="A reading at or over this is a breach.")
    category: str = Field(description="The category code of the work order a breach opens.")
    severity: Literal["urgent", "critical"] = "urgent"

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _METRIC.match(value):
            raise ValueError(
                f"metric code {value!r} must be 1-48 lowercase letters, digits and"
                " underscores, starting with a letter"
            )
        return value

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be a finite number")
        return value

    @property
    def unit_in_zh(self) -> str:
        return self.unit_zh or self.unit


class RuleFile(_Strict):
    """The routing rule file loaded with this catalogue, as written: one catalogue version
    covers both. Routing parses and validates it (docs/routing-rules.md); it is kept as
    text so that problems and explanations cite the file's own line numbers."""

    name: str = Field(min_length=1, max_length=200, description="The file's name, for messages.")
    text: str = Field(max_length=1_000_000, description="The YAML rule file as written.")


class CatalogueModel(_Strict):
    version: str = Field(min_length=1, description="The operators' label for this edition.")
    timezone: str = "Asia/Shanghai"
    targets: Targets = Field(default_factory=Targets)
    feedback: FeedbackRules = Field(default_factory=FeedbackRules)
    warnings: Warnings | None = Field(
        default=None,
        description="Yellow and red warning points as shares of each time limit; none: 0.8"
        " and 1.0.",
    )
    departments: list[Department] = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)
    tagging: Tagging = Field(default_factory=Tagging)
    sensors: list[SensorMetric] = Field(
        default_factory=list, description="Metrics whose breaches open work orders."
    )
    rules: RuleFile | None = Field(
        default=None,
        description="Routing rules (`gridline catalogue load --rules FILE`); none: every"
        " category enters at its entry tier.",
    )
    duty_lists: DutyLists | None = Field(
        default=None,
        description="Which categories each tier may resolve (N city-wide + X local);"
        " none: every tier may resolve every category.",
    )
    calendars: dict[str, WorkCalendar] = Field(
        default_factory=dict,
        description="Working calendars by name; a category or a routing rule that names one"
        " counts its time limits in working hours on it.",
    )

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
        self.tagging = model.tagging
        self.sensor_metrics = {m.code: m for m in model.sensors}
        self.duty_lists = model.duty_lists
        self.warnings = model.warnings or Warnings()
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
        doc = self.model.model_dump(mode="json")
        # A catalogue without rules or duty lists keeps the document (and version hash) it
        # had before they existed.
        for optional in ("rules", "duty_lists", "warnings"):
            if doc.get(optional) is None:
                doc.pop(optional, None)
        if not doc.get("calendars"):
            doc.pop("calendars", None)
        for department in doc["departments"]:
            if department.get("report_in_hours") is None:
                department.pop("report_in_hours", None)
        for category in doc["categories"]:
            if category.get("calendar") is None:
                category.pop("calendar", None)
        return doc


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
            calendar = c.get("calendar")
            calendars = doc.get("calendars") or {}
            if calendar is not None and isinstance(calendars, dict) and calendar not in calendars:
                known = ", ".join(sorted(calendars)) or "none defined"
                problems.append(
                    f"categories[{i}].calendar: unknown calendar {calendar!r} ({known})"
                )
    return problems


def _sensor_references(doc: dict[str, Any]) -> list[str]:
    """Duplicate metric codes, and metrics naming a category the catalogue lacks."""
    sensors, categories = doc.get("sensors"), doc.get("categories")
    if not isinstance(sensors, list):
        return []
    codes = (
        {c.get("code") for c in categories if isinstance(c, dict)}
        if isinstance(categories, list)
        else None
    )
    problems: list[str] = []
    seen: dict[Any, int] = {}
    for i, m in enumerate(sensors):
        if not isinstance(m, dict):
            continue
        code = m.get("code")
        if code is not None and code in seen:
            problems.append(
                f"sensors[{i}].code: duplicate metric {code!r} (also sensors[{seen[code]}])"
            )
        seen.setdefault(code, i)
        category = m.get("category")
        if codes is not None and category is not None and category not in codes:
            problems.append(f"sensors[{i}].category: unknown category {category!r}")
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
    problems += _sensor_references(doc)
    problems += duty_list_problems(doc)
    if problems or model is None:
        raise CatalogueInvalid(problems)
    return Catalogue(model)


def load_catalogue_text(text: str) -> Catalogue:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueInvalid([f"not valid YAML: {exc}"]) from None
    return parse_catalogue(doc)

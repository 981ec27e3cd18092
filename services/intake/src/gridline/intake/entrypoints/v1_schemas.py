"""The shapes of the native API (/v1): what a report may say, and the answers, as pydantic
models (so /openapi.json documents what is checked and sent)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from gridline.common.events import ReportSource

MAX_BATCH = 500
MAX_PHOTOS = 10
MAX_TAGS = 20


def _no_controls(value: str, allowed: str = "") -> str:
    if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters (NUL, escape, ...)")
    return value.strip()


def _line(value: str) -> str:
    value = _no_controls(value)
    if not value:
        raise ValueError("must not be blank")
    return value


def clean_text(value: str) -> str:
    return _no_controls(value, allowed="\n\r\t")


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError("must be an http:// or https:// URL")
    return value


Line40 = Annotated[str, Field(max_length=40), AfterValidator(_line)]
Line50 = Annotated[str, Field(max_length=50), AfterValidator(_line)]
Line100 = Annotated[str, Field(max_length=100), AfterValidator(_line)]
Line200 = Annotated[str, Field(max_length=200), AfterValidator(_line)]
Line500 = Annotated[str, Field(max_length=500), AfterValidator(_line)]
Email = Annotated[
    str, Field(max_length=254, pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"), AfterValidator(_line)
]
Url = Annotated[str, Field(max_length=2000), AfterValidator(_line), AfterValidator(_web_url)]


class Reporter(BaseModel):
    """Who reported: `id` is your own opaque id of the reporter (the same person, the same
    id). Contact details stay in intake: events and logs carry only an opaque reference."""

    model_config = ConfigDict(extra="forbid")

    id: Line200 | None = Field(default=None, description="Your id of the reporter.")
    email: Email | None = None
    phone: Line40 | None = None
    first_name: Line100 | None = None
    last_name: Line100 | None = None
    device_id: Line200 | None = None


class NewReport(BaseModel):
    """A report. Where: `lat` + `long` (WGS84), or `grid_id` (a grid worker names their
    grid), or both."""

    model_config = ConfigDict(extra="forbid")

    service_code: Line100 | None = Field(
        default=None,
        description="A code from /open311/v2/services.json. Leave it out to have the "
        "category inferred from the description (Chinese or English); an uncertain "
        "inference is held for triage with its candidates.",
    )
    description: Annotated[str, Field(max_length=4000), AfterValidator(clean_text)] = ""
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS84 latitude.")
    long: float | None = Field(default=None, ge=-180, le=180, description="WGS84 longitude.")
    grid_id: Line100 | None = Field(
        default=None, description="The grid the report is in (a grid worker's own grid)."
    )
    address: Line500 | None = None
    source: ReportSource | None = Field(
        default=None,
        description="Who reports; default: your key's own source. A key may claim only "
        "the sources it is issued for (a citizen app's key cannot claim grid_worker).",
    )
    reporter: Reporter | None = None
    rider_id: str | None = Field(
        default=None,
        max_length=200,
        description="A partner's tip only: your own opaque id of the rider (1-64 of"
        " A-Z a-z 0-9 _ . : -), never a phone number or an email. Points and the status"
        " callbacks name the rider by it.",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="When it was seen, with a time zone; not in the future (beyond 5 "
        "minutes of clock skew), not more than 30 days back.",
    )
    photos: list[Url] = Field(default_factory=list, max_length=MAX_PHOTOS)
    tags: list[Line50] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Free labels."
    )

    @model_validator(mode="after")
    def _somewhere(self) -> NewReport:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long go together: send both, or neither with grid_id")
        if self.lat is None and self.grid_id is None:
            raise ValueError("say where: lat and long, or grid_id")
        return self


class Links(BaseModel):
    self: str = Field(description="The report on /v1 (its status and timeline).")
    open311: str = Field(description="The same report as an Open311 service request.")
    token: str = Field(description="The Open311 token lookup.")


class ReportCreated(BaseModel):
    id: str = Field(description="The report's id, also its work order's id.")
    token: str
    links: Links


class ItemResult(BaseModel):
    """One batch item's result, in the order sent: accepted (201, with id, token, links)
    or refused (its 4xx status and the reason; nothing of it was stored)."""

    index: int
    status: int
    id: str | None = None
    token: str | None = None
    links: Links | None = None
    detail: str | None = None


class BatchResult(BaseModel):
    accepted: int
    refused: int
    results: list[ItemResult]


BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["reports"],
                    "additionalProperties": False,
                    "properties": {
                        "reports": {
                            "type": "array",
                            "maxItems": MAX_BATCH,
                            "items": {"$ref": "#/components/schemas/NewReport"},
                        }
                    },
                }
            }
        },
    }
}


def describe(exc: ValidationError) -> str:
    """Each problem as `field: what`, as the app's 400 answers say it."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "report"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)

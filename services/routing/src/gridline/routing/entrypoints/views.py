"""What routing's HTTP API reads and answers: request bodies and the work-order view."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from gridline.common.events import ReportSource, Severity
from gridline.routing.adapters.records import as_record
from gridline.routing.domain.policy import Policy
from gridline.routing.domain.workorder import WorkOrder


class WorkOrderView(BaseModel):
    id: str
    report_id: str
    category: str
    state: str
    tier: str | None
    unit_id: str
    unit_name: str
    assignment_seq: int
    assigned_at: datetime
    due_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None
    grid_id: str | None
    community_id: str | None
    street_id: str | None
    district_id: str | None
    lat: float
    lon: float
    version: int
    policy_version: str
    accepted_at: datetime | None = None
    ended_at: datetime | None = Field(default=None, description="When closed or cancelled.")
    end_reason: str | None = None
    resolved_tier: str | None = Field(
        default=None, description="The tier of the unit that resolved it."
    )
    reopen_count: int = Field(default=0, description="Rework: times reopened.")
    call_department_id: str | None = Field(default=None, description="The department called in.")
    call_due_at: datetime | None = Field(default=None, description="It must report in by then.")
    reported_in_at: datetime | None = None
    call_escalated_at: datetime | None = None
    co_handlers: list[str] = Field(
        default_factory=list, description="Departments a routing rule added as co-handlers."
    )
    history: list[dict[str, Any]] | None = Field(
        default=None,
        description="Every move; the first carries `routing`: the rules matched (name, line,"
        " what each set), the grid found and the policy version.",
    )
    reports: int | None = Field(
        default=None,
        description="Reports on this order: its own and the duplicates merged into it (并单).",
    )

    @classmethod
    def of(
        cls,
        order: WorkOrder,
        policy: Policy | None,
        history: list[dict[str, Any]] | None = None,
        reports: int | None = None,
    ) -> WorkOrderView:
        """The order's flat record (as stored) with its unit's name and its history."""
        unit_name = policy.unit_name(order.unit_id) if policy else order.unit_id
        return cls.model_validate(
            {
                **as_record(order),
                "unit_name": unit_name,
                "co_handlers": list(order.co_handlers),
                "history": history,
                "reports": reports,
            }
        )


class HandlerAction(BaseModel):
    note: str | None = Field(
        default=None, max_length=2000, description="Shown in the order's history."
    )


class Return(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why it is returned (退回).")
    grid_id: str | None = Field(
        default=None, description="The grid it belongs in; default: its own grid."
    )
    service_code: str | None = Field(
        default=None, description="The category it belongs to; default: its own."
    )


class Cancel(BaseModel):
    reason: Literal["duplicate", "invalid"]
    note: str | None = Field(default=None, max_length=2000)


class CallIn(BaseModel):
    department_id: str = Field(min_length=1, description="A department of the catalogue.")
    note: str | None = Field(default=None, max_length=2000)


class Triage(BaseModel):
    grid_id: str = Field(min_length=1, description="The grid that should hold the order.")
    service_code: str | None = Field(
        default=None, description="A category from services.json, to correct it."
    )


class HandlerKey(BaseModel):
    unit_id: str = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex digest of the key.")
    expires_at: datetime | None = Field(
        default=None, description="The key is refused (403) from this time on; never when absent."
    )


class HandlerKeys(BaseModel):
    keys: list[HandlerKey] = Field(min_length=1)
    skip_unknown: bool = Field(
        default=False,
        description="Bind the keys of units in effect and list the others as skipped "
        "instead of refusing the whole request with 422.",
    )


class RouteTest(BaseModel):
    """A report that is not sent: where would it go under the policy in effect, and why."""

    category: str = Field(min_length=1, description="A service_code of the catalogue.")
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)
    flags: list[str] = Field(default_factory=list, description="Tags intake would set.")
    labels: list[str] = Field(default_factory=list, description="The client's free tags.")
    source: ReportSource = "citizen"
    severity: Severity = "normal"
    at: AwareDatetime | None = Field(default=None, description="Default: now.")


class FeatureProblem(BaseModel):
    index: int | None = Field(description="The feature's place in `features`, if it has one.")
    id: str | None = Field(description="Its grid or unit id, if it has one.")
    message: str


class PolicyRejection(BaseModel):
    message: str = Field(description="What was rejected; nothing was loaded.")
    problems: list[str] | list[FeatureProblem] = Field(
        description="Every problem: a catalogue's or rule file's as text (a rule file's as"
        " `FILE:LINE: message`), a jurisdiction's by feature."
    )


class PolicyRejected(BaseModel):
    """A 422 of a policy load: a body that does not fit (`detail` a sentence, as every 422),
    or a policy rejected with every problem (`detail` an object)."""

    detail: str | PolicyRejection

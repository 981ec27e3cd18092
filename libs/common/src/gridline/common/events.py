"""The CloudEvents 1.0 envelope and the versioned payload of every Gridline event.

Producers and consumers use these models alike; docs/asyncapi.yaml is generated from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gridline.common.ids import new_id

TierName = Literal["grid", "community", "street", "department"]
UnitLevel = Literal["grid", "community", "street", "district", "department"]
EscalationReason = Literal["timeout", "whistle", "rule"]
ReportSource = Literal["citizen", "partner", "grid_worker", "sensor", "hotline"]


class EventData(BaseModel):
    """Base of every payload: its CloudEvents type and the topic it travels on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    SUMMARY: ClassVar[str]

    def key(self) -> str:
        """The Kafka key: every event of one work order shares it, so they stay in order."""
        raise NotImplementedError


class Envelope(BaseModel):
    """A structured-mode CloudEvent (JSON). `id` is kept unchanged on redelivery."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: dict[str, Any]


Severity = Literal["normal", "urgent", "critical"]


class ReportTags(BaseModel):
    """What intake read off a report before routing sees it (every report carries tags)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category_source: Literal["client", "inferred"] = Field(
        default="client",
        description="client: the reporter's service_code; inferred: from the text, "
        "with `confidence` and the runner-up `candidates`.",
    )
    confidence: float = Field(default=1.0, ge=0, le=1)
    candidates: list[str] = Field(
        default_factory=list,
        description="Category codes in order of likelihood (inferred categories only).",
    )
    needs_triage: bool = Field(
        default=False,
        description="The inferred category is below the catalogue's confidence threshold: "
        "a person picks the category (routing holds the order for triage).",
    )
    severity: Severity = "normal"
    flags: list[str] = Field(
        default_factory=list,
        description="safety_hazard, vulnerable_person, repeated_complaint, ... (catalogue rules).",
    )
    labels: list[str] = Field(default_factory=list, description="The client's free tags.")


class ReportSubmitted(EventData):
    TYPE: ClassVar[str] = "gridline.report.submitted.v1"
    TOPIC: ClassVar[str] = "gridline.reports"
    SUMMARY: ClassVar[str] = (
        "Intake accepted and stored a report; routing opens a work order for it, or links it "
        "to the open order it duplicates."
    )

    report_id: str
    work_order_id: str = Field(
        description="The work order this report opens, or the open order it duplicates "
        "(then `duplicate_of` is set too)."
    )
    duplicate_of: str | None = Field(
        default=None,
        description="The open work order this report was merged into (并单), if any.",
    )
    service_code: str
    description: str = ""
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    grid_id: str | None = Field(
        default=None, description="The grid the reporter named (a grid worker's own grid)."
    )
    address_string: str | None = None
    media_url: str | None = None
    photos: list[str] = Field(default_factory=list, description="Photo URLs (http/https).")
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Answers to the category's Open311 attributes."
    )
    source: ReportSource
    reporter_ref: str | None = Field(
        default=None,
        description="An opaque reference to the reporter; contact details stay in intake.",
    )
    occurred_at: AwareDatetime | None = None
    submitted_at: AwareDatetime
    tags: ReportTags = Field(default_factory=ReportTags)

    def key(self) -> str:
        return self.work_order_id


class Assignment(BaseModel):
    """Who holds a work order now and until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1, description="1 for the first assignment, +1 on every escalation.")
    tier: TierName
    unit_id: str
    unit_name: str
    unit_name_zh: str | None = Field(default=None, description="The unit's Chinese name.")
    unit_name_en: str | None = Field(
        default=None, description="The unit's English name (a department's; else as unit_name)."
    )
    unit_level: UnitLevel
    assigned_at: AwareDatetime
    due_at: AwareDatetime
    yellow_at: AwareDatetime | None = Field(
        default=None,
        description="When the assignment shows yellow: the catalogue's warnings.yellow share "
        "of its time limit, counted on the limit's calendar. Absent from older events.",
    )
    red_at: AwareDatetime | None = Field(
        default=None,
        description="When it shows red (warnings.red; at 1.0 the due time). Absent from "
        "older events.",
    )
    supervisor_id: str | None = Field(
        default=None,
        description="The unit a red warning also goes to: the unit of the next tier up (the "
        "district for a department). Absent from older events.",
    )


class WorkOrderRef(EventData):
    """Fields every work-order event carries so that consumers need no lookups."""

    work_order_id: str
    report_id: str
    version: int = Field(ge=1, description="Counts this order's events; higher wins.")
    category: str
    category_name_en: str
    category_name_zh: str
    street_id: str | None
    district_id: str | None
    grid_id: str | None = Field(
        default=None,
        description="The grid the report's point lies in (None: a point outside every grid, "
        "held for triage). Absent from older events.",
    )
    community_id: str | None = Field(
        default=None, description="The community of that grid. Absent from older events."
    )
    policy_version: str
    time_zone: str = Field(
        default="UTC",
        description="IANA time zone of the catalogue the order was routed under; "
        "show its times to people in this zone.",
    )

    def key(self) -> str:
        return self.work_order_id


class WorkOrderAssigned(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.assigned.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "Routing opened a work order and assigned it to its entry tier, or held it for "
        "manual triage at the district when the point lies in no grid."
    )

    source: ReportSource
    lat: float
    lon: float
    opened_at: AwareDatetime
    assignment: Assignment | None = Field(description="None while held for triage.")
    triage_unit_id: str | None = None
    triage_unit_name: str | None = None
    triage_reason: str | None = None


class WorkOrderEscalated(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.escalated.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = "A work order moved one tier up (time limit passed, whistle, or rule)."

    reason: EscalationReason
    note: str | None = None
    from_tier: TierName
    from_unit_id: str
    assignment: Assignment


class WorkOrderResolved(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.resolved.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = "A handler resolved the work order at its current tier."

    tier: TierName
    unit_id: str
    unit_name: str
    unit_name_zh: str | None = Field(default=None, description="The unit's Chinese name.")
    unit_name_en: str | None = Field(default=None, description="The unit's English name.")
    resolved_by_unit_id: str
    opened_at: AwareDatetime
    resolved_at: AwareDatetime
    due_at: AwareDatetime
    note: str | None = None
    resolved_by_tier: TierName | None = Field(
        default=None,
        description="The tier of the unit that resolved it (a street resolving its grid's "
        "order: street); attainment counts this one. Absent from older events: use `tier`.",
    )

    @property
    def counted_tier(self) -> TierName:
        """The tier this resolution counts for in attainment."""
        return self.resolved_by_tier or self.tier


class WorkOrderReopened(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.reopened.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "The reporter rejected a resolution within the catalogue's window (reason feedback), "
        "or a handler found the problem back (reason recurred): the work order is open "
        "again, assigned anew to the tier that resolved it (a new assignment, due time and "
        "deadline); counted as rework."
    )

    reason: Literal["feedback", "recurred"] = "feedback"
    feedback_id: str | None = Field(
        default=None, description="The FeedbackGiven that reopened the order (reason feedback)."
    )
    by_unit_id: str | None = Field(
        default=None, description="The unit that found it recurred (reason recurred)."
    )
    note: str | None = None
    resolved_tier: TierName = Field(description="The tier that had resolved the order.")
    resolved_at: AwareDatetime = Field(description="When the rejected resolution happened.")
    source: ReportSource
    opened_at: AwareDatetime
    assignment: Assignment


class WorkOrderAccepted(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.accepted.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "The holder acknowledged the work order (签收); its due time runs on unchanged."
    )

    tier: TierName
    unit_id: str
    unit_name: str
    assignment_seq: int = Field(ge=1)
    accepted_at: AwareDatetime
    due_at: AwareDatetime = Field(description="Unchanged by the acceptance.")


class WorkOrderReturned(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.returned.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "The holder returned the work order (退回) as in the wrong place or category: it is "
        "placed again (a new assignment, due time and deadline), or held for triage at its "
        "district when the handler named no target. The old assignment's deadline ends."
    )

    reason: str = Field(description="The handler's words.")
    by_unit_id: str
    from_tier: TierName
    from_unit_id: str
    assignment: Assignment | None = Field(description="None while held for triage.")
    triage_unit_id: str | None = None
    triage_unit_name: str | None = None
    returned_at: AwareDatetime


class WorkOrderCancelled(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.cancelled.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "The work order was cancelled (作废) as a duplicate or invalid: final; its deadlines stop."
    )

    reason: Literal["duplicate", "invalid"]
    note: str | None = None
    by_unit_id: str
    unit_id: str = Field(description="The unit that held it.")
    unit_name: str
    cancelled_at: AwareDatetime


class WorkOrderClosed(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.closed.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "A resolved work order was closed (结案): its reporter confirmed the resolution, or "
        "the catalogue's feedback window passed without a rejection. Final."
    )

    reason: Literal["confirmed", "feedback_window"]
    feedback_id: str | None = Field(default=None, description="The confirming feedback.")
    unit_id: str = Field(description="The unit that held it when it was resolved.")
    unit_name: str
    resolved_at: AwareDatetime
    closed_at: AwareDatetime


class DepartmentCalledIn(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.department_called_in.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "A street (or above) called a department in (吹哨); it must report in (报到) by "
        "`report_in_due_at` or the call escalates to the district. The holder keeps the order."
    )

    call_seq: int = Field(ge=1, description="Counts the order's calls.")
    department_id: str
    department_name_zh: str
    department_name_en: str
    called_by_unit_id: str
    called_at: AwareDatetime
    report_in_due_at: AwareDatetime
    note: str | None = None


class DepartmentReportedIn(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.department_reported_in.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = "The department called in reported in (报到), on time or late."

    call_seq: int = Field(ge=1)
    department_id: str
    department_name_zh: str
    department_name_en: str
    reported_in_at: AwareDatetime
    late: bool = Field(description="After `report_in_due_at`.")


class DepartmentCallEscalated(WorkOrderRef):
    TYPE: ClassVar[str] = "gridline.workorder.call_escalated.v1"
    TOPIC: ClassVar[str] = "gridline.workorders"
    SUMMARY: ClassVar[str] = (
        "A department called in did not report in within its limit: the call escalates to "
        "the district, which takes it up with the department (督办)."
    )

    call_seq: int = Field(ge=1)
    department_id: str
    department_name_zh: str
    department_name_en: str
    report_in_due_at: AwareDatetime
    escalated_at: AwareDatetime
    to_unit_id: str = Field(description="The district the call escalates to.")
    to_unit_name: str


class FeedbackGiven(EventData):
    TYPE: ClassVar[str] = "gridline.report.feedback_given.v1"
    TOPIC: ClassVar[str] = "gridline.reports"
    SUMMARY: ClassVar[str] = (
        "A reporter confirmed or rejected the resolution of their report; a rejection within "
        "the catalogue's window (`reopen`) asks routing to reopen the work order."
    )

    feedback_id: str
    report_id: str
    work_order_id: str
    resolved_version: int = Field(
        ge=1, description="The version of the WorkOrderResolved this feedback is about."
    )
    outcome: Literal["confirm", "reject"]
    satisfaction: int = Field(ge=1, le=5)
    reopen: bool = Field(
        description="A rejection within the catalogue's feedback.reopen_window_hours."
    )
    given_at: AwareDatetime

    def key(self) -> str:
        return self.work_order_id


class PartnerUpdated(EventData):
    TYPE: ClassVar[str] = "gridline.partner.updated.v1"
    TOPIC: ClassVar[str] = "gridline.partners"
    SUMMARY: ClassVar[str] = (
        "An operator registered, changed or revoked a partner, or the partner set its "
        "callback URL; notify follows it for the partner's status callbacks. No secret "
        "travels: notify derives the signing secret from `secret_versions`."
    )

    partner_id: str
    name: str
    active: bool = Field(description="False once revoked: no requests, no callbacks.")
    callback_url: str | None = Field(
        default=None, description="Where notify sends the status of this partner's tips."
    )
    secret_versions: list[int] = Field(
        min_length=1,
        description="Versions of the signing secret in force, newest first (two during a "
        "rotation's overlap: callbacks then carry a signature under each).",
    )
    updated_at: AwareDatetime

    def key(self) -> str:
        return self.partner_id


TipStatus = Literal[
    "assigned",
    "triage",
    "accepted",
    "escalated",
    "returned",
    "resolved",
    "reopened",
    "closed",
    "cancelled",
]


class TipStatusChanged(EventData):
    TYPE: ClassVar[str] = "gridline.tip.status_changed.v1"
    TOPIC: ClassVar[str] = "gridline.tips"
    SUMMARY: ClassVar[str] = (
        "The work order of a partner's tip changed status; notify calls the partner back. "
        "Intake emits one per tip (the report that opened the order and every one merged "
        "into it) for each work-order event."
    )

    partner_id: str
    report_id: str = Field(description="The tip: the report the partner submitted.")
    rider_id: str | None = Field(
        default=None, description="The partner's own opaque rider id, as sent with the tip."
    )
    work_order_id: str
    version: int = Field(ge=1, description="The work-order event's version (order per order).")
    status: TipStatus
    duplicate: bool = Field(description="The tip was merged into an order another report opened.")
    category: str
    category_name_zh: str | None = Field(default=None, description="The category's Chinese name.")
    category_name_en: str | None = Field(default=None, description="The category's English name.")
    time_zone: str = Field(
        default="UTC", description="IANA time zone of the order's catalogue, for people's times."
    )
    tier: TierName | None = Field(default=None, description="The tier holding or resolving it.")
    unit_name: str | None = None
    due_at: AwareDatetime | None = None
    points: int = Field(
        default=0, ge=0, description="Points credited to the rider with this change."
    )
    changed_at: AwareDatetime
    partner_updated_at: AwareDatetime | None = Field(
        default=None,
        description="The partner's `updated_at` (its latest PartnerUpdated) when intake "
        "emitted this change. notify holds the callback until it has followed the partner "
        "at least that far, so a callback URL set just before the tip is not missed.",
    )

    def key(self) -> str:
        return self.work_order_id


class DeadlineBreached(EventData):
    TYPE: ClassVar[str] = "gridline.sla.deadline_breached.v1"
    TOPIC: ClassVar[str] = "gridline.sla"
    SUMMARY: ClassVar[str] = (
        "The due time of an assignment passed before it was resolved; routing escalates."
    )

    work_order_id: str
    assignment_seq: int = Field(ge=1)
    tier: TierName
    unit_id: str
    due_at: AwareDatetime
    breached_at: AwareDatetime

    def key(self) -> str:
        return self.work_order_id


class DeadlineWarning(WorkOrderRef):
    """A warning is no move of the order: its `version` is that of the work-order event
    that made the assignment warned about."""

    TYPE: ClassVar[str] = "gridline.sla.deadline_warning.v1"
    TOPIC: ClassVar[str] = "gridline.sla"
    SUMMARY: ClassVar[str] = (
        "An assignment reached yellow or red (shares of its time limit, DOMAIN: 80 % / 100 %); "
        "notify delivers it; a red one also goes to the holder's supervisor, and at the "
        "department tier, where nothing escalates, to the district."
    )

    level: Literal["yellow", "red"]
    assignment_seq: int = Field(ge=1)
    tier: TierName
    unit_id: str = Field(description="The holder warned.")
    unit_name: str
    supervisor_id: str | None = Field(
        description="Red: the unit told as well (the next tier's unit; the district for a "
        "department). None for yellow."
    )
    due_at: AwareDatetime
    warned_at: AwareDatetime = Field(description="When the warning point passed.")


class ReportInBreached(EventData):
    TYPE: ClassVar[str] = "gridline.sla.report_in_breached.v1"
    TOPIC: ClassVar[str] = "gridline.sla"
    SUMMARY: ClassVar[str] = (
        "A department called in did not report in by its report-in time; routing escalates "
        "the call to the district."
    )

    work_order_id: str
    call_seq: int = Field(ge=1)
    department_id: str
    due_at: AwareDatetime
    breached_at: AwareDatetime

    def key(self) -> str:
        return self.work_order_id


class Place(BaseModel):
    """A unit a report may name instead of coordinates (Open311 `address_string`)."""

    id: str = Field(description="The unit id.")
    level: Literal["grid", "community", "street"]
    name: str
    grid_kind: Literal["comprehensive", "special"] | None = Field(
        default=None, description="For a grid: its kind."
    )
    lon: float = Field(description="A point that routing locates in this unit (WGS84).")
    lat: float = Field(description="For a community or street: inside one of its grids.")
    parent_id: str | None = Field(
        default=None,
        description="The unit above: a grid's community, a community's street, a street's"
        " district. Absent from older events.",
    )


class PolicyActivated(EventData):
    TYPE: ClassVar[str] = "gridline.policy.activated.v1"
    TOPIC: ClassVar[str] = "gridline.policy"
    SUMMARY: ClassVar[str] = (
        "Routing put a new jurisdiction or catalogue into effect; intake and others follow it."
    )

    kind: Literal["jurisdiction", "catalogue"]
    version: str
    activated_at: AwareDatetime
    catalogue: dict[str, Any] | None = Field(
        default=None, description="The whole catalogue (kind=catalogue), as its YAML parsed."
    )
    extent: dict[str, Any] | None = Field(
        default=None,
        description="GeoJSON MultiPolygon of each district's hull (kind=jurisdiction).",
    )
    districts: dict[str, str] | None = Field(
        default=None, description="district_id -> district name (kind=jurisdiction)."
    )
    places: list[Place] | None = Field(
        default=None,
        description=(
            "Every grid, community and street with a point inside it, for naming a place"
            " instead of giving coordinates (kind=jurisdiction; added in 2026-11, absent"
            " from older events)."
        ),
    )

    def key(self) -> str:
        return self.kind


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.TYPE: cls
    for cls in (
        ReportSubmitted,
        WorkOrderAssigned,
        WorkOrderEscalated,
        WorkOrderResolved,
        WorkOrderReopened,
        WorkOrderAccepted,
        WorkOrderReturned,
        WorkOrderCancelled,
        WorkOrderClosed,
        DepartmentCalledIn,
        DepartmentReportedIn,
        DepartmentCallEscalated,
        FeedbackGiven,
        DeadlineBreached,
        DeadlineWarning,
        ReportInBreached,
        PolicyActivated,
        PartnerUpdated,
        TipStatusChanged,
    )
}

WorkOrderEvent = WorkOrderAssigned | WorkOrderEscalated | WorkOrderResolved | WorkOrderReopened
# The lifecycle's further moves (issue 9); each follower opts in to those it needs.
LifecycleEvent = (
    WorkOrderAccepted
    | WorkOrderReturned
    | WorkOrderCancelled
    | WorkOrderClosed
    | DepartmentCalledIn
    | DepartmentReportedIn
    | DepartmentCallEscalated
)


def envelope_for(
    data: EventData, *, source: str, time: datetime, event_id: str | None = None
) -> Envelope:
    """Wrap a payload; `time` comes from the stack's clock, not the wall clock."""
    return Envelope(
        id=event_id or new_id(),
        source=source,
        type=data.TYPE,
        subject=data.key(),
        time=time,
        dataschema=f"urn:gridline:event:{data.TYPE}",
        data=data.model_dump(mode="json"),
    )


class UnknownEventType(ValueError):
    pass


def parse_data(envelope: Envelope) -> EventData:
    """The typed payload of an envelope; raises UnknownEventType or pydantic.ValidationError."""
    cls = EVENT_TYPES.get(envelope.type)
    if cls is None:
        raise UnknownEventType(f"unknown event type {envelope.type!r}")
    return cls.model_validate(envelope.data)

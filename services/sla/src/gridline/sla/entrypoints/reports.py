"""sla's assessment and report endpoints: the two-way assessment's rankings
(/v1/assessments) and the monthly report per street (/v1/reports/monthly, CSV or JSON),
all read from the incremental tables."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridline.common.http import attachment
from gridline.common.policy import unit_ids
from gridline.common.policy.catalogue import Targets
from gridline.sla import measuring
from gridline.sla.adapters import store, tallies
from gridline.sla.bootstrap import SlaService
from gridline.sla.domain import flows, measures
from gridline.sla.domain.assessment import Assessed
from gridline.sla.domain.measures import MeasureProblem

BAD_INPUT: dict[int | str, dict[str, Any]] = {
    400: {"description": "A question that cannot be read; the message says what to write."},
    404: {
        "description": "A unit sla never heard of: not in the jurisdiction or catalogue in"
        " effect, nothing ever counted for it (check the id)."
    },
}


class QualityView(BaseModel):
    opened: int = Field(description="Work orders opened in these days.")
    discovered: int = Field(description="Of those, opened from a grid worker's patrol (发现问题).")
    escalations: dict[str, int] = Field(
        description="Escalations by reason (timeout, whistle, rule), on their days."
    )
    escalation_rate: dict[str, float | None] = Field(
        description="Escalations by reason per work order opened in the same days (null: none opened)."
    )
    reopened: int = Field(description="Reopenings on these days (rework, 返工).")
    rework_rate: float | None = Field(
        description="Reopenings per work order resolved in the same days."
    )
    reopened_by_tier: dict[str, int] = Field(description="By the tier that had resolved the order.")
    on_time_rate_by_tier: dict[str, float | None] = Field(
        description="按期结案率 per resolver tier."
    )
    hours_to_resolve: dict[str, dict[str, float | None]] = Field(
        description="Per resolver tier and `all`: p50, p90, p99 in hours, interpolated in "
        "log-spaced buckets (within 9.05 % of the exact percentile)."
    )
    feedbacks: int = Field(description="Reporters' feedback given on these days.")
    mean_satisfaction: float | None = Field(description="Mean of satisfaction 1..5.")
    satisfied_share: float | None = Field(description="Share of feedback with satisfaction 4 or 5.")

    @classmethod
    def of(cls, q: flows.Quality) -> QualityView:
        return cls(
            opened=q.opened,
            discovered=q.discovered,
            escalations=dict(q.escalations),
            escalation_rate=dict(q.escalation_rate),
            reopened=q.reopened,
            rework_rate=q.rework_rate,
            reopened_by_tier=dict(q.reopened_by_tier),
            on_time_rate_by_tier=dict(q.on_time_rate_by_tier),
            hours_to_resolve={k: dict(v) for k, v in q.hours_to_resolve.items()},
            feedbacks=q.feedbacks,
            mean_satisfaction=q.mean_satisfaction,
            satisfied_share=q.satisfied_share,
        )


class AssessedUnit(BaseModel):
    rank: int
    unit: str = Field(description="grid:<id>, community:<id>, street:<id> or department:<id>")
    name_zh: str | None
    name_en: str | None
    score: float = Field(description="Out of 100; see docs/api.md for the formula.")
    discovered: int
    completed: int
    on_time_share: float | None
    rework_share: float | None
    calls: int
    report_in_share: float | None
    returns: int
    return_share: float | None


class AssessmentView(BaseModel):
    scope: str
    level: str
    first_day: date
    last_day: date
    units: list[AssessedUnit] = Field(
        description="Best first; units with nothing counted are absent."
    )


def _unit(a: Assessed, names: dict[str, tuple[str | None, str | None]]) -> AssessedUnit:
    zh, en = names.get(a.unit, (None, None))
    t = a.tally
    return AssessedUnit(
        rank=a.rank,
        unit=a.unit,
        name_zh=zh,
        name_en=en,
        score=a.score,
        discovered=t.discovered,
        completed=t.completed,
        on_time_share=a.on_time_share,
        rework_share=a.rework_share,
        calls=t.calls,
        report_in_share=a.report_in_share,
        returns=t.returns,
        return_share=a.return_share,
    )


# The monthly report's columns: key (JSON, and the English header), Chinese header.
COLUMNS: list[tuple[str, str]] = [
    ("level", "层级"),
    ("unit", "单位编码"),
    ("name_zh", "单位名称"),
    ("name_en", "名称(英文)"),
    ("rank", "街道内排名"),
    ("score", "考核得分"),
    ("discovered", "发现问题数"),
    ("completed", "本级办结数"),
    ("on_time_share", "本级按期办结率"),
    ("rework_share", "本级返工率"),
    ("returns", "退回数"),
    ("resolved", "辖区结案数"),
    ("grid_attainment", "网格内解决率"),
    ("community_attainment", "社区内解决率"),
    ("street_attainment", "街道内解决率"),
    ("on_time_rate", "按期结案率"),
    ("escalated_timeout", "超时上报数"),
    ("escalated_whistle", "吹哨上报数"),
    ("escalated_rule", "规则上报数"),
    ("reopened", "重新办理数"),
    ("mean_satisfaction", "平均满意度"),
    ("satisfied_share", "满意率"),
]


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


async def monthly_rows(
    conn: Any, street: str, month: str, today: date
) -> tuple[date, date, list[dict[str, Any]]]:
    """The street's own row, then its communities and grids by rank: each unit's
    assessment and the figures of its place."""
    scope = measures.check_scope(f"street:{street}")
    targets = await store.targets(conn) or Targets().model_dump()
    rows: list[dict[str, Any]] = []
    first, last = measures.window_days(today, None, month)
    await measuring.require_known(conn, scope)
    units: list[tuple[str, Assessed | None, dict[str, tuple[str | None, str | None]]]] = [
        (scope, None, await tallies.unit_names(conn, [scope]))
    ]
    for level in ("community", "grid"):
        ranking = await measuring.ranking(conn, today, scope, level, None, month)
        units += [(a.unit, a, ranking.names) for a in ranking.units]
    scopes = [unit for unit, _, _ in units]
    every = measures.ALL_CATEGORIES
    totals = await store.tally_sums(conn, scopes, every, first, last)
    quality = await measuring.qualities(conn, scopes, every, first, last)
    for unit, a, names in units:
        f = measures.figures(totals[unit], targets)
        q = quality[unit]
        zh, en = names.get(unit, (None, None))
        row: dict[str, Any] = {
            "level": unit.split(":", 1)[0],
            "unit": unit.split(":", 1)[1],
            "name_zh": zh,
            "name_en": en,
            "rank": a.rank if a else None,
            "score": a.score if a else None,
            "discovered": a.tally.discovered if a else q.discovered,
            "completed": a.tally.completed if a else f.resolved_by_tier["street"],
            "on_time_share": _rounded(a.on_time_share if a else q.on_time_rate_by_tier["street"]),
            "rework_share": _rounded(a.rework_share) if a else None,
            "returns": a.tally.returns if a else None,
            "resolved": f.resolved,
            "grid_attainment": _rounded(f.attainment.get("grid")),
            "community_attainment": _rounded(f.attainment.get("community")),
            "street_attainment": _rounded(f.attainment.get("street")),
            "on_time_rate": _rounded(f.on_time_rate),
            "escalated_timeout": q.escalations["timeout"],
            "escalated_whistle": q.escalations["whistle"],
            "escalated_rule": q.escalations["rule"],
            "reopened": q.reopened,
            "mean_satisfaction": _rounded(q.mean_satisfaction),
            "satisfied_share": _rounded(q.satisfied_share),
        }
        rows.append(row)
    return first, last, rows


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    """UTF-8 with a byte-order mark (spreadsheet software then reads the Chinese), one
    header row of `中文 (english)`, empty cells for what does not apply."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{zh} ({key})" for key, zh in COLUMNS])
    for row in rows:
        writer.writerow(["" if row[key] is None else row[key] for key, _ in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


async def _service(request: Request) -> SlaService:
    svc: SlaService = request.app.state.service
    return svc


Service = Annotated[SlaService, Depends(_service)]


def add_routes(app: FastAPI) -> None:
    @app.get("/v1/assessments", response_model=AssessmentView, responses=BAD_INPUT)
    async def get_assessments(
        svc: Service,
        scope: Annotated[
            str, Query(max_length=120, description="street:<id>, district:<id> or city")
        ] = "city",
        level: Annotated[
            str,
            Query(
                description="grid or community (in a street), street or department (in a "
                "district), department (in the city)"
            ),
        ] = "department",
        window: Annotated[str | None, Query(description="1d, 7d or 30d (default 30d)")] = None,
        month: Annotated[str | None, Query(description="A calendar month, YYYY-MM")] = None,
    ) -> AssessmentView:
        """Two-way assessment (两级考核): the units of one street, district or the city
        ranked by score, with what the score is made of."""
        async with svc.runtime.pool.acquire() as conn:
            today = await measuring.today(conn, svc.sla.clock.now())
            r = await measuring.ranking(conn, today, scope, level, window, month)
        return AssessmentView(
            scope=r.scope,
            level=r.level,
            first_day=r.first_day,
            last_day=r.last_day,
            units=[_unit(a, r.names) for a in r.units],
        )

    @app.get(
        "/v1/reports/monthly",
        responses={
            **BAD_INPUT,
            200: {
                "content": {"text/csv": {}, "application/json": {}},
                "description": "The report.",
            },
        },
    )
    async def get_monthly_report(
        svc: Service,
        street: Annotated[str | None, Query(max_length=100, description="A street id")] = None,
        month: Annotated[str | None, Query(description="YYYY-MM")] = None,
        format: Annotated[str, Query(description="csv or json")] = "json",
    ) -> Response:
        """One street's month for its district office: the street, its communities and
        its grids (ranked), as CSV (UTF-8 with BOM, zh and en headers) or JSON."""
        if not street or not unit_ids.is_unit_id(street):
            raise MeasureProblem(f"street: a street id, e.g. street=320402001, got {street!r}")
        if month is None:
            raise MeasureProblem("month: YYYY-MM, e.g. month=2026-11")
        if format not in ("csv", "json"):
            raise MeasureProblem(f"format: csv or json, got {format[:20]!r}")
        async with svc.runtime.pool.acquire() as conn:
            today = await measuring.today(conn, svc.sla.clock.now())
            first, last, rows = await monthly_rows(conn, street, month, today)
        if format == "csv":
            return Response(
                as_csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": attachment(f"gridline-{street}-{month}.csv")},
            )
        body = {
            "street": street,
            "month": month,
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "columns": [{"key": key, "zh": zh} for key, zh in COLUMNS],
            "rows": rows,
        }
        return JSONResponse(body)

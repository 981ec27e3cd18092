"""POST /v1/sensor-events: a sensor's reading; a breach of its metric's threshold opens an
urgent work order for the grid, one at a time per sensor (sensor_cases.py decides)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gridline.common.http import answers
from gridline.intake import sensor_cases
from gridline.intake.bootstrap import IntakeService
from gridline.intake.domain import sensors
from gridline.intake.domain.idempotency import Once
from gridline.intake.domain.keys import Role
from gridline.intake.entrypoints.v1 import (
    Caller,
    Client,
    IdempotencyKey,
    Refused,
    answer_once,
    once_for,
    require_loaded,
    to_submission,
)
from gridline.intake.entrypoints.v1_schemas import Line100, NewReport, Reporter, clean_text

router = APIRouter(prefix="/v1", tags=["Sensors"])
OPERATION = "POST /v1/sensor-events"


async def sensor_client(client: Caller) -> Client:
    """A sensor key or the admin key; any other role is refused before the body is read."""
    if client.role not in (Role.SENSOR, Role.ADMIN):
        raise HTTPException(403, f"a sensor key is required, not a {client.role.value} key")
    return client


Sensor = Annotated[Client, Depends(sensor_client)]


class SensorEvent(BaseModel):
    """One reading. Where: `lat` + `long` (WGS84), or `grid_id`, or both."""

    model_config = ConfigDict(extra="forbid")

    sensor_id: str = Field(
        pattern=sensors.SENSOR_ID.pattern,
        description=f"The sensor's own opaque id: {sensors.SENSOR_ID_RULE}.",
    )
    metric: str = Field(
        min_length=1, max_length=64, description="A metric code of the catalogue's `sensors`."
    )
    value: float = Field(allow_inf_nan=False, description="The reading, in the metric's unit.")
    observed_at: AwareDatetime = Field(
        description="When it was read, with a time zone: not ahead of the city's clock by "
        "more than 5 minutes, not older than 24 hours."
    )
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS84 latitude.")
    long: float | None = Field(default=None, ge=-180, le=180, description="WGS84 longitude.")
    grid_id: Line100 | None = Field(default=None, description="The grid the sensor is in.")
    description: Annotated[str, Field(max_length=500), AfterValidator(clean_text)] = Field(
        default="", description="Added to the generated description of a breach."
    )

    @model_validator(mode="after")
    def _somewhere(self) -> SensorEvent:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long go together: send both, or neither with grid_id")
        if self.lat is None and self.grid_id is None:
            raise ValueError("say where: lat and long, or grid_id")
        return self


class SensorAnswer(BaseModel):
    breach: bool = Field(description="The value is at or over the metric's threshold.")
    metric: str
    value: float
    threshold: float
    deduplicated: bool | None = Field(
        default=None,
        description="A breach while the sensor's earlier order is open: nothing new stored.",
    )
    report_id: str | None = None
    work_order_id: str | None = None
    token: str | None = Field(default=None, description="The new report's token (201 only).")
    readings: int | None = Field(
        default=None, description="Breaches counted against this order, the first included."
    )
    severity: Literal["urgent", "critical"] | None = None
    service_code: str | None = Field(default=None, description="The category of the order.")


@router.post(
    "/sensor-events",
    status_code=201,
    summary="A sensor's reading: a threshold breach opens an urgent work order",
    response_model=SensorAnswer,
    response_model_exclude_none=True,
    response_description="201: a breach opened a report and its work order (stored with its "
    "event before this answer). 200: under the threshold (breach false, nothing stored), or a "
    "breach while the sensor's order is open (deduplicated true, counted in readings).",
    responses={
        200: {"model": SensorAnswer, "description": "no breach, or deduplicated"},
        **answers(
            {
                400: "a field is missing or malformed (named): an unknown metric (the known "
                "ones are listed), a place outside the city, an unknown grid, a time ahead "
                "of the clock or stale",
                403: "a sensor key (or the admin key) is required",
                409: "the Idempotency-Key was used with another body",
                503: "not accepted: policy not loaded yet, or the database is unavailable",
            }
        ),
    },
)
async def post_sensor_event(
    request: Request, event: SensorEvent, client: Sensor, idempotency_key: IdempotencyKey = None
) -> Response:
    svc: IntakeService = request.app.state.service
    body = await request.body()  # read already, to parse `event`
    once: Once | None = None

    def once_of() -> Once | None:
        nonlocal once
        once = once_for(client, idempotency_key, OPERATION, body)
        return once

    async def attempt() -> tuple[int, bytes]:
        intake, now = svc.intake, svc.intake.clock.now()
        require_loaded(intake.policy)
        assert intake.policy.catalogue is not None
        try:
            metric = sensors.metric_of(intake.policy.catalogue, event.metric)
            sensors.check_observed_at(event.observed_at, now)
        except sensors.ReadingRefused as exc:
            raise Refused(400, str(exc)) from None
        report = NewReport(
            service_code=metric.category,
            description=sensors.describe(metric, event.sensor_id, event.value, event.description),
            lat=event.lat,
            long=event.long,
            grid_id=event.grid_id,
            source="sensor",
            # The sensor is its report's "device": its reporter_ref is an HMAC of
            # ("sensor", sensor_id), like any device's (domain/reporters.py).
            reporter=Reporter(device_id=event.sensor_id),
            occurred_at=event.observed_at,
            tags=list(sensors.labels(metric)),
        )
        submission, read_off = to_submission(report, intake, now)  # the place is checked
        answer = SensorAnswer(
            breach=sensors.is_breach(metric, event.value),
            metric=metric.code,
            value=event.value,
            threshold=metric.threshold,
        )
        if not answer.breach:
            return 200, _json(answer)
        tags = sensors.tags_of(metric, read_off)

        def taken_answer(taken: sensor_cases.Taken) -> SensorAnswer:
            return answer.model_copy(
                update={
                    "deduplicated": taken.deduplicated,
                    "report_id": taken.report_id,
                    "work_order_id": taken.work_order_id,
                    "token": taken.token,
                    "readings": taken.readings,
                    "severity": tags.severity,
                    "service_code": metric.category,
                }
            )

        taken = await sensor_cases.take_breach(
            intake,
            svc.runtime.pool,
            sensor_cases.Breach(event.sensor_id, metric.code, event.value, event.observed_at),
            submission,
            tags,
            once,
            lambda t: _json(taken_answer(t)),
        )
        if taken.deduplicated:
            return 200, _json(taken_answer(taken))
        svc.metrics.accepted_from("sensor").inc()
        return 201, _json(taken_answer(taken))

    return await answer_once(svc, once_of, attempt)


def _json(answer: SensorAnswer) -> bytes:
    return answer.model_dump_json(exclude_none=True).encode()

"""Sensors' threshold events: which readings are breaches, and what the report a breach
files says (its description, in Chinese and English, and its severity)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from gridline.common.events import ReportTags, Severity
from gridline.common.policy.catalogue import SEVERITY_RANK, Catalogue, SensorMetric

# A sensor id is the sensor's own opaque name: safe in a URL, a log and a lock key.
SENSOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
SENSOR_ID_RULE = "1-64 letters, digits, dots, colons, underscores or dashes, starting alphanumeric"
# How far a sensor's clock may run ahead of ours, and how old a reading may be: a stale
# breach is no reason to send a grid worker now.
CLOCK_SKEW = timedelta(minutes=5)
STALE_AFTER = timedelta(hours=24)
LABEL = "sensor"


class ReadingRefused(ValueError):
    """A reading that can never be taken (400), its field named in the message."""


def metric_of(catalogue: Catalogue, code: str) -> SensorMetric:
    metric = catalogue.sensor_metrics.get(code)
    if metric is None:
        known = (
            ", ".join(sorted(catalogue.sensor_metrics)) or "none (the catalogue lists no sensors)"
        )
        raise ReadingRefused(f"metric: {code!r} is not a metric of this city; known: {known}")
    return metric


def check_observed_at(observed_at: datetime, now: datetime) -> None:
    if observed_at > now + CLOCK_SKEW:
        raise ReadingRefused(
            f"observed_at: is in the future (more than {CLOCK_SKEW.total_seconds() / 60:g} minutes"
            " ahead of the city's clock)"
        )
    if observed_at < now - STALE_AFTER:
        raise ReadingRefused(
            f"observed_at: is more than {STALE_AFTER.total_seconds() / 3600:g} hours ago;"
            " a stale reading opens no work order"
        )


def is_breach(metric: SensorMetric, value: float) -> bool:
    """At or over the threshold."""
    return value >= metric.threshold


def _number(value: float) -> str:
    return f"{value:g}"


def describe(metric: SensorMetric, sensor_id: str, value: float, note: str = "") -> str:
    """What the grid worker reads, e.g. "人群密度 5.2 人/㎡ 超过阈值 4 / crowd density
    5.2 persons/m² over the threshold 4 (传感器 / sensor cam-7)"."""
    v, t = _number(value), _number(metric.threshold)
    over_zh, over_en = ("达到", "at") if value == metric.threshold else ("超过", "over")
    text = (
        f"{metric.name_zh} {v} {metric.unit_in_zh} {over_zh}阈值 {t} / "
        f"{metric.name_en} {v} {metric.unit} {over_en} the threshold {t}"
        f" (传感器 / sensor {sensor_id})"
    )
    return f"{text}. {note}" if note else text


def labels(metric: SensorMetric) -> tuple[str, ...]:
    return (LABEL, metric.code)


def tags_of(metric: SensorMetric, read_off_text: ReportTags) -> ReportTags:
    """The breach's tags: the metric's severity, or a higher one the sensor's own note
    raised (a camera that says 有人被困)."""
    severity: Severity = metric.severity
    if SEVERITY_RANK[read_off_text.severity] > SEVERITY_RANK[severity]:
        severity = read_off_text.severity
    return read_off_text.model_copy(update={"severity": severity})

"""Working calendars: a time limit counted in working hours instead of clock hours (pure).

A calendar names the working hours of a working day (in the catalogue's time zone), the
weekdays that are working days, holidays by date, and make-up working days (调休: a
weekend date worked instead of a holiday). Adding a working span to a moment walks the
working intervals from that moment on: 4 working hours from Friday 16:00 on an 08:30-12:00,
13:30-17:30 calendar end on Monday at 11:00.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# A limit longer than this many calendar days of searching is a calendar without working
# time (every day a holiday): refused rather than searched for ever.
MAX_DAYS = 3 * 366


class NoWorkingTime(ValueError):
    """The calendar has no working time within MAX_DAYS of the start."""


@dataclass(frozen=True, slots=True)
class _Days:
    """A calendar's fields read once: the working intervals as offsets from midnight and
    the day sets. Routing adds working time for every order it opens; re-reading the
    intervals for every day walked was a tenth of its CPU."""

    offsets: tuple[tuple[timedelta, timedelta], ...]
    weekdays: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]
    # (day, zone) -> that day's intervals as instants; the days walked are mostly the
    # same few (today, tomorrow), so each is worked out once.
    _instants: dict[tuple[date, str], list[tuple[datetime, datetime]]] = field(
        default_factory=dict, compare=False, hash=False
    )

    def working(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() in self.weekdays

    def instants(self, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """The day's working intervals as instants (UTC): an interval's length is the time
        that really passes in it, so on the day a clock goes forward an hour, 00:00-24:00
        lasts 23 hours and one that spans 01:00-02:00 an hour less (an end of 24:00 is the
        next midnight)."""
        key = (day, tz.key)
        found = self._instants.get(key)
        if found is None:
            if len(self._instants) >= _CACHED_DAYS:
                self._instants.clear()
            midnight = datetime(day.year, day.month, day.day)
            found = [(_utc(midnight + b, tz), _utc(midnight + e, tz)) for b, e in self.offsets]
            self._instants[key] = found
        return found


_CACHED_DAYS = 4096


def _utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A local wall time as an instant (a time a clock skips is read with the offset in
    force before the change, PEP 495's fold 0)."""
    return local.replace(tzinfo=tz).astimezone(UTC)


class WorkCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: list[str] = Field(
        min_length=1,
        description='Working intervals of a working day, local time, e.g. ["08:30-12:00",'
        ' "13:30-17:30"]; in order, not overlapping.',
    )
    weekdays: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]),
        description="The weekdays that are working days.",
    )
    holidays: list[date] = Field(default_factory=list, description="Dates off (YYYY-MM-DD).")
    workdays: list[date] = Field(
        default_factory=list,
        description="Make-up working days (调休): dates worked although their weekday is not.",
    )

    @field_validator("hours")
    @classmethod
    def _intervals(cls, value: list[str]) -> list[str]:
        last = time(0)
        for text in value:
            m = _INTERVAL.match(text)
            if m is None:
                raise ValueError(f"working hours {text!r} must read HH:MM-HH:MM")
            start, end = _clock(m.group(1), m.group(2)), _clock(m.group(3), m.group(4))
            if not start < end or start < last:
                raise ValueError(
                    f"working hours {text!r} must end after they start and follow the"
                    " interval before without overlapping"
                )
            last = end
        return value

    _days: _Days = PrivateAttr()

    @model_validator(mode="after")
    def _both(self) -> WorkCalendar:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"dates both holiday and make-up working day: {both}")
        return self

    def model_post_init(self, context: object, /) -> None:
        offsets = []
        for text in self.hours:
            m = _INTERVAL.match(text)
            assert m is not None  # validated
            begin = timedelta(hours=int(m.group(1)), minutes=int(m.group(2)))
            end = timedelta(hours=int(m.group(3)), minutes=int(m.group(4)))
            offsets.append((begin, end))
        self._days = _Days(
            tuple(offsets),
            frozenset(WEEKDAYS.index(d) for d in self.weekdays),
            frozenset(self.holidays),
            frozenset(self.workdays),
        )

    @property
    def day_length(self) -> timedelta:
        """The working time of one working day (a "working day" limit is this long)."""
        return sum((end - start for start, end in self._days.offsets), timedelta())

    def is_working_day(self, day: date) -> bool:
        return self._days.working(day)

    def add(self, start: datetime, span: timedelta, zone: str) -> datetime:
        """The moment `span` of working time after `start` (an aware datetime): the end
        of the working time it takes, in UTC. A zero span is `start` itself. Working time
        is time that really passes, also on the days a clock changes."""
        if span <= timedelta(0):
            return start
        tz = ZoneInfo(zone)
        at = start.astimezone(UTC)
        left = span
        day = start.astimezone(tz).date()
        days = self._days
        for _ in range(MAX_DAYS):
            if days.working(day):
                for begin, end in days.instants(day, tz):
                    if end <= at:
                        continue
                    begin = max(begin, at)
                    if end - begin >= left:
                        return begin + left
                    left -= end - begin
            day += timedelta(days=1)
        raise NoWorkingTime(f"no {span} of working time within {MAX_DAYS} days of {start}")

    def between(self, start: datetime, end: datetime, zone: str) -> timedelta:
        """The working time from `start` to `end` (aware datetimes; none if `end` is not
        after `start`): the inverse of `add`, so add(start, between(start, end)) is the
        end of the working time before `end`."""
        if end <= start:
            return timedelta(0)
        tz = ZoneInfo(zone)
        since, until = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
        days = self._days
        while day <= last:
            if days.working(day):
                for begin, finish in days.instants(day, tz):
                    begin, finish = max(begin, since), min(finish, until)
                    if finish > begin:
                        total += finish - begin
            day += timedelta(days=1)
        return total


def _clock(hours: str, minutes: str) -> time:
    return time(int(hours) % 24, int(minutes)) if hours != "24" else time(23, 59, 59)

"""Working calendars: limits in working hours land where a person counting office hours,
weekends, holidays and make-up working days (调休) would put them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gridline.common.policy.calendar import NoWorkingTime, WorkCalendar

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
OFFICE = WorkCalendar(
    hours=["08:30-12:00", "13:30-17:30"],
    holidays=[date(2026, 10, 1), date(2026, 10, 2)],
    workdays=[date(2026, 10, 10)],  # a Saturday worked instead
)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def add(start: datetime, hours: float, cal: WorkCalendar = OFFICE) -> datetime:
    return cal.add(start, timedelta(hours=hours), "Asia/Shanghai").astimezone(SH)


def test_within_a_morning_and_across_lunch() -> None:
    assert add(at(2026, 11, 23, 9, 0), 2) == at(2026, 11, 23, 11, 0)  # Monday
    assert add(at(2026, 11, 23, 11, 0), 2) == at(2026, 11, 23, 14, 30)  # lunch does not count


def test_friday_afternoon_runs_into_monday() -> None:
    assert add(at(2026, 11, 27, 16, 0), 4) == at(2026, 11, 30, 11, 0)


def test_a_start_outside_working_hours_waits_for_the_next_interval() -> None:
    assert add(at(2026, 11, 23, 20, 0), 1) == at(2026, 11, 24, 9, 30)
    assert add(at(2026, 11, 28, 10, 0), 1) == at(2026, 11, 30, 9, 30)  # Saturday


def test_holidays_are_skipped_and_make_up_days_worked() -> None:
    # Wednesday 30 September 17:00; 1-2 October are holidays, 3-4 a weekend.
    assert add(at(2026, 9, 30, 17, 0), 1) == at(2026, 10, 5, 9, 0)
    # Friday 9 October 17:00 → the make-up Saturday 10 October.
    assert add(at(2026, 10, 9, 17, 0), 1) == at(2026, 10, 10, 9, 0)


def test_a_working_day_is_the_calendars_day_length() -> None:
    assert OFFICE.day_length == timedelta(hours=7, minutes=30)
    monday = at(2026, 11, 23, 8, 30)
    assert add(monday, OFFICE.day_length.total_seconds() / 3600) == at(2026, 11, 23, 17, 30)


def test_round_the_clock_is_clock_time() -> None:
    always = WorkCalendar(
        hours=["00:00-24:00"], weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    start = at(2026, 11, 27, 23, 15)
    assert add(start, 30, always) == start + timedelta(hours=30)


def test_bad_calendars_are_refused_with_what_to_fix() -> None:
    with pytest.raises(ValidationError, match="HH:MM-HH:MM"):
        WorkCalendar(hours=["8:30-12"])
    with pytest.raises(ValidationError, match="overlapping"):
        WorkCalendar(hours=["08:30-12:00", "11:00-13:00"])
    with pytest.raises(ValidationError, match="both holiday and make-up"):
        WorkCalendar(
            hours=["08:00-17:00"], holidays=[date(2026, 1, 1)], workdays=[date(2026, 1, 1)]
        )
    never = WorkCalendar(hours=["08:00-17:00"], weekdays=[])
    with pytest.raises(NoWorkingTime):
        never.add(at(2026, 1, 1, 0, 0), timedelta(hours=1), "Asia/Shanghai")


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    first=st.integers(min_value=0, max_value=4000),
    second=st.integers(min_value=0, max_value=4000),
)
def test_adding_in_two_steps_is_adding_once_and_never_ends_outside_work(
    start: datetime, first: int, second: int
) -> None:
    begin = start.replace(tzinfo=UTC)
    a, b = timedelta(minutes=first), timedelta(minutes=second)
    once = OFFICE.add(begin, a + b, "Asia/Shanghai")
    twice = OFFICE.add(OFFICE.add(begin, a, "Asia/Shanghai"), b, "Asia/Shanghai")
    assert once == twice
    assert once >= begin
    if a + b > timedelta(0):
        local = once.astimezone(SH)
        assert OFFICE.is_working_day(local.date())
        clock = local.time()
        assert time(8, 30) < clock <= time(12) or time(13, 30) < clock <= time(17, 30)


def test_working_time_between_two_moments_skips_nights_weekends_and_holidays() -> None:
    def between(a: datetime, b: datetime) -> timedelta:
        return OFFICE.between(a, b, "Asia/Shanghai")

    assert between(at(2026, 11, 23, 9, 0), at(2026, 11, 23, 11, 0)) == timedelta(hours=2)
    assert between(at(2026, 11, 27, 16, 0), at(2026, 11, 30, 11, 0)) == timedelta(hours=4)
    # Wed 30 Sep 17:00 to Fri 9 Oct 9:00: half an hour on the 30th, 1-2 Oct are holidays,
    # 3-4 Oct a weekend, 5-8 Oct four working days, half an hour on the 9th.
    assert between(at(2026, 9, 30, 17, 0), at(2026, 10, 9, 9, 0)) == (
        timedelta(minutes=30) + 4 * OFFICE.day_length + timedelta(minutes=30)
    )
    assert between(at(2026, 11, 23, 11, 0), at(2026, 11, 23, 9, 0)) == timedelta(0)


@given(
    start=st.datetimes(min_value=datetime(2026, 9, 1), max_value=datetime(2026, 12, 31)),
    minutes=st.integers(min_value=0, max_value=6000),
)
def test_between_undoes_add(start: datetime, minutes: int) -> None:
    begin = start.replace(tzinfo=UTC)
    span = timedelta(minutes=minutes)
    assert OFFICE.between(begin, OFFICE.add(begin, span, "Asia/Shanghai"), "Asia/Shanghai") == span


LONDON = "Europe/London"  # clocks go forward 29 March 2026 01:00 UTC, back 25 October
ALWAYS = WorkCalendar(
    hours=["00:00-24:00"], weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
)


def test_working_time_is_time_that_passes_on_the_days_clocks_change() -> None:
    """Counted on the wall clock, 24 working hours across the spring change elapsed 23
    real hours, and between() over 24 real hours counted 25."""
    noon = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert ALWAYS.add(noon, timedelta(hours=24), LONDON) == noon + timedelta(hours=24)
    assert ALWAYS.between(noon, noon + timedelta(hours=24), LONDON) == timedelta(hours=24)
    autumn = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert ALWAYS.add(autumn, timedelta(hours=24), LONDON) == autumn + timedelta(hours=24)
    # A night shift 00:00-03:00 local: on 29 March it lasts two real hours (00:00-01:00
    # GMT, then 02:00-03:00 BST); two working hours from its start end at its end.
    nights = WorkCalendar(
        hours=["00:00-03:00"], weekdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert nights.add(start, timedelta(hours=2), LONDON) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    assert nights.between(start, start + timedelta(hours=5), LONDON) == timedelta(hours=2)


@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    minutes=st.integers(min_value=0, max_value=20000),
)
def test_round_the_clock_is_clock_time_in_a_zone_with_clock_changes(
    start: datetime, minutes: int
) -> None:
    begin = start.replace(tzinfo=UTC)
    span = timedelta(minutes=minutes)
    assert ALWAYS.add(begin, span, LONDON) == begin + span
    assert ALWAYS.between(begin, begin + span, LONDON) == span
    assert OFFICE.between(begin, OFFICE.add(begin, span, LONDON), LONDON) == span

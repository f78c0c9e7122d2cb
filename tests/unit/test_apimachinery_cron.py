"""Cron schedules: fields, names, steps, descriptors, day-of-month/day-of-week semantics, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apimachinery.cron import CronError, Schedule, parse_duration
from controllers.cronjob import job_name

T = datetime(2025, 3, 14, 10, 7, 30, tzinfo=UTC)  # a Friday


def nxt(expr: str, after: datetime = T, tz: object = None) -> datetime:
    return Schedule.parse(expr).next(after, tz)  # type: ignore[arg-type]


def test_basic_fields() -> None:
    assert nxt("* * * * *") == datetime(2025, 3, 14, 10, 8, tzinfo=UTC)
    assert nxt("*/15 * * * *") == datetime(2025, 3, 14, 10, 15, tzinfo=UTC)
    assert nxt("5 * * * *") == datetime(2025, 3, 14, 11, 5, tzinfo=UTC)
    assert nxt("0 9-17/4 * * *") == datetime(2025, 3, 14, 13, 0, tzinfo=UTC)
    assert nxt("30 2 1 * *") == datetime(2025, 4, 1, 2, 30, tzinfo=UTC)
    assert nxt("0 0 1 jan,jul *") == datetime(2025, 7, 1, tzinfo=UTC)
    assert nxt("0 12 * * mon-wed") == datetime(2025, 3, 17, 12, 0, tzinfo=UTC)
    assert nxt("0 0 * * 7") == datetime(2025, 3, 16, tzinfo=UTC)  # 7 is Sunday too


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: either matches (the 15th, or a Monday) -- Saturday the 15th comes first.
    assert nxt("0 0 15 * 1") == datetime(2025, 3, 15, tzinfo=UTC)
    assert nxt("0 0 20 * mon") == datetime(2025, 3, 17, tzinfo=UTC)
    # Only one restricted: that one alone.
    assert nxt("0 0 20 * *") == datetime(2025, 3, 20, tzinfo=UTC)


def test_descriptors_and_every() -> None:
    assert nxt("@hourly") == datetime(2025, 3, 14, 11, tzinfo=UTC)
    assert nxt("@daily") == datetime(2025, 3, 15, tzinfo=UTC)
    assert nxt("@weekly") == datetime(2025, 3, 16, tzinfo=UTC)
    assert nxt("@monthly") == datetime(2025, 4, 1, tzinfo=UTC)
    assert nxt("@yearly") == datetime(2026, 1, 1, tzinfo=UTC)
    assert nxt("@every 1h30m", datetime(2025, 1, 1, 0, 10, tzinfo=UTC)) == datetime(2025, 1, 1, 1, 30, tzinfo=UTC)
    assert parse_duration("1h30m10s") == timedelta(hours=1, minutes=30, seconds=10)


def test_time_zones_and_dst() -> None:
    ny = ZoneInfo("America/New_York")
    assert nxt("0 9 * * *", T, ny) == datetime(2025, 3, 14, 13, 0, tzinfo=UTC)  # EDT: UTC-4
    # The DST change on 2025-03-09: 09:00 New York is 14:00 UTC before and 13:00 UTC after.
    before = datetime(2025, 3, 8, 15, 0, tzinfo=UTC)
    assert nxt("0 9 * * *", before, ny) == datetime(2025, 3, 9, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "5-1 * * * *",
                                 "*/0 * * * *", "TZ=UTC * * * * *", "@every x", "* * * foo *"])
def test_bad_schedules(bad: str) -> None:
    with pytest.raises(CronError):
        Schedule.parse(bad)


def test_most_recent_counts_and_jumps() -> None:
    every_minute = Schedule.parse("* * * * *")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    t, n = every_minute.most_recent(start, start + timedelta(minutes=5, seconds=30))
    assert t == start + timedelta(minutes=5) and n == 5
    t, n = every_minute.most_recent(start, start + timedelta(days=30, seconds=10))
    assert t == start + timedelta(days=30) and n > 100
    assert Schedule.parse("0 0 1 1 *").most_recent(start, start + timedelta(days=3)) == (None, 0)


def test_job_names_are_minutes_since_the_epoch() -> None:
    assert job_name("backup", datetime(2025, 1, 1, tzinfo=UTC)) == f"backup-{1735689600 // 60}"

"""Cron schedules as CronJobs write them: the standard 5 fields, names, steps and ranges, and the
``@hourly``-style descriptors (``cron.ParseStandard`` of robfig/cron, which Kubernetes uses).

``minute hour day-of-month month day-of-week``; ``*``, ``a-b``, ``a-b/n``, ``*/n``, ``a/n`` and lists
``a,b``; months ``jan``-``dec`` and weekdays ``sun``-``sat`` (0 and 7 are Sunday); ``?`` is ``*``. As in
cron, when both day fields are restricted a time matches if *either* does. Descriptors: ``@yearly``
(``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``), ``@hourly``, ``@every <duration>``.
Times are computed in a time zone (``spec.timeZone``, default UTC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

_MONTHS = {n: i + 1 for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
MAX_SEARCH_YEARS = 5


class CronError(ValueError):
    """An unparsable schedule (the message is what the CronJob's event shows)."""


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None = None) -> tuple[frozenset[int], bool]:
    """The values of one field and whether it was ``*`` (unrestricted)."""
    values: set[int] = set()
    star = False
    for part in text.lower().split(","):
        if not part:
            raise CronError(f"empty field in {text!r}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"bad step {step_text!r} in {text!r}")
            step = int(step_text)
        if base in ("*", "?"):
            start, end = lo, hi
            star = star or not step_text
        else:
            first, dash, last = base.partition("-")
            start = _value(first, lo, hi, names)
            end = _value(last, lo, hi, names) if dash else (hi if step_text else start)
            if end < start:
                raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {text!r}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def _value(text: str, lo: int, hi: int, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text!r}")
    value = int(text)
    if not lo <= value <= hi:
        raise CronError(f"value ({value}) out of range [{lo}, {hi}]")
    return value


def parse_duration(text: str) -> timedelta:
    """Go's ``time.ParseDuration`` for ``h``, ``m``, ``s``, ``ms`` (e.g. ``1h30m``)."""
    pos, total = 0, 0.0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise CronError(f"failed to parse duration {text!r}")
    return timedelta(seconds=total)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    days_star: bool = True
    weekdays_star: bool = True
    every: timedelta | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        text = " ".join(text.split())
        if text.startswith("TZ=") or text.startswith("CRON_TZ="):
            raise CronError("CRON_TZ or TZ used in schedule is not supported, use spec.timeZone")
        if text.startswith("@every "):
            every = parse_duration(text[len("@every "):].strip())
            if every < timedelta(seconds=1):
                raise CronError("@every needs at least one second")
            return cls(every=every)
        text = _DESCRIPTORS.get(text, text)
        fields = text.split(" ")
        if len(fields) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text!r}")
        minutes, _ = _field(fields[0], 0, 59)
        hours, _ = _field(fields[1], 0, 23)
        days, days_star = _field(fields[2], 1, 31)
        months, _ = _field(fields[3], 1, 12, _MONTHS)
        weekdays, weekdays_star = _field(fields[4], 0, 7, _DAYS)
        weekdays = frozenset(d % 7 for d in weekdays)
        return cls(minutes, hours, days, months, weekdays, days_star, weekdays_star)

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next(self, after: datetime, tz: tzinfo | None = None) -> datetime:
        """The first activation strictly after ``after`` (an aware datetime), in ``tz``'s wall time."""
        if self.every is not None:
            step = self.every.total_seconds()
            base = after.timestamp()
            return datetime.fromtimestamp((int(base // step) + 1) * step, after.tzinfo)
        local = after.astimezone(tz) if tz is not None else after
        t = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * MAX_SEARCH_YEARS)
        while t <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            # Re-localize: adding timedeltas to an aware datetime keeps the old UTC offset across DST.
            if tz is not None:
                t = t.replace(tzinfo=None).replace(tzinfo=tz)
            return t.astimezone(after.tzinfo)
        raise CronError("no activation within five years")

    def most_recent(self, start: datetime, end: datetime, tz: tzinfo | None = None,
                    limit: int = 100) -> tuple[datetime | None, int]:
        """The latest activation in (start, end] and how many there were (counting stops past ``limit``;
        then the search jumps close to ``end`` rather than walking years of missed minutes)."""
        found: list[datetime] = []
        t = start
        while True:
            try:
                t = self.next(t, tz)
            except CronError:
                break
            if t > end:
                break
            found.append(t)
            if len(found) > limit:
                gap = max((b - a for a, b in zip(found, found[1:])), default=timedelta(minutes=1))
                jump = end - 2 * gap
                if jump > t:
                    t = jump
                    found = found[-1:]
                    count = limit + 1
                    while True:
                        try:
                            nxt = self.next(t, tz)
                        except CronError:
                            break
                        if nxt > end:
                            break
                        found.append(nxt)
                        t = nxt
                    return found[-1], count
        return (found[-1] if found else None), len(found)

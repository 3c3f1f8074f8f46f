"""Cron expressions in a time zone: the one engine behind cron triggers, their preview and `manage.py schedule`.

A thin adapter over cronsim (Debian cron semantics, maintained by healthchecks.io). Plain Python, no Django.

DST policy (Debian cron's, which cronsim implements; the expression is wall-clock time in the trigger's zone):

* A *fixed-time* expression, whose minute and hour fields both start with something other than ``*``
  (``30 2 * * *``, ``0 9-17 * * 1-5``, ``0 1-23/2 * * *``), runs at the first real instant after a
  spring-forward gap when its wall time falls in the gap (Berlin 2026-03-29 02:30 runs at 03:00 CEST; several
  gap times collapse into that one fire), and runs once, at the first occurrence, in a fall-back repeated hour.
* Any other expression (``*`` or ``*/n`` in the minute or the hour field, ``@hourly``) follows real time: a wall
  time in a gap does not exist and is skipped, and a repeated wall time fires at both occurrences
  (New York ``*/15 * * * *`` fires 8 times between 01:00 EDT and 01:45 EST on the fall-back night).

Instants are compared in UTC: Python compares two datetimes that share a tzinfo by wall time and ignores
``fold``, which is wrong precisely in the repeated hour.
"""
from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

__all__ = [
    "CronError",
    "describe",
    "iter_fire_times",
    "missed_fire_times",
    "next_fire_time",
    "next_fire_times",
    "validate_cron",
    "validate_timezone",
]

UTC = dt_timezone.utc

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_LIST_FORMS = "*, a list a,b, a range a-b, a step */n or a-b/n"
_FIELD_FORMS = (
    f"0-59; {_LIST_FORMS}",
    f"0-23; {_LIST_FORMS}",
    f"1-31, L (last day), LW (last weekday); {_LIST_FORMS}",
    f"1-12 or JAN-DEC; {_LIST_FORMS}",
    f"0-7 or SUN-SAT (0 and 7 are Sunday), 5L (last Friday), 1#2 (second Monday); {_LIST_FORMS}",
)
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ACCEPTED = f"5 fields ({' '.join(FIELD_NAMES)}) or one of {', '.join(_ALIASES)}"
# Echoed input is cut to this many characters: an error message is not a place to reflect a whole payload.
_ECHO_CHARS = 100
# cronsim gives up after 50 years without a match; start the never-matches probe where every cycle fits.
_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)


class CronError(ValueError):
    """An invalid cron expression or timezone; the message is meant for the person who wrote it."""


def validate_cron(expression: str) -> str | None:
    """Return None when `expression` is a valid five-field cron expression, else a message saying why not."""
    try:
        _normalise(expression)
    except CronError as exc:
        return str(exc)
    return None


def validate_timezone(name: str) -> str | None:
    """Return None when `name` is an IANA timezone known to zoneinfo, else a message."""
    try:
        _zone(name)
    except CronError as exc:
        return str(exc)
    return None


def iter_fire_times(expression: str, timezone: str = "UTC", *, after: datetime) -> Iterator[datetime]:
    """Yield fire times strictly after the aware `after`, in increasing real time, as aware datetimes in `timezone`."""
    cron_expr = _normalise(expression)
    zone = _zone(timezone)
    after_utc = _as_utc(after, "after")
    instants = _fixed_time_instants if _is_fixed_time(cron_expr) else _wildcard_instants
    last = after_utc
    for instant in instants(cron_expr, zone, after_utc):
        if instant <= last:  # a fixed-time job asked from inside a repeated hour: that wall time already ran
            continue
        last = instant
        yield instant.astimezone(zone)


def next_fire_times(
    expression: str, timezone: str = "UTC", *, after: datetime, count: int = 10
) -> list[datetime]:
    """The next `count` fire times strictly after the aware datetime `after`, as aware datetimes in `timezone`.

    Fewer are returned only when the expression has no match within cronsim's 50-year horizon.
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    times: list[datetime] = []
    if count == 0:
        return times
    for fire in iter_fire_times(expression, timezone, after=after):
        times.append(fire)
        if len(times) == count:
            break
    return times


def next_fire_time(expression: str, timezone: str = "UTC", *, after: datetime) -> datetime | None:
    """The first fire time strictly after `after`, or None when there is none."""
    return next(iter_fire_times(expression, timezone, after=after), None)


def missed_fire_times(
    expression: str, timezone: str = "UTC", *, last_run: datetime, now: datetime, limit: int
) -> list[datetime]:
    """Fire times in ``(last_run, now]`` for `catchup: true`, oldest first.

    At most `limit` (the trigger's `max_catchup`) are returned, and they are the most recent ones: after a
    long outage the runs that still matter are the latest. Work is proportional to `limit`, not to the
    length of the outage.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    last_run_utc, now_utc = _as_utc(last_run, "last_run"), _as_utc(now, "now")
    if limit == 0 or now_utc <= last_run_utc:
        return []
    # Look back over a window that doubles until it holds `limit` fires or reaches last_run.
    window = timedelta(hours=1)
    while True:
        start = max(last_run_utc, now_utc - window)
        recent: deque[datetime] = deque(maxlen=limit)
        seen = 0
        for fire in iter_fire_times(expression, timezone, after=start):
            if fire.astimezone(UTC) > now_utc:
                break
            recent.append(fire)
            seen += 1
        if seen >= limit or start == last_run_utc:
            return list(recent)
        window *= 2


def describe(expression: str, timezone: str | None = None) -> str:
    """A human description such as 'At 09:00, Monday through Friday (Europe/Berlin)'."""
    # Imported here: only the admin and the API describe schedules, the engine never does.
    from cron_descriptor import ExpressionDescriptor, FormatException, MissingFieldException, Options, \
        WrongArgumentException

    cron_expr = _normalise(expression)
    options = Options()
    options.use_24hour_time_format = True
    options.throw_exception_on_parse_error = True
    try:
        text = ExpressionDescriptor(cron_expr, options).get_description()
    except (FormatException, MissingFieldException, WrongArgumentException, ValueError):
        text = cron_expr  # a form cron-descriptor does not know (LW, 5L); the expression is valid
    return f"{text} ({timezone})" if timezone else text


# --- internals -------------------------------------------------------------------------------------------


def _echo(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO_CHARS else f"{text[:_ECHO_CHARS]}…"


def _normalise(expression: str) -> str:
    """The expression as five space-separated fields (aliases expanded), or CronError with the reason."""
    if not isinstance(expression, str):
        raise CronError(f"invalid cron expression {_echo(expression)}: expected a string of {_ACCEPTED}")
    text = " ".join(expression.split())
    fields = _ALIASES.get(text.lower(), text).split()
    prefix = f"invalid cron expression {_echo(expression)}"
    if len(fields) != 5:
        raise CronError(f"{prefix}: expected {_ACCEPTED}, got {len(fields)} field{'s' if len(fields) != 1 else ''}")
    for index, token in enumerate(fields):
        probe = ["*"] * 5
        probe[index] = token
        try:
            CronSim(" ".join(probe), _PROBE_START)
        except (CronSimError, ValueError, IndexError):
            raise CronError(
                f"{prefix}: {FIELD_NAMES[index]} field {_echo(token)} is not valid (accepted: {_FIELD_FORMS[index]})"
            ) from None
    joined = " ".join(_single_value_steps(field) for field in fields)
    try:
        next(CronSim(joined, _PROBE_START))
    except (CronSimError, StopIteration):
        raise CronError(f"{prefix}: it never matches a calendar date") from None
    return joined


def _single_value_steps(field: str) -> str:
    """`10-10/5` is the range 10-10 stepped, so just 10; cronsim would read it as `10/5` (10, 15, ... 55)."""
    terms = []
    for term in field.split(","):
        span, slash, _ = term.partition("/")
        first, dash, last = span.partition("-")
        terms.append(first if slash and dash and first.upper() == last.upper() else term)
    return ",".join(terms)


def _is_fixed_time(cron_expr: str) -> bool:
    minute, hour = cron_expr.split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def _fixed_time_instants(cron_expr: str, zone: ZoneInfo, after_utc: datetime) -> Iterator[datetime]:
    """cronsim's own Debian handling: gap times at the end of the gap, repeated times at their first occurrence."""
    # cronsim steps from a whole second; a fractional `after` must not let its own second fire again.
    for fire in CronSim(cron_expr, after_utc.replace(microsecond=0).astimezone(zone)):
        yield fire.astimezone(UTC)


def _wildcard_instants(cron_expr: str, zone: ZoneInfo, after_utc: datetime) -> Iterator[datetime]:
    """Every real instant whose wall time matches: gap times never happen, repeated times happen twice.

    cronsim walks the wall clock (naive, no DST) and each wall time maps to 0, 1 or 2 instants. cronsim's own
    aware stepping is not used: it jumps whole hours from a wall time's minute 0, which lands on minute 30 after
    Lord Howe's 30-minute shift and skips the fires before it (measured in test_cron_differential).
    """
    # A wall time earlier than `after`'s own can still have its second occurrence after `after`.
    earliest_offset = min(_offset(zone, after_utc + timedelta(days=d)) for d in (-1, 0, 1))
    start_wall = (after_utc.replace(tzinfo=None) + earliest_offset).replace(microsecond=0)
    # Instants come out of the wall-clock walk in order except second occurrences, which come out early; a
    # wall time's first instant bounds everything after it, so a pending instant is released once below it.
    pending: list[datetime] = []
    for wall in CronSim(cron_expr, start_wall):
        occurrences = _occurrences(wall, zone)
        if not occurrences:
            continue
        while pending and pending[0] <= occurrences[0]:
            yield heapq.heappop(pending)
        for instant in occurrences:
            heapq.heappush(pending, instant)
    while pending:
        yield heapq.heappop(pending)


def _occurrences(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The real (UTC) instants at which naive `wall` happens in `zone`: none in a gap, two in a repeated hour."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        return []
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return [first] if second == first else [first, second]


def _offset(zone: ZoneInfo, instant_utc: datetime) -> timedelta:
    return instant_utc.astimezone(zone).utcoffset() or timedelta(0)


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise CronError(f"unknown timezone {_echo(name)}: expected an IANA name such as 'Europe/Berlin' or 'UTC'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"unknown timezone {_echo(name)}: expected an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None


def _as_utc(moment: datetime, argument: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{argument} must be an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)

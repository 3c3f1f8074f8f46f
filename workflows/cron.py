"""Cron schedules with an explicit daylight-saving policy.

Field matching is croniter's; this module only decides what a wall-clock expression means on the days the
clock jumps. Plain Python (no Django) so the engine and the standalone daemon share it.

DST policy (the expression is wall-clock time in the trigger's zone):

* Spring forward: a wall time that does not exist (it falls in the gap) fires once, at the first real
  instant after the gap (Europe/Berlin 2026-03-29 02:30 fires at 03:00 CEST). Several gap times, or a gap
  time and a regular fire at that instant, collapse into one fire.
* Fall back: a wall time that occurs twice fires once, at its first occurrence (fold=0), when the hour field
  is fixed (``30 1 * * *``, ``0 9-17 * * 1-5``). When the hour field repeats (``*`` or a step such as
  ``*/2``, so hourly and every-minute expressions) it fires at both occurrences: such an expression
  describes a rhythm of real time, and skipping the repeated hour would leave a hole in it.

Every instant is compared in UTC internally: Python compares two datetimes that share a tzinfo by their wall
time and ignores ``fold``, which is wrong precisely in the fall-back hour.
"""
from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

__all__ = [
    "CronError",
    "describe",
    "iter_fire_times",
    "missed_fire_times",
    "next_fire_times",
    "validate_cron",
    "validate_timezone",
]

UTC = dt_timezone.utc

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_RANGES = ("0-59", "0-23", "1-31 or L", "1-12 or JAN-DEC", "0-7 or SUN-SAT")
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# An expression that matches no date within this many years (`0 0 30 2 *`) is rejected; 8 covers Feb 29.
_MAX_YEARS_BETWEEN_FIRES = 8
_MINUTE = timedelta(minutes=1)


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


def next_fire_times(
    expression: str, timezone: str = "UTC", *, after: datetime, count: int = 10
) -> list[datetime]:
    """The next `count` fire times strictly after the aware datetime `after`, as aware datetimes in `timezone`.

    Fewer are returned only when the expression runs out of dates (croniter stops at year 2099).
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


def iter_fire_times(expression: str, timezone: str = "UTC", *, after: datetime) -> Iterator[datetime]:
    """Yield fire times strictly after `after`, in increasing real time, as aware datetimes in `timezone`."""
    fields = _normalise(expression)
    zone = _zone(timezone)
    after_utc = _as_utc(after, "after")
    cron_expr = " ".join(fields)
    repeat_in_overlap = _hour_field_repeats(fields[1])

    # A wall time earlier than `after`'s own can still have its second (fold=1) occurrence after `after`,
    # so start from the earliest wall time that could map past it.
    naive_utc = after_utc.replace(tzinfo=None)
    earliest_offset = min(
        _offset(zone, after_utc + delta) for delta in (timedelta(days=-1), timedelta(0), timedelta(days=1))
    )
    start_wall = (naive_utc + earliest_offset).replace(second=0, microsecond=0) - _MINUTE
    walls = croniter(cron_expr, start_wall, ret_type=datetime)

    # Instants come out of the wall-time walk almost in order; only second occurrences in an overlap come
    # out early. Each wall time's first instant is a lower bound for everything after it, so a pending
    # instant is safe to release once it is not later than that bound.
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        try:
            wall = walls.get_next(datetime)
        except CroniterBadDateError:
            break
        instants = _instants(wall, zone, repeat_in_overlap)
        bound = instants[0]
        while pending and pending[0] <= bound:
            instant = heapq.heappop(pending)
            if instant > after_utc and (last is None or instant > last):
                last = instant
                yield instant.astimezone(zone)
        for instant in instants:
            heapq.heappush(pending, instant)
    while pending:
        instant = heapq.heappop(pending)
        if instant > after_utc and (last is None or instant > last):
            last = instant
            yield instant.astimezone(zone)


def describe(expression: str, timezone: str | None = None) -> str:
    """A human description such as 'At 09:00, Monday through Friday (Europe/Berlin)'."""
    # Imported here: only the admin and the API describe schedules, the engine never does.
    from cron_descriptor import ExpressionDescriptor, FormatException, MissingFieldException, Options, \
        WrongArgumentException

    fields = _normalise(expression)
    options = Options()
    options.use_24hour_time_format = True
    options.throw_exception_on_parse_error = True
    try:
        text = ExpressionDescriptor(" ".join(fields), options).get_description()
    except (FormatException, MissingFieldException, WrongArgumentException, ValueError):
        text = " ".join(fields)  # a croniter extension cron-descriptor does not know; the expression is valid
    return f"{text} ({timezone})" if timezone else text


# --- internals -------------------------------------------------------------------------------------------


def _normalise(expression: str) -> list[str]:
    """Split a valid expression into its five fields, or raise CronError with the reason."""
    if not isinstance(expression, str):
        raise CronError(f"invalid cron expression {expression!r}: expected a string")
    text = " ".join(expression.split())
    fields = _ALIASES.get(text.lower(), text).split()
    if len(fields) != 5:
        raise CronError(
            f"invalid cron expression {expression!r}: expected 5 fields "
            f"({' '.join(FIELD_NAMES)}), got {len(fields)}"
        )
    joined = " ".join(fields)
    try:
        croniter.expand(joined)
    except CroniterError as exc:
        raise CronError(f"invalid cron expression {expression!r}: {_reason(fields, exc)}") from None
    try:
        croniter(
            joined, datetime(2000, 1, 1), max_years_between_matches=_MAX_YEARS_BETWEEN_FIRES
        ).get_next(datetime)
    except CroniterBadDateError:
        raise CronError(f"invalid cron expression {expression!r}: it never matches a calendar date") from None
    return fields


def _reason(fields: list[str], exc: CroniterError) -> str:
    """Name the first field croniter rejects on its own; croniter's messages name the whole expression."""
    for index, token in enumerate(fields):
        probe = ["*"] * 5
        probe[index] = token
        try:
            croniter.expand(" ".join(probe))
        except CroniterError:
            return f"{FIELD_NAMES[index]} field {token!r} is not valid (allowed: {_FIELD_RANGES[index]})"
    return str(exc).strip().splitlines()[-1]


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise CronError(f"unknown timezone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown timezone {name!r}") from None


def _as_utc(moment: datetime, argument: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{argument} must be an aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _hour_field_repeats(hour_field: str) -> bool:
    return "*" in hour_field or "/" in hour_field


def _offset(zone: ZoneInfo, instant_utc: datetime) -> timedelta:
    return instant_utc.astimezone(zone).utcoffset() or timedelta(0)


def _instants(wall: datetime, zone: ZoneInfo, repeat_in_overlap: bool) -> list[datetime]:
    """The real (UTC) instants at which wall time `wall` fires, earliest first."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        # In a gap zoneinfo maps fold=1 before the transition and fold=0 after it.
        return [_transition(before=second, after=first, zone=zone)]
    return [first, second] if repeat_in_overlap else [first]


def _transition(*, before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (before, after] whose UTC offset is the one in force at `after`."""
    target = _offset(zone, after)
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)

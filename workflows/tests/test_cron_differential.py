"""workflows.cron against an independent reference: a brute-force walk over real minutes in zoneinfo.

cronsim is the engine, so the reference shares no code with it: its own field parser and the DST policy of
the README ("Cron and time zones") applied minute by minute. Pure Python, no database.

Deliberate disagreements with croniter (the previous field matcher), each covered below:
* ``N-N`` is the single value N (croniter 7 reads ``1-1``, ``30-30``, ``11-11`` as ``*``).
* day-of-month and day-of-week are OR-ed only when neither field starts with ``*`` (``0 0 */2 * 1`` is
  "odd days that are Mondays"; croniter ORs them).
* a wildcard expression (``*`` in the minute or hour field) skips wall times that a spring-forward gap removes;
  the old engine ran them at the end of the gap, so ``0 * * * *`` ran twice within 30 minutes in Lord Howe.
Against cronsim itself there is none in the zones tested here. cronsim's wildcard mode is not exact in zones
whose transition happens at midnight (America/Santiago, America/Havana): not covered, see README.

`python workflows/tests/test_cron_differential.py [module]` prints the cases and disagreements for
`workflows.cron` or another module with the same `next_fire_times` (the engine before this change).
"""
from __future__ import annotations

import importlib
import random
import sys
from itertools import takewhile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from workflows.cron import iter_fire_times, next_fire_times

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Europe/Berlin", "Australia/Sydney"]
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


# --- the reference -------------------------------------------------------------------------------------------


def _value(token: str, field: int) -> int:
    upper = token.upper()
    if field == 3 and upper in _MONTHS:
        return _MONTHS.index(upper) + 1
    if field == 4 and upper in _DAYS:
        return _DAYS.index(upper)
    return int(token)


def _parse_field(text: str, field: int) -> set[int]:
    low, high = _BOUNDS[field]
    values: set[int] = set()
    for term in text.split(","):
        base, _, step_text = term.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-")
            start, end = _value(first, field), _value(last, field)
        else:
            start = _value(base, field)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    if field == 4 and 7 in values:
        values = (values - {7}) | {0}
    return values


def reference_matcher(expression: str) -> Callable[[datetime], bool]:
    fields = expression.split()
    minute, hour, dom, month, dow = (_parse_field(text, index) for index, text in enumerate(fields))
    days_or = not fields[2].startswith("*") and not fields[4].startswith("*")

    def matches(wall: datetime) -> bool:
        if wall.minute not in minute or wall.hour not in hour or wall.month not in month:
            return False
        dom_ok, dow_ok = wall.day in dom, (wall.weekday() + 1) % 7 in dow
        return (dom_ok or dow_ok) if days_or else (dom_ok and dow_ok)

    return matches


def reference_fires(expression: str, zone_name: str, start: datetime, end: datetime) -> list[datetime]:
    """Every real minute in (start, end] that fires under the README's policy, as UTC instants."""
    zone = ZoneInfo(zone_name)
    matches = reference_matcher(expression)
    minute_field, hour_field = expression.split()[:2]
    fixed_time = not minute_field.startswith("*") and not hour_field.startswith("*")
    fires = []
    instant = start.replace(second=0, microsecond=0) + MINUTE
    previous_wall = (instant - MINUTE).astimezone(zone).replace(tzinfo=None)
    while instant <= end:
        wall = instant.astimezone(zone).replace(tzinfo=None)
        if not fixed_time:
            fires_here = matches(wall)
        else:
            first_occurrence = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) == instant
            fires_here = first_occurrence and matches(wall)
            skipped = int((wall - previous_wall) / MINUTE) - 1  # wall minutes a spring-forward gap removed
            fires_here = fires_here or any(matches(previous_wall + MINUTE * k) for k in range(1, skipped + 1))
        if fires_here:
            fires.append(instant)
        previous_wall = wall
        instant += MINUTE
    return fires


def engine_fires(next_fires: Callable, expression: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    fires: list[datetime] = []
    after = start
    while True:
        batch = [f.astimezone(UTC) for f in next_fires(expression, zone, after=after, count=50)]
        inside = [f for f in batch if f <= end]
        fires.extend(inside)
        if len(inside) < len(batch) or not batch:
            return fires
        after = batch[-1]


# --- the cases -----------------------------------------------------------------------------------------------


def transitions(zone_name: str, years: tuple[int, ...] = (2026, 2027)) -> list[datetime]:
    """The UTC instants at which `zone_name` changes its offset in `years`, to the minute."""
    zone = ZoneInfo(zone_name)
    found = []
    instant = datetime(years[0], 1, 1, tzinfo=UTC)
    end = datetime(years[-1] + 1, 1, 1, tzinfo=UTC)
    while instant < end:
        after = instant + timedelta(hours=1)
        if instant.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            low = instant
            while low.astimezone(zone).utcoffset() == instant.astimezone(zone).utcoffset():
                low += MINUTE
            found.append(low)
        instant = after
    return found


DST_EXPRESSIONS = [
    "* * * * *", "*/15 * * * *", "0 * * * *", "30 * * * *", "0 */2 * * *", "45 */3 * * *", "*/10 1-3 * * *",
    "*/15 2 * * *", "* 2 * * *", "30 2 * * *", "0 2 * * *", "59 1 * * *", "0 3 * * *", "30 1 * * *",
    "0,30 1,2 * * *", "15 1-3 * * *", "0 0-23 * * *", "0 1-23/2 * * *", "0 2,3 * * *", "30 2 * * 0",
    "0 9 * * 1-1", "30-30 * * * *", "0 0 * 11-11 *", "5-5 2-2 * * *",
]


def random_expression(rng: random.Random) -> str:
    def field(index: int) -> str:
        low, high = _BOUNDS[index]
        high = 6 if index == 4 else high
        a, b = sorted(rng.sample(range(low, high + 1), 2))
        choice = rng.choice(["*", "*", "n", "n-n", "a-b", "*/s", "a-b/s", "n/s", "list", "name"])
        if choice == "n":
            return str(a)
        if choice == "n-n":
            return f"{a}-{a}"
        if choice == "a-b":
            return f"{a}-{b}"
        if choice == "*/s":
            return f"*/{rng.randint(1, 7 if index < 2 else 3)}"
        if choice == "a-b/s":
            return f"{a}-{b}/{rng.randint(1, 4)}"
        if choice == "n/s":
            return f"{a}/{rng.randint(2, 5)}"
        if choice == "list":
            return ",".join(str(v) for v in sorted(rng.sample(range(low, high + 1), 3)))
        if index == 3:
            return f"{_MONTHS[a - 1]}-{_MONTHS[b - 1]}"
        if index == 4:
            return f"{_DAYS[a].lower()}-{_DAYS[b].lower()}"
        return str(a)

    minute, hour = field(0), field(1)
    dom = field(2) if rng.random() < 0.4 else "*"
    month = field(3) if rng.random() < 0.2 else "*"
    dow = field(4) if rng.random() < 0.4 else "*"
    return f"{minute} {hour} {dom} {month} {dow}"


def random_cases(count: int = 300, seed: int = 2026) -> list[tuple[str, str, datetime, datetime]]:
    rng = random.Random(seed)
    all_transitions = {zone: transitions(zone) for zone in ZONES}
    cases = []
    for _ in range(count):
        zone = rng.choice(ZONES + ["UTC"])
        if zone != "UTC" and rng.random() < 0.6:
            start = rng.choice(all_transitions[zone]) - timedelta(minutes=rng.randint(0, 600))
        else:
            start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 2 * 365 * 86400))
        cases.append((random_expression(rng), zone, start, start + timedelta(hours=36)))
    return cases


def dst_cases() -> list[tuple[str, str, datetime, datetime]]:
    return [(expression, zone, moment - timedelta(hours=4), moment + timedelta(hours=4))
            for zone in ZONES for moment in transitions(zone) for expression in DST_EXPRESSIONS]


def n_n_cases() -> list[tuple[str, str, datetime, datetime]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    expressions = ["0 9 * * 1-1", "30-30 * * * *", "0 0 * 11-11 *", "0-0 0-0 1-1 1-1 *", "0 12 15-15 * *",
                   "10-10/5 * * * *", "0 9 * * mon-mon", "0 9 * * 0-0", "0 9 * * 7-7"]
    return [(expression, zone, start, start + timedelta(days=8)) for expression in expressions
            for zone in ("UTC", "Europe/Berlin")]


def disagreements(next_fires: Callable, cases) -> list[tuple]:
    wrong = []
    for expression, zone, start, end in cases:
        expected = reference_fires(expression, zone, start, end)
        actual = engine_fires(next_fires, expression, zone, start, end)
        if actual != expected:
            wrong.append((expression, zone, start, sorted(set(actual) ^ set(expected))[:4]))
    return wrong


# --- the tests -----------------------------------------------------------------------------------------------


def test_the_reference_finds_the_transitions_of_2026_and_2027():
    assert transitions("Europe/Berlin") == [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC),
                                            datetime(2027, 3, 28, 1, tzinfo=UTC), datetime(2027, 10, 31, 1, tzinfo=UTC)]
    assert all(len(transitions(zone)) == 4 for zone in ZONES)


def test_three_hundred_random_expressions_agree_with_the_reference():
    assert disagreements(next_fire_times, random_cases()) == []


def test_every_dst_window_of_2026_and_2027_in_five_zones_agrees_with_the_reference():
    cases = dst_cases()
    assert len(cases) == 5 * 4 * len(DST_EXPRESSIONS)
    assert disagreements(next_fire_times, cases) == []


def test_single_value_ranges_agree_with_the_reference():
    assert disagreements(next_fire_times, n_n_cases()) == []


@pytest.mark.parametrize(("expression", "fires_in_eight_days"), [
    ("0 9 * * 1-1", 1), ("30-30 * * * *", 8 * 24), ("0 0 * 11-11 *", 8), ("0 0 * 12-12 *", 0)])
def test_a_single_value_range_means_that_value(expression, fires_in_eight_days):
    start = datetime(2026, 11, 3, 0, 30, tzinfo=UTC)  # a Tuesday: one Monday in the next 8 days
    end = start + timedelta(days=8)
    fires = list(takewhile(lambda fire: fire <= end, iter_fire_times(expression, after=start)))
    assert len(fires) == fires_in_eight_days


def test_day_of_month_and_day_of_week_are_or_ed_only_when_neither_starts_with_a_star():
    start = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
    either = next_fire_times("0 0 1,15 * 1", after=start, count=4)
    assert [f.day for f in either] == [8, 15, 22, 29]
    both = next_fire_times("0 0 */2 * 1", after=start, count=3)  # odd days that are Mondays
    assert [f.date().isoformat() for f in both] == ["2026-06-15", "2026-06-29", "2026-07-13"]


if __name__ == "__main__":
    module = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "workflows.cron")
    for label, cases in (("random", random_cases()), ("dst windows", dst_cases()), ("N-N", n_n_cases())):
        wrong = disagreements(module.next_fire_times, cases)
        print(f"{label}: {len(cases)} cases, {len(wrong)} disagree")
        for item in wrong[:5]:
            print("   ", item)

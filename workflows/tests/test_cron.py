"""workflows.cron: fire times in a zone, across both DST transitions. Pure Python, no database."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from workflows.cron import (
    CronError,
    describe,
    iter_fire_times,
    missed_fire_times,
    next_fire_times,
    validate_cron,
    validate_timezone,
)

UTC = timezone.utc
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def in_utc(times: list[datetime]) -> list[datetime]:
    return [t.astimezone(UTC) for t in times]


def local(times: list[datetime]) -> list[str]:
    return [t.isoformat() for t in times]


# --- spring forward: Berlin 2026-03-29 02:00 CET -> 03:00 CEST, New York 2026-03-08 02:00 EST -> 03:00 EDT


def test_daily_time_in_the_berlin_gap_fires_once_at_the_end_of_the_gap():
    fires = next_fire_times("30 2 * * *", BERLIN, after=utc(2026, 3, 27, 12), count=4)
    assert local(fires) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_daily_time_in_the_new_york_gap_fires_once_at_the_end_of_the_gap():
    fires = next_fire_times("30 2 * * *", NEW_YORK, after=utc(2026, 3, 7, 12), count=3)
    assert local(fires) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_gap_fire_and_regular_fire_at_the_same_instant_collapse_into_one():
    fires = next_fire_times("0 2,3 * * *", BERLIN, after=utc(2026, 3, 28, 12), count=3)
    assert local(fires) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
        "2026-03-30T03:00:00+02:00",
    ]


def test_hourly_fires_every_real_hour_across_the_gap():
    fires = next_fire_times("0 * * * *", BERLIN, after=utc(2026, 3, 28, 22, 30), count=5)
    assert in_utc(fires) == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 0), utc(2026, 3, 29, 1),
                             utc(2026, 3, 29, 2), utc(2026, 3, 29, 3)]
    assert local(fires)[1:3] == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]


def test_hourly_in_lord_howe_skips_the_missing_hour_instead_of_firing_twice_in_thirty_minutes():
    # 2026-10-04 02:00 +10:30 -> 02:30 +11:00
    fires = next_fire_times("0 * * * *", "Australia/Lord_Howe", after=utc(2026, 10, 3, 14), count=3)
    assert local(fires) == ["2026-10-04T01:00:00+10:30", "2026-10-04T03:00:00+11:00", "2026-10-04T04:00:00+11:00"]


def test_a_wildcard_minute_in_london_skips_the_missing_half_hour():
    # 2026-03-29 01:00 GMT -> 02:00 BST
    fires = next_fire_times("30 * * * *", "Europe/London", after=utc(2026, 3, 29), count=2)
    assert local(fires) == ["2026-03-29T00:30:00+00:00", "2026-03-29T02:30:00+01:00"]


def test_a_wildcard_minute_with_a_fixed_hour_skips_the_gap_too():
    fires = next_fire_times("*/15 2 * * *", NEW_YORK, after=utc(2026, 3, 7, 12), count=2)
    assert local(fires) == ["2026-03-09T02:00:00-04:00", "2026-03-09T02:15:00-04:00"]


def test_every_minute_has_no_hole_and_no_duplicate_across_the_new_york_gap():
    fires = next_fire_times("* * * * *", NEW_YORK, after=utc(2026, 3, 8, 6, 50), count=20)
    assert in_utc(fires) == [utc(2026, 3, 8, 6, 51) + timedelta(minutes=i) for i in range(20)]
    assert local(fires)[8:10] == ["2026-03-08T01:59:00-05:00", "2026-03-08T03:00:00-04:00"]


# --- fall back: Berlin 2026-10-25 03:00 CEST -> 02:00 CET, New York 2026-11-01 02:00 EDT -> 01:00 EST


def test_daily_time_in_the_berlin_overlap_fires_only_at_its_first_occurrence():
    fires = next_fire_times("30 2 * * *", BERLIN, after=utc(2026, 10, 24, 12), count=2)
    assert local(fires) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    assert fires[0].fold == 0


def test_daily_time_in_the_new_york_overlap_fires_only_at_its_first_occurrence():
    fires = next_fire_times("30 1 * * *", NEW_YORK, after=utc(2026, 10, 31, 12), count=2)
    assert local(fires) == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_second_occurrence_of_a_fixed_time_does_not_fire_again_when_asked_from_inside_the_overlap():
    after = utc(2026, 10, 25, 0, 45)  # 02:45 CEST, after the first 02:30 fired
    fires = next_fire_times("30 2 * * *", BERLIN, after=after, count=1)
    assert local(fires) == ["2026-10-26T02:30:00+01:00"]


def test_every_quarter_hour_fires_eight_times_in_the_new_york_repeated_hour():
    fires = next_fire_times("*/15 * * * *", NEW_YORK, after=utc(2026, 11, 1, 4, 50), count=9)
    assert local(fires) == [f"2026-11-01T01:{m:02d}:00-04:00" for m in (0, 15, 30, 45)] + \
        [f"2026-11-01T01:{m:02d}:00-05:00" for m in (0, 15, 30, 45)] + ["2026-11-01T02:00:00-05:00"]


def test_a_fixed_hour_with_a_wildcard_minute_repeats_in_the_repeated_hour():
    fires = next_fire_times("*/30 1 * * *", NEW_YORK, after=utc(2026, 11, 1, 4), count=5)
    assert local(fires) == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
                            "2026-11-01T01:30:00-05:00", "2026-11-02T01:00:00-05:00"]


def test_hourly_fires_at_both_occurrences_of_the_repeated_hour():
    fires = next_fire_times("0 * * * *", BERLIN, after=utc(2026, 10, 24, 23, 30), count=4)
    assert in_utc(fires) == [utc(2026, 10, 25, h) for h in range(4)]
    assert local(fires)[:2] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]
    assert [f.fold for f in fires[:2]] == [0, 1]


def test_every_minute_has_no_hole_and_no_duplicate_across_the_new_york_overlap():
    fires = next_fire_times("* * * * *", NEW_YORK, after=utc(2026, 11, 1, 5, 30), count=90)
    assert in_utc(fires) == [utc(2026, 11, 1, 5, 31) + timedelta(minutes=i) for i in range(90)]


def test_asking_from_the_first_occurrence_still_returns_the_second_occurrence_of_earlier_wall_times():
    after = utc(2026, 10, 25, 0, 50)  # 02:50 CEST; 02:20 CET comes 30 real minutes later
    fires = next_fire_times("20 * * * *", BERLIN, after=after, count=2)
    assert local(fires) == ["2026-10-25T02:20:00+01:00", "2026-10-25T03:20:00+01:00"]


# --- ordinary expressions


def test_weekday_expression_skips_the_weekend_in_the_trigger_zone():
    fires = next_fire_times("0 9 * * 1-5", BERLIN, after=utc(2026, 3, 27, 12), count=3)  # a Friday
    assert local(fires) == [
        "2026-03-30T09:00:00+02:00",
        "2026-03-31T09:00:00+02:00",
        "2026-04-01T09:00:00+02:00",
    ]


def test_the_default_zone_is_utc_and_after_is_exclusive():
    fires = next_fire_times("*/15 * * * *", after=utc(2026, 1, 1, 0, 15), count=2)
    assert fires == [utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 0, 45)]
    assert fires[0].tzinfo == ZoneInfo("UTC")


def test_aliases_are_accepted():
    assert next_fire_times("@daily", after=utc(2026, 1, 1, 5), count=1) == [utc(2026, 1, 2)]


def test_count_zero_returns_nothing_and_a_naive_after_is_refused():
    assert next_fire_times("* * * * *", after=utc(2026, 1, 1), count=0) == []
    with pytest.raises(ValueError, match="aware"):
        next_fire_times("* * * * *", after=datetime(2026, 1, 1))


# --- catch-up


def test_missed_fire_times_are_the_most_recent_ones_oldest_first():
    missed = missed_fire_times("0 * * * *", "UTC", last_run=utc(2025, 1, 1), now=utc(2026, 1, 1, 5, 30), limit=3)
    assert missed == [utc(2026, 1, 1, 3), utc(2026, 1, 1, 4), utc(2026, 1, 1, 5)]


def test_missed_fire_times_exclude_last_run_and_include_now():
    missed = missed_fire_times("0 * * * *", "UTC", last_run=utc(2026, 1, 1, 1), now=utc(2026, 1, 1, 3), limit=10)
    assert missed == [utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)]


def test_missed_fire_times_follow_the_dst_policy():
    missed = missed_fire_times("30 2 * * *", BERLIN, last_run=utc(2026, 3, 27), now=utc(2026, 3, 30), limit=5)
    assert local(missed) == ["2026-03-27T02:30:00+01:00", "2026-03-28T02:30:00+01:00",
                             "2026-03-29T03:00:00+02:00"]


def test_missed_fire_times_with_nothing_to_catch_up():
    assert missed_fire_times("0 * * * *", "UTC", last_run=utc(2026, 1, 1, 1), now=utc(2026, 1, 1, 1, 30), limit=5) == []
    assert missed_fire_times("0 * * * *", "UTC", last_run=utc(2026, 1, 1), now=utc(2026, 1, 2), limit=0) == []


# --- validation and description


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "minute field '61' is not valid (accepted: 0-59; *, a list a,b, a range a-b, a step */n or a-b/n)"),
        ("0 24 * * *", "hour field '24' is not valid"),
        ("0 0 * * 8", "day-of-week field '8' is not valid"),
        ("*/0 * * * *", "minute field '*/0' is not valid"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week) or one of @yearly, @annually, "
                    "@monthly, @weekly, @daily, @midnight, @hourly, got 4 fields"),
        ("0 0 * * 1 *", "expected 5 fields"),
        ("0 0 * * L", "day-of-week field 'L' is not valid (accepted: 0-7 or SUN-SAT"),
        ("5-1 * * * *", "minute field '5-1' is not valid"),
        ("0 0 1 1 * 2030", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("0 0 30 2 *", "never matches a calendar date"),
        ("H * * * *", "minute field 'H' is not valid"),
    ],
)
def test_invalid_expressions_are_explained(expression, reason):
    message = validate_cron(expression)
    assert message is not None
    assert message.startswith(f"invalid cron expression {expression!r}: ")
    assert reason in message
    with pytest.raises(CronError, match="invalid cron expression"):
        next_fire_times(expression, after=utc(2026, 1, 1))


@pytest.mark.parametrize("expression", ["* * * * *", "0 9 * * 1-5", "*/5 0-6,22-23 1,15 JAN-MAR sun", "0 0 29 2 *",
                                        "0 0 L * *", "@hourly", "0 9 * * 1-1"])
def test_valid_expressions_pass(expression):
    assert validate_cron(expression) is None


@pytest.mark.parametrize("name", ["Mars/Base", "", "../../etc/passwd", "europe berlin"])
def test_unknown_timezones_are_refused(name):
    assert validate_timezone(name) == f"unknown timezone {name!r}: expected an IANA name such as 'Europe/Berlin' or 'UTC'"
    with pytest.raises(CronError, match="unknown timezone"):
        next_fire_times("* * * * *", name, after=utc(2026, 1, 1))


def test_echoed_input_is_cut_to_a_hundred_characters():
    message = validate_cron("1 " * 5000)
    assert len(message) < 400 and "…" in message
    message = validate_cron("* * * * " + "9" * 5000)
    assert len(message) < 500 and "…" in message
    assert len(validate_timezone("x" * 5000)) < 250


@pytest.mark.parametrize("expression", ["0 0 L * *", "0 0 LW * *", "0 0 * * 5L", "0 0 * * 1#2", "0 0 * * 7",
                                        "0 0 * * SUN-SAT", "@weekly"])
def test_the_documented_extensions_are_accepted(expression):
    assert validate_cron(expression) is None


def test_known_timezones_pass():
    assert validate_timezone(BERLIN) is None
    assert validate_timezone("UTC") is None


def test_describe_reads_like_a_sentence():
    assert describe("0 9 * * 1-5") == "At 09:00, Monday through Friday"
    assert describe("* * * * *") == "Every minute"
    assert describe("0 9 * * 1-5", BERLIN) == "At 09:00, Monday through Friday (Europe/Berlin)"

"""`manage.py schedule`: config checks, the daemon loop on a fast-forwarded clock, and the real process's signals."""
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from workflows.scheduler_daemon import MAX_SLEEP_SECONDS, ConfigError, Job, Scheduler, parse_config

UTC = timezone.utc
PROJECT_DIR = Path(__file__).resolve().parents[2]


class FakeClock:
    """Time that only moves when the scheduler sleeps; records every sleep it was asked for."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)
        return False


def run_scheduler(jobs, start, max_runs, **options):
    clock = FakeClock(start)
    lines: list[str] = []
    scheduler = Scheduler(jobs, write=lines.append, clock=clock, sleep=clock.sleep, max_runs=max_runs,
                          background=False, **options)
    assert scheduler.run() == 0
    return lines, clock


# --- config


def test_the_seed_example_config_is_accepted():
    text = """
jobs:
  - name: "Minute Reminder"
    cron: "* * * * *"
    command: "echo 'Another minute has passed.'"
  - name: "Nightly Backup"
    cron: "0 2 * * *"
    command: "echo backup"
"""
    jobs = parse_config(text)
    assert [job.name for job in jobs] == ["Minute Reminder", "Nightly Backup"]
    assert jobs[0].timezone == "UTC"


def test_every_problem_is_reported_with_its_path():
    text = """
jobs:
  - name: ok
    cron: "0 * * * *"
    command: "true"
  - name: bad cron
    cron: "61 * * * *"
    command: "true"
    timezone: Mars/Base
  - {name: ok, cron: "* * * * *", command: "true"}
  - {cron: "* * * *", command: 5, retries: 3}
  - just a string
extra: 1
"""
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert raised.value.errors == [
        "extra: unknown key",
        "jobs[1].cron: invalid cron expression '61 * * * *': minute field '61' is not valid "
        "(accepted: 0-59; *, a list a,b, a range a-b, a step */n or a-b/n)",
        "jobs[1].timezone: unknown timezone 'Mars/Base': expected an IANA name such as 'Europe/Berlin' or 'UTC'",
        "jobs[2].name: duplicate job name 'ok' (also jobs[0])",
        "jobs[3].retries: unknown key",
        "jobs[3].name: required",
        "jobs[3].cron: invalid cron expression '* * * *': expected 5 fields "
        "(minute hour day-of-month month day-of-week) or one of @yearly, @annually, @monthly, @weekly, @daily, "
        "@midnight, @hourly, got 4 fields",
        "jobs[3].command: expected a non-empty string",
        "jobs[4]: expected a mapping with name, cron and command",
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "(config): expected a mapping with a 'jobs' list"),
        ("- a\n", "(config): expected a mapping with a 'jobs' list"),
        ("other: 1\n", "other: unknown key"),
        ("jobs: []\n", "jobs: expected a non-empty list of jobs"),
        ("jobs:\n  - name: a\n    cron: * * * * *\n", "(config): could not parse YAML at line 3, column 12: "),
    ],
)
def test_unusable_files_are_refused(text, error):
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert raised.value.errors[0].startswith(error)


# --- the loop, on a fast-forwarded clock


def test_jobs_run_at_their_times_and_announce_the_next_one():
    jobs = [Job("Minute Reminder", "* * * * *", "echo 'Another minute has passed.'"),
            Job("Nightly Backup", "0 2 * * *", "echo backup")]
    lines, _ = run_scheduler(jobs, datetime(2026, 11, 25, 1, 58, 30, tzinfo=UTC), max_runs=4)
    assert lines == [
        "[INFO] Next run for 'Minute Reminder' at 2026-11-25 01:59:00 UTC",
        "[INFO] Next run for 'Nightly Backup' at 2026-11-25 02:00:00 UTC",
        "[EXECUTING] 'Minute Reminder' at 2026-11-25 01:59:00 UTC",
        "    Another minute has passed.",
        "[SUCCESS] 'Minute Reminder'",
        "[INFO] Next run for 'Minute Reminder' at 2026-11-25 02:00:00 UTC",
        "[EXECUTING] 'Minute Reminder' at 2026-11-25 02:00:00 UTC",
        "    Another minute has passed.",
        "[SUCCESS] 'Minute Reminder'",
        "[INFO] Next run for 'Minute Reminder' at 2026-11-25 02:01:00 UTC",
        "[EXECUTING] 'Nightly Backup' at 2026-11-25 02:00:00 UTC",
        "    backup",
        "[SUCCESS] 'Nightly Backup'",
        "[INFO] Next run for 'Nightly Backup' at 2026-11-26 02:00:00 UTC",
        "[EXECUTING] 'Minute Reminder' at 2026-11-25 02:01:00 UTC",
        "    Another minute has passed.",
        "[SUCCESS] 'Minute Reminder'",
        "[INFO] Scheduler stopped",
    ]


def test_the_daemon_waits_instead_of_polling():
    _, clock = run_scheduler([Job("Nightly", "0 2 * * *", "true")], datetime(2026, 11, 25, 3, tzinfo=UTC), max_runs=1)
    assert all(0 < seconds <= MAX_SLEEP_SECONDS for seconds in clock.sleeps)
    assert len(clock.sleeps) == 23 * 60  # 23 hours in slices of at most a minute, nothing in between
    assert clock.now == datetime(2026, 11, 26, 2, tzinfo=UTC)


def test_a_daily_job_in_the_spring_forward_gap_runs_once_at_the_end_of_the_gap():
    job = Job("Berlin", "30 2 * * *", "true", timezone="Europe/Berlin")
    lines, _ = run_scheduler([job], datetime(2026, 3, 28, 12, tzinfo=UTC), max_runs=2)
    assert [line for line in lines if line.startswith("[EXECUTING]")] == [
        "[EXECUTING] 'Berlin' at 2026-03-29 03:00:00 Europe/Berlin (CEST)",
        "[EXECUTING] 'Berlin' at 2026-03-30 02:30:00 Europe/Berlin (CEST)",
    ]


def test_an_hourly_job_runs_in_both_occurrences_of_the_repeated_hour():
    job = Job("Hourly", "0 * * * *", "true", timezone="America/New_York")
    lines, _ = run_scheduler([job], datetime(2026, 11, 1, 4, 30, tzinfo=UTC), max_runs=3)
    assert [line for line in lines if line.startswith("[EXECUTING]")] == [
        "[EXECUTING] 'Hourly' at 2026-11-01 01:00:00 America/New_York (EDT)",
        "[EXECUTING] 'Hourly' at 2026-11-01 01:00:00 America/New_York (EST)",
        "[EXECUTING] 'Hourly' at 2026-11-01 02:00:00 America/New_York (EST)",
    ]


def test_a_failing_command_reports_its_exit_code_and_output():
    job = Job("Broken", "* * * * *", "echo partial; echo oops >&2; exit 3")
    lines, _ = run_scheduler([job], datetime(2026, 1, 1, tzinfo=UTC), max_runs=1)
    assert lines[1:] == [
        "[EXECUTING] 'Broken' at 2026-01-01 00:01:00 UTC",
        "    partial",
        "    oops",
        "[FAILED] 'Broken': exit code 3",
        "[INFO] Scheduler stopped",
    ]


def test_after_an_outage_a_job_runs_once_and_carries_on_from_now():
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    lines: list[str] = []

    def oversleep(seconds: float) -> bool:  # the machine is suspended for an hour during the first wait
        clock.now += timedelta(hours=1) if not clock.sleeps else timedelta(seconds=seconds)
        clock.sleeps.append(seconds)
        return False

    Scheduler([Job("Minutely", "* * * * *", "true")], write=lines.append, clock=clock, sleep=oversleep,
              max_runs=2, background=False).run()
    assert [line for line in lines if line.startswith("[EXECUTING]")] == [
        "[EXECUTING] 'Minutely' at 2026-01-01 00:01:00 UTC",
        "[EXECUTING] 'Minutely' at 2026-01-01 01:01:00 UTC",
    ]


def test_jobs_due_together_run_side_by_side_and_each_block_stays_together():
    jobs = [Job("Slow", "* * * * *", "sleep 0.3; echo slow done"), Job("Fast", "* * * * *", "echo fast done")]
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    lines: list[str] = []
    started = time.monotonic()
    Scheduler(jobs, write=lines.append, clock=clock, sleep=clock.sleep, max_runs=2).run()
    assert time.monotonic() - started < 5
    assert lines.index("    fast done") < lines.index("    slow done")  # Fast did not wait for Slow
    slow = lines.index("    slow done")
    assert lines[slow + 1] == "[SUCCESS] 'Slow'"
    assert lines[-1] == "[INFO] Scheduler stopped"


def test_stop_interrupts_the_wait_and_terminates_running_commands():
    clock = FakeClock(datetime(2026, 1, 1, 0, 0, 59, tzinfo=UTC))
    seen: queue.Queue[str] = queue.Queue()
    lines: list[str] = []

    def write(line: str) -> None:
        lines.append(line)
        seen.put(line)

    woken = threading.Event()

    def sleep(seconds: float) -> bool:  # fast-forward to the first run, then wait for real until stopped
        if not scheduler.runs_started:
            return clock.sleep(seconds)
        woken.wait(10)
        return scheduler.stopping

    scheduler = Scheduler([Job("Long", "* * * * *", "sleep 30")], write=write, clock=clock, sleep=sleep)
    runner = threading.Thread(target=scheduler.run)
    runner.start()
    try:
        _wait_for_line(seen, "[EXECUTING] 'Long'", deadline=time.monotonic() + 10)
        started = time.monotonic()
        scheduler.stop()
        woken.set()
        runner.join(10)
        assert not runner.is_alive()
        assert time.monotonic() - started < 6
    finally:
        scheduler.stop()
        woken.set()
        runner.join(10)
    assert "[FAILED] 'Long': killed by SIGTERM" in lines
    assert lines[-1] == "[INFO] Scheduler stopped"


def _wait_for_line(lines: queue.Queue, prefix: str, *, deadline: float) -> list[str]:
    read = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line starting with {prefix!r} before the deadline; got {read}")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"output ended before {prefix!r}; got {read}")
        read.append(line)
        if line.startswith(prefix):
            return read


# --- the real command


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(PROJECT_DIR / "manage.py"), "schedule", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "automation.settings"}


def test_the_command_refuses_a_bad_config_with_one_line_per_error_and_exit_code_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text('jobs:\n  - {name: a, cron: "* * * * *", command: "true"}\n'
                      '  - {name: b, cron: "61 * * * *", command: "true", timezone: Nowhere/City}\n')
    result = subprocess.run(_manage("--config", str(config)), cwd=PROJECT_DIR, env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "jobs[1].cron: invalid cron expression '61 * * * *': minute field '61' is not valid "
        "(accepted: 0-59; *, a list a,b, a range a-b, a step */n or a-b/n)",
        "jobs[1].timezone: unknown timezone 'Nowhere/City': expected an IANA name such as 'Europe/Berlin' or 'UTC'",
    ]
    assert result.stdout == ""


def test_the_command_reports_where_a_file_does_not_parse(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("jobs:\n  - name: a\n    cron: * * * * *\n")
    result = subprocess.run(_manage("--config", str(config)), cwd=PROJECT_DIR, env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}: could not parse YAML at line 3, column 12: ")
    assert "Traceback" not in result.stderr


def test_the_command_refuses_a_missing_file(tmp_path):
    result = subprocess.run(_manage("--config", str(tmp_path / "nope.yaml")), cwd=PROJECT_DIR, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}: cannot read config: No such file or directory"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_announces_its_jobs_and_stops_cleanly_on_a_signal(tmp_path, signum):
    config = tmp_path / "schedule.yaml"
    config.write_text('jobs:\n  - {name: "New Year", cron: "0 0 1 1 *", command: "echo happy", '
                      'timezone: "Europe/Berlin"}\n')
    process = subprocess.Popen(_manage("--config", str(config)), cwd=PROJECT_DIR, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        read = _wait_for_line(lines, "[INFO] Next run for 'New Year' at ", deadline=time.monotonic() + 60)
        assert read[-1].endswith(" 00:00:00 Europe/Berlin (CET)")
        process.send_signal(signum)
        assert process.wait(timeout=15) == 0
        assert _wait_for_line(lines, "[INFO] Scheduler stopped", deadline=time.monotonic() + 5)
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def test_the_daemon_runs_a_quarter_hourly_job_in_both_occurrences_of_the_new_york_repeated_hour():
    job = Job(name="q", cron="*/15 * * * *", command="true", timezone="America/New_York")
    lines, _ = run_scheduler([job], datetime(2026, 11, 1, 4, 50, tzinfo=UTC), max_runs=9)
    executed = [line.split(" at ", 1)[1] for line in lines if line.startswith("[EXECUTING]")]
    assert executed == [f"2026-11-01 01:{m:02d}:00 America/New_York (EDT)" for m in (0, 15, 30, 45)] + \
        [f"2026-11-01 01:{m:02d}:00 America/New_York (EST)" for m in (0, 15, 30, 45)] + \
        ["2026-11-01 02:00:00 America/New_York (EST)"]

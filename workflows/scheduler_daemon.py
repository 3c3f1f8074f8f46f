"""The standalone cron daemon behind `manage.py schedule --config FILE` (SPEC §5). No Django here.

load_config() checks the whole file and reports every problem by path; Scheduler runs the jobs. Each
execution runs `/bin/sh -c COMMAND` in its own thread so a slow job never delays another; like cron, a job
whose previous execution is still running starts again on time. Fire times come from workflows.cron, so the
daemon follows the same DST policy as cron triggers.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from workflows.cron import iter_fire_times, validate_cron, validate_timezone

UTC = dt_timezone.utc
# Long sleeps are taken in slices so a wall-clock jump (suspend, NTP step) delays a fire by at most this much.
MAX_SLEEP_SECONDS = 60.0
# On a stop signal running commands get SIGTERM, then this long before SIGKILL.
STOP_GRACE_SECONDS = 5.0

_JOB_KEYS = {"name", "cron", "command", "timezone"}


@dataclass(frozen=True)
class Job:
    name: str
    cron: str
    command: str
    timezone: str = "UTC"


class ConfigError(Exception):
    """The config cannot be used; `errors` holds one `path: message` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def load_config(path: str | os.PathLike[str]) -> list[Job]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read config: {reason}"]) from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "(config)") -> list[Job]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error(exc, source)]) from None

    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping with a 'jobs' list"])
    errors = [f"{key}: unknown key" for key in data if key != "jobs"]
    raw_jobs = data.get("jobs")
    if not isinstance(raw_jobs, list) or not raw_jobs:
        errors.append("jobs: expected a non-empty list of jobs" if "jobs" in data else "jobs: required")
        raise ConfigError(errors)

    jobs: list[Job] = []
    first_index_by_name: dict[str, int] = {}
    for index, raw in enumerate(raw_jobs):
        job = _parse_job(raw, f"jobs[{index}]", errors)
        if job is None:
            continue
        if job.name in first_index_by_name:
            errors.append(
                f"jobs[{index}].name: duplicate job name {job.name!r} (also jobs[{first_index_by_name[job.name]}])"
            )
            continue
        first_index_by_name[job.name] = index
        jobs.append(job)
    if errors:
        raise ConfigError(errors)
    return jobs


def _parse_job(raw: Any, path: str, errors: list[str]) -> Job | None:
    if not isinstance(raw, dict):
        errors.append(f"{path}: expected a mapping with name, cron and command")
        return None
    found_before = len(errors)
    errors.extend(f"{path}.{key}: unknown key" for key in raw if key not in _JOB_KEYS)
    values: dict[str, str] = {}
    checks = {"cron": validate_cron, "timezone": validate_timezone}
    for key in ("name", "cron", "command", "timezone"):
        if key not in raw:
            if key != "timezone":
                errors.append(f"{path}.{key}: required")
            continue
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            errors.append(f"{path}.{key}: expected a non-empty string")
        elif key in checks and (problem := checks[key](value)):
            errors.append(f"{path}.{key}: {problem}")
        else:
            values[key] = value
    if len(errors) > found_before:
        return None
    return Job(**values)


def _yaml_error(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"{source}: could not parse YAML: {problem}"
    return f"{source}: could not parse YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime, zone_name: str) -> str:
    """`2026-11-25 14:31:00 UTC`; other zones add the abbreviation, which tells the two 02:30s of a fall-back apart."""
    text = f"{moment:%Y-%m-%d %H:%M:%S} {zone_name}"
    return text if zone_name == "UTC" else f"{text} ({moment:%Z})"


class _Wakeup:
    """A wait that stop() can cut short, safely even from a signal handler.

    threading.Event.set() takes a lock, so calling it from a handler that interrupted the main thread inside
    Event.wait() can deadlock; writing a byte to a socket takes none.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self.is_set = False

    def set(self) -> None:
        self.is_set = True
        try:
            self._writer.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken, or closed during shutdown

    def wait(self, seconds: float) -> bool:
        if not self.is_set:
            select.select([self._reader], [], [], max(seconds, 0.0))
        return self.is_set

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _kill_group(process: subprocess.Popen[str], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


class Scheduler:
    """Runs jobs at their cron times until stop() or until `max_runs` executions have started.

    `clock` and `sleep` are injectable so tests can fast-forward time: `sleep(seconds)` returns True when
    the scheduler should stop. `background=False` runs each command before the loop continues, which keeps
    a test's output in a fixed order.
    """

    def __init__(
        self,
        jobs: list[Job],
        *,
        write: Callable[[str], None],
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], bool] | None = None,
        max_runs: int | None = None,
        background: bool = True,
    ) -> None:
        if max_runs is not None and max_runs < 1:
            raise ValueError(f"max_runs must be at least 1, got {max_runs}")
        self.jobs = list(jobs)
        self._write_unlocked = write
        self._clock = clock
        self._wakeup = _Wakeup()
        self._sleep = sleep or self._wakeup.wait
        self._max_runs = max_runs
        self._background = background
        self._output_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._processes: set[subprocess.Popen[str]] = set()
        self._terminating = False
        self._next: dict[str, datetime] = {}
        self.runs_started = 0

    def stop(self) -> None:
        """Ask the loop to end; safe to call from a signal handler or another thread."""
        self._wakeup.set()

    @property
    def stopping(self) -> bool:
        return self._wakeup.is_set

    def run(self) -> int:
        """Run until stopped; returns the process exit code (0)."""
        try:
            now = self._now()
            for job in self.jobs:
                self._schedule(job, after=now)
                self._announce_next(job)
            self._loop()
        finally:
            self._shut_down()
            self._write("[INFO] Scheduler stopped")
            self._wakeup.close()
        return 0

    def _loop(self) -> None:
        while not self.stopping and self._next:
            due_at = min(self._next.values())
            delay = (due_at - self._now()).total_seconds()
            if delay > 0:
                if self._sleep(min(delay, MAX_SLEEP_SECONDS)):
                    return
                continue
            now = self._now()
            for job in self.jobs:
                scheduled = self._next.get(job.name)
                if scheduled is None or scheduled > now:
                    continue
                # After an outage (suspend, a long command with background=False) run once, not once per
                # missed slot, and carry on from now.
                self._schedule(job, after=max(scheduled, now))
                self._start(job, scheduled)
                if self._max_runs is not None and self.runs_started >= self._max_runs:
                    return

    def _schedule(self, job: Job, *, after: datetime) -> None:
        fire = next(iter_fire_times(job.cron, job.timezone, after=after), None)
        with self._state_lock:
            if fire is None:
                self._next.pop(job.name, None)
            else:
                self._next[job.name] = fire.astimezone(UTC)

    def _announce_next(self, job: Job) -> None:
        with self._state_lock:
            fire = self._next.get(job.name)
        if fire is None:
            self._write(f"[INFO] No further runs for '{job.name}'")
        else:
            self._write(f"[INFO] Next run for '{job.name}' at {self._local(fire, job)}")

    def _start(self, job: Job, scheduled: datetime) -> None:
        self.runs_started += 1
        self._write(f"[EXECUTING] '{job.name}' at {self._local(scheduled, job)}")
        if not self._background:
            self._execute(job)
            return
        thread = threading.Thread(target=self._execute, args=(job,), name=f"job {job.name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _execute(self, job: Job) -> None:
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", job.command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group, so stopping reaches its children too
            )
        except OSError as exc:
            self._write_block([f"[FAILED] '{job.name}': could not start: {exc}"], job)
            return
        with self._state_lock:
            self._processes.add(process)
            terminate_now = self._terminating
        if terminate_now:  # stop() came while this execution was starting
            _kill_group(process, signal.SIGTERM)
        try:
            output, _ = process.communicate()
        finally:
            with self._state_lock:
                self._processes.discard(process)
        lines = [f"    {line}" for line in output.splitlines()]
        if process.returncode == 0:
            lines.append(f"[SUCCESS] '{job.name}'")
        elif process.returncode < 0:
            lines.append(f"[FAILED] '{job.name}': killed by {_signal_name(-process.returncode)}")
        else:
            lines.append(f"[FAILED] '{job.name}': exit code {process.returncode}")
        self._write_block(lines, job)

    def _write_block(self, lines: list[str], job: Job) -> None:
        # One block per execution so the output of jobs running side by side does not interleave.
        with self._state_lock:
            fire = self._next.get(job.name)
        if not self.stopping and not self._finished_by_max_runs():
            lines.append(
                f"[INFO] Next run for '{job.name}' at {self._local(fire, job)}"
                if fire is not None
                else f"[INFO] No further runs for '{job.name}'"
            )
        with self._output_lock:
            for line in lines:
                self._write_unlocked(line)

    def _finished_by_max_runs(self) -> bool:
        return self._max_runs is not None and self.runs_started >= self._max_runs

    def _shut_down(self) -> None:
        """Let running executions finish after --max-runs; on stop() terminate them instead."""
        for thread in self._threads:
            while thread.is_alive() and not self.stopping:
                thread.join(0.5)
        if not self.stopping:
            return
        with self._state_lock:
            self._terminating = True
        self._signal_processes(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        self._signal_processes(signal.SIGKILL)
        for thread in self._threads:
            thread.join(1.0)  # a background grandchild may still hold the pipe; the threads are daemons

    def _signal_processes(self, signum: int) -> None:
        with self._state_lock:
            processes = list(self._processes)
        for process in processes:
            _kill_group(process, signum)

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    @staticmethod
    def _local(moment: datetime, job: Job) -> str:
        return format_time(moment.astimezone(ZoneInfo(job.timezone)), job.timezone)

    def _write(self, line: str) -> None:
        with self._output_lock:
            self._write_unlocked(line)

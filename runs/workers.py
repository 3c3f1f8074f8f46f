"""Worker liveness: every worker process beats its own row in the database about once a second, so the recovery
sweep tells a dead worker (its row stale, or on this machine its pid gone) from a task that is merely quiet.

The rows live in the database, not the broker: Redis may lose everything (a flush, a restart without
persistence), and liveness lost with it would make every live worker look dead and its tasks run twice.
A beat commits with `synchronous_commit = off`: losing the last beats in a database crash costs at most a
needless recovery of a live worker's task, which the guarded updates make harmless, never a lost state.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)
# Rows of workers dead for this long are deleted (a clean shutdown deletes its own row at once).
FORGET_AFTER = timedelta(hours=1)


def process_name() -> str:
    """`host:pid` of this process, as `runs.services.worker_name` records it on the task runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


@cache
def machine() -> str:
    """Which pids this process can check: the boot and pid namespace, so a container sharing the host name but
    not the pids (host networking) never judges another's pids."""
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""  # no /proc: pids are never checked, the beat's age alone decides


class Beater:
    """The daemon thread that keeps this process's row fresh; one per worker process."""

    def __init__(self) -> None:
        self.name = process_name()
        self.stop_event = threading.Event()
        # Since when this process's beats succeed without a gap: after a database outage every worker's row
        # is old, so nobody is judged dead until live workers had time to beat again.
        self.healthy_since: float | None = None
        self.thread = threading.Thread(target=self._loop, name="flowforge-worker-beat", daemon=True)

    def start(self) -> "Beater":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)
        try:
            WorkerHeartbeat.objects.filter(name=self.name).delete()
        except DatabaseError:
            log.warning("worker %s: heartbeat row not deleted (database unavailable)", self.name)
        finally:
            connection.close()

    def _loop(self) -> None:
        every = settings.AUTOMATION_WORKER_BEAT_SECONDS
        while not self.stop_event.is_set():
            if beat(self.name):
                self.healthy_since = self.healthy_since or time.monotonic()
            else:
                self.healthy_since = None
            self.stop_event.wait(every)
        connection.close()


def beat(name: str, now: datetime | None = None) -> bool:
    """Write `name`'s heartbeat row; False when the database could not be reached (tried once more after a
    dropped connection)."""
    for _ in range(2):
        try:
            _write_beat(name, now or timezone.now())
            return True
        except DatabaseError:
            connection.close()
    log.warning("worker %s: heartbeat skipped, database unavailable", name)
    return False


def _write_beat(name: str, now: datetime) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        updated = WorkerHeartbeat.objects.filter(name=name).update(beat_at=now)
        if not updated:
            WorkerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": now, "machine": machine()})


_beater: Beater | None = None


def start_beating(**kwargs) -> None:
    """Celery signal handler (worker_process_init, worker_ready): beat for this process from now on."""
    global _beater
    if _beater is not None and _beater.name == process_name() and _beater.thread.is_alive():
        return
    # The first beat comes from the thread too: its own connection, never one a forked child inherited.
    _beater = Beater().start()


def stop_beating(**kwargs) -> None:
    """Celery signal handler (worker_process_shutdown, worker_shutdown): a clean exit removes the row."""
    global _beater
    if _beater is not None and _beater.name == process_name():
        _beater.stop()
    _beater = None


def may_judge() -> bool:
    """Whether this process may call workers dead by their age: not within two beats after its own database
    access came back (others have not beaten yet). A process that does not beat (a test, a command) may."""
    if _beater is None or _beater.name != process_name():
        return True
    since = _beater.healthy_since
    return since is not None and time.monotonic() - since >= 2 * settings.AUTOMATION_WORKER_BEAT_SECONDS + 1


def dead_workers(now: datetime) -> set[str]:
    """Names of worker processes known dead: beat older than AUTOMATION_WORKER_DEAD_SECONDS, or a pid gone on
    this machine. A name without a row is not in it (an older worker, a command): its task runs keep the lease."""
    cutoff = now - timedelta(seconds=settings.AUTOMATION_WORKER_DEAD_SECONDS)
    by_age = may_judge()
    dead = set()
    for name, beat_at, where in WorkerHeartbeat.objects.values_list("name", "beat_at", "machine"):
        if (by_age and beat_at < cutoff) or (where and where == machine() and not _pid_alive(name)):
            dead.add(name)
    return dead


def forget_dead(now: datetime) -> int:
    """Delete the rows of workers dead for FORGET_AFTER; their task runs, if any, fall back to the lease."""
    return WorkerHeartbeat.objects.filter(beat_at__lt=now - FORGET_AFTER).delete()[0]


def _pid_alive(name: str) -> bool:
    host, _, pid = name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process has the pid now
    return not _is_zombie_process(int(pid))


def _is_zombie_process(pid: int) -> bool:
    """A killed child its parent has not reaped yet still answers kill(0) but runs nothing."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False

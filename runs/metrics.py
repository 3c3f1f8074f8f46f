"""Selectors behind /metrics: counts by state, recent task durations and queue depths, kept cheap.

Counts group by `status`, which leads an index on both tables. Durations read only task runs of runs created
in the window (plus a slack for long runs), newest first, at most DURATION_SAMPLE rows. The broker is asked
with a short socket timeout so a dead Redis costs the scrape a second, not a hang.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from .models import TaskRun, WorkflowRun
from .states import RunStatus, TaskStatus

log = logging.getLogger(__name__)

DURATION_WINDOW = timedelta(hours=1)
# Task runs of runs created up to this long before the window may still finish inside it.
DURATION_SLACK = timedelta(hours=1)
DURATION_SAMPLE = 5000
QUANTILES = (0.5, 0.9, 0.99)
# kombu's Redis transport keeps priorities 0-9 in four lists: the queue name and name + sep + step.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass
class Snapshot:
    runs_by_status: dict[str, int]
    task_runs_by_status: dict[str, int]
    durations: list[float]
    queued_by_queue: dict[str, int]
    broker_queue_lengths: dict[str, int] | None = None  # None: the broker is not Redis
    broker_up: bool | None = None


def runs_by_status() -> dict[str, int]:
    counts = dict(WorkflowRun.objects.order_by().values_list("status").annotate(n=Count("id")))
    return {state.value: counts.get(state.value, 0) for state in RunStatus}


def task_runs_by_status() -> dict[str, int]:
    counts = dict(TaskRun.objects.order_by().values_list("status").annotate(n=Count("id")))
    return {state.value: counts.get(state.value, 0) for state in TaskStatus}


def queued_task_runs_by_queue() -> dict[str, int]:
    rows = TaskRun.objects.filter(status=TaskStatus.QUEUED).order_by().values_list("queue").annotate(n=Count("id"))
    return dict(rows)


def recent_task_durations(*, now: datetime | None = None) -> list[float]:
    """Seconds between start and finish of task runs that finished in the last hour (newest first, bounded)."""
    now = now or timezone.now()
    since = now - DURATION_WINDOW
    first_run = WorkflowRun.objects.filter(created_at__gte=since - DURATION_SLACK).aggregate(first=Min("id"))["first"]
    if first_run is None:
        return []
    rows = (TaskRun.objects.filter(run_id__gte=first_run, finished_at__gte=since, started_at__isnull=False)
            .order_by("-id").values_list("started_at", "finished_at")[:DURATION_SAMPLE])
    return [max((finished - started).total_seconds(), 0.0) for started, finished in rows]


def broker_queue_lengths(queues: set[str], *, timeout: float) -> dict[str, int] | None:
    """Messages waiting in each queue's Redis lists; None when the broker is not Redis. Raises when it is down."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        names = sorted(queues)
        for name in names:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        lengths = pipe.execute()
    finally:
        client.close()
    step = len(_PRIORITY_SUFFIXES)
    return {name: sum(lengths[i * step:(i + 1) * step]) for i, name in enumerate(names)}


def metrics_snapshot(*, now: datetime | None = None) -> Snapshot:
    queued = queued_task_runs_by_queue()
    snapshot = Snapshot(runs_by_status=runs_by_status(), task_runs_by_status=task_runs_by_status(),
                        durations=recent_task_durations(now=now), queued_by_queue=queued)
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE, *queued}
    try:
        snapshot.broker_queue_lengths = broker_queue_lengths(queues, timeout=settings.HEALTHZ_TIMEOUT_SECONDS)
        snapshot.broker_up = True if snapshot.broker_queue_lengths is not None else None
    except Exception:  # noqa: BLE001 - a down broker is a metric, not a failed scrape
        log.warning("metrics: broker queue lengths unavailable", exc_info=True)
        snapshot.broker_up = False
    return snapshot


# --- Prometheus text exposition format 0.0.4 -----------------------------------------------------------------


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(int(q * len(sorted_values)), len(sorted_values) - 1)
    return sorted_values[index]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_prometheus(snapshot: Snapshot) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
                lines.append(f"{name}{{{rendered}}} {_number(value)}")
            else:
                lines.append(f"{name} {_number(value)}")

    family("flowforge_runs", "gauge", "Workflow runs by status.",
           [({"status": s}, n) for s, n in snapshot.runs_by_status.items()])
    family("flowforge_task_runs", "gauge", "Task runs by status.",
           [({"status": s}, n) for s, n in snapshot.task_runs_by_status.items()])

    durations = sorted(snapshot.durations)
    name = "flowforge_task_duration_seconds"
    lines.append(f"# HELP {name} Duration of task runs that finished in the last hour "
                 f"(at most {DURATION_SAMPLE} newest).")
    lines.append(f"# TYPE {name} summary")
    for q in QUANTILES:
        lines.append(f'{name}{{quantile="{q}"}} {_number(_quantile(durations, q))}')
    lines.append(f"{name}_sum {_number(float(sum(durations)))}")
    lines.append(f"{name}_count {len(durations)}")

    queues = {settings.CELERY_TASK_DEFAULT_QUEUE, *snapshot.queued_by_queue}
    family("flowforge_queued_task_runs", "gauge", "Task runs queued in the database, by Celery queue.",
           [({"queue": q}, snapshot.queued_by_queue.get(q, 0)) for q in sorted(queues)])
    if snapshot.broker_up is not None:
        family("flowforge_broker_up", "gauge", "1 when the Redis broker answered the scrape.",
               [({}, 1 if snapshot.broker_up else 0)])
    if snapshot.broker_queue_lengths is not None:
        family("flowforge_broker_queue_length", "gauge", "Messages waiting in the broker's Redis list, by queue.",
               [({"queue": q}, n) for q, n in sorted(snapshot.broker_queue_lengths.items())])
    return "\n".join(lines) + "\n"

"""Figures for the admin index: the last 24 hours of runs, failure rates, slow tasks, queue depth, next fires.

Every query is bounded by the run-id range of the window (runs are created in id order), so the dashboard
stays cheap on a large history.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from .models import RunState, TaskRun, TaskState, WorkflowRun

log = logging.getLogger(__name__)
WINDOW = timedelta(hours=24)


def _window_first_id(since: datetime) -> int | None:
    return (WorkflowRun.objects.filter(created_at__gte=since).order_by("created_at")
            .values_list("id", flat=True).first())


def dashboard(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    first_id = _window_first_id(now - WINDOW)
    recent = WorkflowRun.objects.filter(id__gte=first_id) if first_id else WorkflowRun.objects.none()
    by_status = dict(recent.order_by().values_list("status").annotate(n=Count("id")))
    per_workflow = (recent.order_by().values("workflow_id", "workflow__name")
                    .annotate(total=Count("id"), failed=Count("id", filter=Q(status=RunState.FAILED)))
                    .order_by("-failed", "-total")[:10])
    slowest = []
    if first_id:
        slowest = list(
            TaskRun.objects.filter(run_id__gte=first_id, started_at__isnull=False, finished_at__isnull=False)
            .annotate(took=ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField()))
            .order_by("-took").select_related("run__workflow")
            .only("task_id", "run_id", "status", "started_at", "finished_at", "run__workflow__name")[:10]
        )
    return {
        "window_hours": int(WINDOW.total_seconds() // 3600),
        "by_status": [(status, by_status.get(status, 0)) for status in RunState.values],
        "total": sum(by_status.values()),
        "per_workflow": [
            {**row, "rate": round(100 * row["failed"] / row["total"], 1) if row["total"] else 0.0}
            for row in per_workflow
        ],
        "slowest": slowest,
        "queued_tasks": TaskRun.objects.filter(status=TaskState.QUEUED).count(),
        "running_tasks": TaskRun.objects.filter(status=TaskState.RUNNING).count(),
        "queued_runs": WorkflowRun.objects.filter(status=RunState.QUEUED).count(),
        "broker_depth": broker_depth(),
        "next_fires": next_fires(now=now),
    }


def broker_depth() -> dict[str, int] | None:
    """Messages waiting per queue when the broker is Redis (a list per queue); None for other brokers."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        import redis

        from runs.models import TaskRun as _TaskRun

        queues = set(_TaskRun.objects.order_by().values_list("queue", flat=True).distinct()[:20]) | {"default"}
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return {queue: client.llen(queue) for queue in sorted(queues)}
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - the dashboard must render while the broker is down
        log.warning("could not read the broker queue lengths", exc_info=True)
        return None


def next_fires(*, now: datetime, limit: int = 10) -> list[dict]:
    """Best effort: the next due time of each enabled periodic task, soonest first."""
    try:
        from django_celery_beat.models import PeriodicTask
    except ImportError:  # pragma: no cover
        return []
    fires = []
    tasks = (PeriodicTask.objects.filter(enabled=True).exclude(task__startswith="celery.")
             .select_related("crontab", "interval", "clocked", "solar")[:200])
    for task in tasks:
        try:
            schedule = task.schedule
            last = task.last_run_at or now
            due = last + schedule.remaining_estimate(last)
        except Exception:  # noqa: BLE001 - one odd schedule must not hide the others
            continue
        fires.append({"name": task.name, "task": task.task, "due": max(due, now), "id": task.pk})
    fires.sort(key=lambda item: item["due"])
    return fires[:limit]

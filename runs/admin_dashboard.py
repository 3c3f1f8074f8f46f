"""Figures for the admin index: the last 24 hours of runs, failure rates, slow tasks, queue depth, next fires.

Every query is bounded by the run-id range of the window (runs are created in id order), so the dashboard
stays cheap on a large history.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from workflows.models import Workflow
from triggers.schedules import TASK_NAMES

from .admin import format_duration
from .models import TaskRun, WorkflowRun
from .states import RunStatus, TaskStatus

log = logging.getLogger(__name__)
WINDOW = timedelta(hours=24)
CRON_TASK = TASK_NAMES["cron"]
# Task runs whose queue can hold messages: read through the status index, never a DISTINCT over all history.
WAITING_FOR_BROKER = [TaskStatus.QUEUED, TaskStatus.RUNNING]


def _window_first_id(since: datetime) -> int | None:
    return (WorkflowRun.objects.filter(created_at__gte=since).order_by("created_at")
            .values_list("id", flat=True).first())


def dashboard(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    first_id = _window_first_id(now - WINDOW)
    recent = WorkflowRun.objects.filter(id__gte=first_id) if first_id else WorkflowRun.objects.none()
    by_status = dict(recent.order_by().values_list("status").annotate(n=Count("id")))
    per_workflow = (recent.order_by().values("workflow_id", "workflow__name")
                    .annotate(total=Count("id"), failed=Count("id", filter=Q(status=RunStatus.FAILED)))
                    .order_by("-failed", "-total")[:10])
    slowest = _slowest_tasks(first_id) if first_id else []
    return {
        "window_hours": int(WINDOW.total_seconds() // 3600),
        "by_status": [(s.value, by_status.get(s.value, 0)) for s in RunStatus],
        "total": sum(by_status.values()),
        "per_workflow": [
            {**row, "rate": round(100 * row["failed"] / row["total"], 1) if row["total"] else 0.0}
            for row in per_workflow
        ],
        "slowest": slowest,
        "queued_tasks": TaskRun.objects.filter(status=TaskStatus.QUEUED).count(),
        "running_tasks": TaskRun.objects.filter(status=TaskStatus.RUNNING).count(),
        "queued_runs": WorkflowRun.objects.filter(status=RunStatus.QUEUED).count(),
        "broker_depth": broker_depth(),
        "next_fires": next_fires(now=now),
    }


def _slowest_tasks(first_id: int) -> list[dict]:
    """The ten longest task runs of the window. Workflow names are read afterwards for those ten: joined in the
    ranking query, PostgreSQL merge-joins the runs table from its first row instead of from the window's."""
    slowest = list(
        TaskRun.objects.filter(run_id__gte=first_id, started_at__isnull=False, finished_at__isnull=False)
        .annotate(took=ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField()))
        .order_by("-took").only("task_id", "run_id", "status", "started_at", "finished_at")[:10]
    )
    names = dict(WorkflowRun.objects.filter(id__in={task.run_id for task in slowest})
                 .values_list("id", "workflow__name"))
    return [{"task_id": task.task_id, "run_id": task.run_id, "workflow": names.get(task.run_id, ""),
             "took": format_duration(task.started_at, task.finished_at)} for task in slowest]


def broker_depth() -> dict[str, int] | None:
    """Messages waiting per queue when the broker is Redis (a list per queue); None for other brokers."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        import redis

        queues = set(TaskRun.objects.filter(status__in=WAITING_FOR_BROKER).order_by()
                     .values_list("queue", flat=True).distinct()[:20]) | {"default"}
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return {queue: client.llen(queue) for queue in sorted(queues)}
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - the dashboard must render while the broker is down
        log.warning("could not read the broker queue lengths", exc_info=True)
        return None


def next_fires(*, now: datetime, limit: int = 10) -> list[dict]:
    """The next fire of each enabled schedule, soonest first, with its workflow and trigger.

    A cron trigger's periodic task has `start_time` = its next fire computed by `workflows.cron` (see
    workflows/triggers.py), so that is the instant shown; the interval beside it only retries a lost message.
    Other schedules (poll triggers, hand-made periodic tasks) are due one interval after their last run.
    """
    fires = []
    for task in (PeriodicTask.objects.filter(enabled=True).exclude(task__startswith="celery.")
                 .select_related("crontab", "interval", "clocked", "solar").order_by("id")[:200]):
        due = _due(task, now)
        if due is not None:
            fires.append({"name": task.name, "task": task.task, "due": due, "overdue": due < now,
                          "id": task.pk, **_trigger_ref(task)})
    fires.sort(key=lambda fire: fire["due"])
    fires = fires[:limit]
    _describe_triggers(fires)
    return fires


def _due(task: PeriodicTask, now: datetime) -> datetime | None:
    if task.task == CRON_TASK:
        return task.start_time
    try:
        last = task.last_run_at or task.start_time or now
        return last + task.schedule.remaining_estimate(last)
    except Exception:  # noqa: BLE001 - one odd hand-made schedule must not hide the others
        return None


def _trigger_ref(task: PeriodicTask) -> dict:
    try:
        kwargs = json.loads(task.kwargs or "{}")
        return {"workflow_id": int(kwargs["workflow_id"]), "trigger_index": int(kwargs["trigger_index"])}
    except (ValueError, TypeError, KeyError):
        return {"workflow_id": None, "trigger_index": None}


def _describe_triggers(fires: list[dict]) -> None:
    """Name each fire's workflow and trigger (one query for the shown fires)."""
    ids = {fire["workflow_id"] for fire in fires if fire["workflow_id"] is not None}
    workflows = {pk: (name, definition) for pk, name, definition in
                 Workflow.objects.filter(id__in=ids).values_list("id", "name", "definition")} if ids else {}
    for fire in fires:
        name, definition = workflows.get(fire["workflow_id"], (None, {}))
        triggers = definition.get("triggers") if isinstance(definition, dict) else None
        index = fire["trigger_index"]
        trigger = triggers[index] if isinstance(triggers, list) and index is not None and 0 <= index < len(triggers) \
            else {}
        fire["workflow_name"] = name
        fire["trigger"] = _trigger_label(trigger) if isinstance(trigger, dict) else ""


def _trigger_label(trigger: dict) -> str:
    if trigger.get("type") == "cron" and isinstance(trigger.get("cron"), str):
        return f"cron {trigger['cron']} ({trigger.get('timezone', 'UTC')})"
    if trigger.get("type") == "poll":
        return f"poll {trigger.get('action', '')} every {trigger.get('every', 300)} s"
    return ""

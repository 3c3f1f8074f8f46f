"""Run-history retention: delete finished runs past their age or beyond the newest N, in small batches.

Each batch is its own short transaction deleting by an explicit id list, so pruning millions of rows never
holds long locks, and unfinished runs (queued, running) are never touched: the status is re-checked in the
DELETE itself. Failed runs are kept at least AUTOMATION_RETENTION_FAILED_DAYS, longer than successful ones,
because they are the ones an operator comes back to.

Webhook deliveries follow the same policy, pruned by the triggers app that owns them (`triggers.retention`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from workflows.models import Workflow

from .models import TaskRun, WorkflowRun
from .states import RunStatus

log = logging.getLogger(__name__)
FINISHED = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED]
UNFINISHED = [RunStatus.QUEUED, RunStatus.RUNNING]


@dataclass(frozen=True)
class Policy:
    days: int
    failed_days: int
    max_runs: int


def policy_for(workflow: Workflow) -> Policy:
    days = workflow.retention_days or settings.AUTOMATION_RETENTION_DAYS
    return Policy(
        days=days,
        failed_days=max(days, settings.AUTOMATION_RETENTION_FAILED_DAYS),
        max_runs=workflow.retention_max_runs or settings.AUTOMATION_RETENTION_MAX_RUNS,
    )


def _older_than(cutoff: datetime) -> Q:
    return Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff)


def expired_runs(workflow: Workflow, *, now: datetime | None = None) -> QuerySet[WorkflowRun]:
    """The finished runs of `workflow` that its policy no longer keeps."""
    now = now or timezone.now()
    policy = policy_for(workflow)
    expired = (Q(status__in=[RunStatus.SUCCEEDED, RunStatus.CANCELLED]) & _older_than(now - timedelta(days=policy.days))
               | Q(status=RunStatus.FAILED) & _older_than(now - timedelta(days=policy.failed_days)))
    # The (max_runs + 1)-th newest run: it and everything older is beyond the count limit.
    beyond = (WorkflowRun.objects.filter(workflow=workflow).order_by("-id")
              .values_list("id", flat=True)[policy.max_runs:policy.max_runs + 1])
    if beyond:
        expired |= Q(id__lte=beyond[0])
    return (WorkflowRun.objects.filter(workflow=workflow, status__in=FINISHED).filter(expired)
            # A retry or re-run that has not started yet still reads its parent's outputs.
            .exclude(reruns__status__in=UNFINISHED))


def _delete_batch(ids: list[int]) -> tuple[int, int]:
    with transaction.atomic():
        ids = list(WorkflowRun.objects.filter(id__in=ids, status__in=FINISHED).values_list("id", flat=True))
        if not ids:
            return 0, 0
        WorkflowRun.objects.filter(parent_id__in=ids).update(parent=None)
        task_runs, _ = TaskRun.objects.filter(run_id__in=ids).delete()
        _, per_model = WorkflowRun.objects.filter(id__in=ids, status__in=FINISHED).delete()
    return per_model.get(WorkflowRun._meta.label, 0), task_runs


def prune_runs(*, batch_size: int = 1000, now: datetime | None = None) -> dict[str, int]:
    """Delete expired run history of every workflow; returns how many runs and task runs went."""
    now = now or timezone.now()
    totals = {"runs": 0, "task_runs": 0, "workflows": 0}
    for workflow in Workflow.objects.only("id", "retention_days", "retention_max_runs").order_by("id"):
        deleted_here = 0
        queryset = expired_runs(workflow, now=now).order_by("id").values_list("id", flat=True)
        while True:
            ids = list(queryset[:batch_size])
            if not ids:
                break
            runs, task_runs = _delete_batch(ids)
            if not runs:
                break
            deleted_here += runs
            totals["task_runs"] += task_runs
        if deleted_here:
            totals["workflows"] += 1
            totals["runs"] += deleted_here
            log.info("retention: deleted %d runs of workflow %s", deleted_here, workflow.id)
    return totals


def history_storage(workflow_id: int, *, sample: int = 2000) -> dict:
    """Approximate bytes held by a workflow's run history (task inputs, outputs and logs, run triggers).

    Measured exactly on the newest `sample` runs and scaled to the run count, so the admin page stays fast on
    a history of millions of rows.
    """
    if connection.vendor == "postgresql":
        size = "coalesce(pg_column_size({0}), 0)"
    else:
        size = "coalesce(length(CAST({0} AS TEXT)), 0)"
    per_run = (f"{size.format('r.trigger')} + (SELECT coalesce(sum({size.format('t.output')} + "
               f"{size.format('t.inputs')} + {size.format('t.logs')}), 0) FROM runs_taskrun t WHERE t.run_id = r.id)")
    sql = (f"SELECT count(*), coalesce(sum({per_run}), 0) FROM "
           "(SELECT id, trigger FROM runs_workflowrun WHERE workflow_id = %s ORDER BY id DESC LIMIT %s) r")
    with connection.cursor() as cursor:
        cursor.execute(sql, [workflow_id, sample])
        sampled, sampled_bytes = cursor.fetchone()
    runs = WorkflowRun.objects.filter(workflow_id=workflow_id).count() if sampled >= sample else sampled
    task_runs = TaskRun.objects.filter(run__workflow_id=workflow_id).count() if runs <= sample else None
    scale = runs / sampled if sampled else 0
    return {"runs": runs, "task_runs": task_runs, "bytes": int(int(sampled_bytes) * scale),
            "estimated": sampled < runs}

"""Keep a workflow's triggers (cron schedules, pollers) in step with its definition.

Cron and poll triggers become django-celery-beat periodic tasks; webhooks need no state beyond the
workflow's token. Called by `workflow_save` / `workflow_delete` in the same transaction.
"""
from __future__ import annotations

from workflows.definition import WorkflowSpec


def sync_triggers(workflow, spec: WorkflowSpec) -> None:
    """Create, update or remove the periodic tasks of `workflow` so they match `spec.triggers`."""
    # Filled in by the triggers work (issue 4): cron → CrontabSchedule + PeriodicTask, poll → IntervalSchedule.
    return None


def remove_triggers(workflow) -> None:
    return None

"""Celery entry points for triggers: thin, they take ids and call services.

The task names keep the `workflows.` prefix they had before the triggers app existed: django-celery-beat rows of
existing installations (`PeriodicTask.task`) name them, and a renamed task would leave those schedules firing
into "unregistered task" errors.
"""
from celery import shared_task

from .polling import poll_fire
from .registry import FIRE_TASK
from .retention import prune_deliveries as deliveries_prune
from .schedules import cron_fire, trigger_fire


@shared_task(name="workflows.fire_cron", ignore_result=True)
def fire_cron(workflow_id: int, trigger_index: int) -> None:
    cron_fire(workflow_id=workflow_id, trigger_index=trigger_index)


@shared_task(name="workflows.fire_poll", ignore_result=True)
def fire_poll(workflow_id: int, trigger_index: int) -> None:
    poll_fire(workflow_id=workflow_id, trigger_index=trigger_index)


@shared_task(name=FIRE_TASK, ignore_result=True)
def fire_trigger(workflow_id: int, trigger_index: int) -> None:
    """Any other scheduled trigger type (triggers.registry): its handler decides what to start."""
    trigger_fire(workflow_id=workflow_id, trigger_index=trigger_index)


# Named by the beat schedule (CELERY_BEAT_SCHEDULE in automation/settings.py), next to runs.prune.
@shared_task(name="triggers.prune_deliveries", ignore_result=True)
def prune_deliveries() -> dict[str, int]:
    return deliveries_prune()

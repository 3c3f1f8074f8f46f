"""Celery entry points for triggers: thin, they take ids and call services."""
from celery import shared_task


@shared_task(name="workflows.fire_cron", ignore_result=True)
def fire_cron(workflow_id: int, trigger_index: int) -> None:
    from . import triggers

    triggers.cron_fire(workflow_id=workflow_id, trigger_index=trigger_index)


@shared_task(name="workflows.fire_poll", ignore_result=True)
def fire_poll(workflow_id: int, trigger_index: int) -> None:
    from . import polling

    polling.poll_fire(workflow_id=workflow_id, trigger_index=trigger_index)

"""Celery entry points: thin, they take ids and call services."""
from celery import shared_task

from . import services
from .retention import prune_runs


@shared_task(name="runs.start_run", acks_late=True, ignore_result=True)
def start_run(run_id: int) -> None:
    services.run_start(run_id=run_id)


@shared_task(name="runs.execute_task", acks_late=True, ignore_result=True, bind=True)
def execute_task(self, task_run_id: int) -> None:
    queue = (self.request.delivery_info or {}).get("routing_key")
    services.task_execute(task_run_id=task_run_id, queue=queue)


# A hint sent with an ETA when a task pauses (flow.wait, flow.approval's timeout); the database decides.
@shared_task(name="runs.resume_due", acks_late=True, ignore_result=True)
def resume_due(task_run_id: int) -> None:
    services.task_resume_due(task_run_id=task_run_id)


@shared_task(name="runs.sweep", ignore_result=True)
def sweep() -> None:
    services.sweep()


# The name is the one the beat schedule names (CELERY_BEAT_SCHEDULE in automation/settings.py).
@shared_task(name="runs.prune", ignore_result=True)
def prune() -> dict[str, int]:
    return prune_runs()

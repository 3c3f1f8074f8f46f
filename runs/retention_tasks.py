"""The periodic prune of run history; imported by `runs.tasks` so the worker registers it."""
from celery import shared_task

from .retention import prune_runs


@shared_task(name="runs.prune", ignore_result=True)
def prune() -> dict[str, int]:
    return prune_runs()

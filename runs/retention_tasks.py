"""The periodic prune of run history; imported by `runs.tasks` so the worker registers it."""
from celery import shared_task

from .retention import prune_deliveries, prune_runs


@shared_task(name="runs.prune", ignore_result=True)
def prune() -> dict[str, int]:
    # Runs first: the deliveries of the runs it deletes go in the same pass.
    return {**prune_runs(), **prune_deliveries()}

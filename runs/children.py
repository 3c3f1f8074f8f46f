"""What a sub-workflow call and an `on_failure` handler read (SPEC §9, §11): the named workflow of the same
owner, the depth bound, the child's result as its parent task's output, and the failed run's report.

Selectors and shapes only; runs/services.py makes the state changes (starting the runs through its one writer
of runs, resuming the waiting task under the parent run's lock).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse

from workflows.limits import MAX_OUTPUT_BYTES, json_size
from workflows.models import Workflow, workflow_name_key

from .models import TaskRun, WorkflowRun
from .states import FINAL_RUN, RunStatus, TaskStatus

ERROR_IN_REPORT_CHARS = 1000  # each failed task's error in an on_failure report (1,000 tasks stay under 1 MiB)
# How far back the sweep looks for failed runs whose on_failure step was lost; older failures are left alone.
FAILURE_SWEEP_WINDOW = timedelta(days=1)


class ChildRunRefused(ValueError):
    """The child cannot be started; the message is the waiting task's error."""


def workflow_of_owner(*, owner_id: int | None, name: str) -> Workflow:
    """The workflow called `name` (compared as names are, SPEC §11) owned by `owner_id`; never another owner's."""
    found = (Workflow.objects.filter(owner_id=owner_id, name_key=workflow_name_key(name))
             .only("id", "name", "owner_id", "current_version_id").first())
    if found is None or found.current_version_id is None:
        raise ChildRunRefused(f"no workflow named {name!r} of this owner")
    return found


def child_depth(*, parent_depth: int, name: str) -> int:
    """The child's depth, or ChildRunRefused when it would nest deeper than AUTOMATION_MAX_DEPTH."""
    depth = parent_depth + 1
    limit = settings.AUTOMATION_MAX_DEPTH
    if depth > limit:
        raise ChildRunRefused(
            f"cannot start {name!r}: runs may nest at most {limit} deep (AUTOMATION_MAX_DEPTH) and this run is "
            f"already {parent_depth} deep; does the workflow call itself?")
    return depth


def child_trigger(*, payload, parent_run_id: int, task_id: str) -> dict:
    return {"body": payload, "kind": "child", "parent": {"run_id": parent_run_id, "task_id": task_id}}


def child_result(child: WorkflowRun) -> tuple[str, dict, str]:
    """(task status, output, error) of the parent task that waited for the finished `child`."""
    outputs = dict(TaskRun.objects.filter(run_id=child.id, item_index__isnull=True)
                   .order_by("id").values_list("task_id", "output"))
    output = {"run_id": child.id, "status": child.status, "outputs": outputs}
    if json_size(output, stop_after=MAX_OUTPUT_BYTES) > MAX_OUTPUT_BYTES:
        output = {"run_id": child.id, "status": child.status}
        return (TaskStatus.FAILED, output,
                f"output too large: the outputs of child run {child.id} are more than {MAX_OUTPUT_BYTES:,} bytes")
    if child.status == RunStatus.SUCCEEDED:
        return TaskStatus.SUCCEEDED, output, ""
    return TaskStatus.FAILED, output, f"child run {child.id} of {child.workflow.name!r} {child.status}"


def run_url(run_id: int) -> str:
    """The run's admin page as an absolute link (PUBLIC_URL)."""
    return settings.PUBLIC_URL + reverse("admin:runs_workflowrun_change", args=[run_id])


def failure_report(run: WorkflowRun) -> dict:
    """The `trigger.body` of an `on_failure` handler's run: the failed run and its failed tasks."""
    failed = (TaskRun.objects.filter(run_id=run.id, status=TaskStatus.FAILED, item_index__isnull=True)
              .order_by("id").values_list("task_id", "error"))
    return {
        "run": {"id": run.id, "workflow": run.workflow.name, "status": run.status, "url": run_url(run.id)},
        "failed_tasks": [{"task_id": task_id, "error": error[:ERROR_IN_REPORT_CHARS]} for task_id, error in failed],
    }


def children_waited_for(*, run_id: int) -> list[int]:
    """The unfinished child runs a waiting task of `run_id` waits for (cancelled with it)."""
    return list(WorkflowRun.objects.filter(parent_run_id=run_id, parent_task_run__status=TaskStatus.WAITING)
                .exclude(status__in=FINAL_RUN).order_by("id").values_list("id", flat=True))


def ended_children_waited_for() -> models.QuerySet:
    """Ids of ended child runs whose parent task still waits: their follow-up was lost (for the sweep)."""
    return (WorkflowRun.objects.filter(parent_task_run__status=TaskStatus.WAITING, status__in=FINAL_RUN)
            .order_by("id").values_list("id", flat=True))


def failed_runs_unhandled(*, now: datetime) -> models.QuerySet:
    """Ids of recently failed runs whose on_failure step was not taken yet (for the sweep)."""
    return (WorkflowRun.objects.filter(status=RunStatus.FAILED, failure_handled=False,
                                       finished_at__gte=now - FAILURE_SWEEP_WINDOW)
            .order_by("id").values_list("id", flat=True))

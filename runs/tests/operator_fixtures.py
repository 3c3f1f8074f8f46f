"""Fixtures for the operator-facing tests (API, admin, retention): users, workflows and runs made directly.

Runs are written as rows, not through the engine, so no broker or worker is involved; import the fixtures
with `from runs.tests.operator_fixtures import *` in a test module.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from runs.models import TaskRun, WorkflowRun
from workflows.models import Workflow
from workflows.services import workflow_save

PIPELINE = """
name: "Data Pipeline"
tasks:
  task_A: {run: "echo 'Fetching data'"}
  task_B: {run: "echo 'Cleaning data'", depends_on: [task_A]}
  task_D: {run: "echo 'Archiving'", depends_on: [task_A]}
  task_E: {run: "echo 'Finalizing'", depends_on: [task_B, task_D]}
"""

INVALID = """
name: "Unknown dependency"
tasks:
  task_A: {run: "echo a"}
  task_B: {run: "echo b", depends_on: [task_Z]}
"""


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("operator", password="pw-operator", is_staff=True, is_superuser=True)


@pytest.fixture
def alice(db) -> User:
    return User.objects.create_user("alice", password="pw-alice")


@pytest.fixture
def bob(db) -> User:
    return User.objects.create_user("bob", password="pw-bob")


@pytest.fixture
def viewer(db) -> User:
    user = User.objects.create_user("viewer", password="pw-viewer")
    user.groups.add(Group.objects.get_or_create(name="viewers")[0])
    return user


def make_workflow(owner: User | None, source: str = PIPELINE, name: str | None = None) -> Workflow:
    return workflow_save(source=source, name=name, owner=owner)


def make_run(workflow: Workflow, status: str = "succeeded", tasks: dict[str, str] | None = None, *,
             created_at: datetime | None = None, trigger_kind: str = "manual", finished: bool | None = None,
             parent: WorkflowRun | None = None) -> WorkflowRun:
    """A run row with task runs in the given states (output, logs and timings filled in for finished ones)."""
    now = timezone.now()
    final = status in ("succeeded", "failed", "cancelled") if finished is None else finished
    run = WorkflowRun.objects.create(workflow=workflow, workflow_version=workflow.current_version, status=status,
                                     trigger={"body": {"n": 1}}, trigger_kind=trigger_kind, parent=parent)
    started = (created_at or now) + timedelta(seconds=1)
    WorkflowRun.objects.filter(id=run.id).update(
        created_at=created_at or now, started_at=started if status != "queued" else None,
        finished_at=started + timedelta(seconds=3) if final else None)
    for index, (task_id, task_status) in enumerate((tasks or {}).items()):
        done = task_status in ("succeeded", "failed", "skipped", "cancelled")
        TaskRun.objects.create(
            run=run, task_id=task_id, status=task_status, attempt=1 if task_status != "pending" else 0,
            inputs={"command": f"echo {task_id}"},
            output={"stdout": f"{task_id} done\n", "exit_code": 0} if task_status == "succeeded" else {},
            error="exit code 3" if task_status == "failed" else "",
            logs=f"log line of {task_id}\n" if task_status != "pending" else "",
            attempts=[{"attempt": 1, "status": task_status, "error": "", "worker": "w1",
                       "started_at": started.isoformat(), "finished_at": started.isoformat()}] if done else [],
            started_at=started + timedelta(seconds=index) if task_status != "pending" else None,
            finished_at=started + timedelta(seconds=index + 1) if done else None,
        )
    run.refresh_from_db()
    return run


__all__ = ["INVALID", "PIPELINE", "alice", "bob", "make_run", "make_workflow", "staff", "viewer"]

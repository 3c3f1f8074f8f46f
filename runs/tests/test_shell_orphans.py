"""A shell command dies with the worker that ran it (SPEC §10): a real Celery worker is SIGKILLed in the middle
of `sleep 4; echo done >> a.log`, another worker retries the task, and the line is written once, by the retry."""
from __future__ import annotations

import time

import pytest

from automation.testing import wait_for, wait_for_run
from runs.models import TaskRun, WorkflowRun
from runs.services import run_create
from workflows.services import workflow_save

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("command", [
    "sleep 4; echo done >> {log}",
    # A nested shell is not the worker's child, so only the watchdog killing the group stops it.
    "sh -c 'sleep 4; echo done >> {log}'",
], ids=["shell", "nested-shell"])
def test_a_worker_killed_mid_command_leaves_no_orphan_and_the_retry_writes_the_line_once(
        start_worker, tmp_path, command):
    log = tmp_path / "a.log"
    workflow = workflow_save(source={"name": f"orphans-{len(command)}", "tasks": {
        "append": {"action": "shell.run", "inputs": {"command": command.format(log=log)}, "timeout": 60}}})
    first = start_worker("w1")
    run = run_create(workflow=workflow)
    wait_for(lambda: TaskRun.objects.filter(run=run, task_id="append", status="running").exists(), timeout=30,
             message="the command to start")
    time.sleep(1)  # inside `sleep 4`
    first.kill()
    killed_at = time.monotonic()

    start_worker("w2")
    wait_for_run(run.id, timeout=60)
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"
    task_run = TaskRun.objects.get(run=run, task_id="append")
    assert task_run.attempt == 2
    # An orphan of the first attempt would have written by killed_at + 3 s.
    wait_for(lambda: time.monotonic() > killed_at + 4.5, timeout=10, interval=0.2)
    assert log.read_text() == "done\n"

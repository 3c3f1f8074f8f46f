"""flow.wait on real Celery workers (PostgreSQL + Redis): a waiting task holds no worker, wakes within 1 s of its
time, and survives the death of every worker plus a flushed broker (the sweep resumes it from the database)."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from automation.testing import wait_for, wait_for_run
from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WAITER = """
name: waiter
tasks:
  pause: {action: flow.wait, inputs: {seconds: %s}}
  after: {action: transform.jinja, depends_on: [pause], inputs: {value: "{{ steps.pause.output.waited_until }}"}}
"""
QUICK = """
name: quick
tasks:
  hello: {action: transform.jinja, inputs: {value: hi}}
"""


@pytest.fixture
def owner(db) -> User:
    return User.objects.create_user("waiter-owner", password="pw")


def task(run_id: int, task_id: str) -> TaskRun:
    return TaskRun.objects.get(run_id=run_id, task_id=task_id)


def waiting(run_ids: list[int]) -> bool:
    return TaskRun.objects.filter(run_id__in=run_ids, task_id="pause", status="waiting").count() == len(run_ids)


def assert_woke_on_time(run_id: int) -> None:
    pause = task(run_id, "pause")
    assert pause.status == "succeeded"
    assert pause.output == {"waited_until": pause.resume_at.isoformat()}
    late = (pause.finished_at - pause.resume_at).total_seconds()
    assert 0 <= late <= 1.0, f"run {run_id} woke {late:.3f}s after its time"
    assert task(run_id, "after").output == {"value": pause.resume_at.isoformat()}


def test_four_waiting_runs_hold_no_worker_so_a_quick_run_beside_them_is_not_delayed(owner, start_worker):
    start_worker("w1", concurrency=2)
    waiter = workflow_save(source=WAITER % 5, owner=owner)
    waits = [services.run_create(workflow=waiter).id for _ in range(4)]
    wait_for(lambda: waiting(waits), timeout=20, message="four waits to pause")

    started = time.monotonic()
    quick = services.run_create(workflow=workflow_save(source=QUICK, owner=owner))
    assert wait_for_run(quick.id, timeout=10).status == "succeeded"
    assert time.monotonic() - started < 2.0
    assert waiting(waits), "the quick run finished while every wait still waited"

    for run_id in waits:
        assert wait_for_run(run_id, timeout=20).status == "succeeded"
        assert_woke_on_time(run_id)
        pause = task(run_id, "pause")
        assert 4.9 <= (pause.resume_at - pause.started_at).total_seconds() <= 5.5


def test_a_wait_survives_killing_every_worker_and_flushing_the_broker(owner, start_worker, broker):
    first = start_worker("w1", concurrency=2)
    run = services.run_create(workflow=workflow_save(source=WAITER % 3, owner=owner))
    wait_for(lambda: waiting([run.id]), timeout=20, message="the wait to pause")
    resume_at = task(run.id, "pause").resume_at

    first.kill()
    broker.flushdb()  # the wake-up hint (an ETA message) is gone with it
    wait_for(lambda: timezone.now() > resume_at + timedelta(seconds=0.5), timeout=10, message="the wait's time")
    assert task(run.id, "pause").status == "waiting"  # nobody left to wake it

    start_worker("w2")  # its recovery sweep finds the overdue wait in the database
    finished = wait_for_run(run.id, timeout=20)
    assert finished.status == "succeeded"
    pause = task(run.id, "pause")
    assert pause.output == {"waited_until": resume_at.isoformat()}
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"

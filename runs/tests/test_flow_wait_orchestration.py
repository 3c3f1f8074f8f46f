"""flow.wait step by step on the database, the broker played by the test (runs/tests/broker_double.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def start(broker_double, owner, inputs: str) -> WorkflowRun:  # noqa: F811
    workflow = workflow_save(source=f"name: waits\ntasks:\n  pause: {{action: flow.wait, inputs: {inputs}}}\n"
                                    "  next: {action: transform.jinja, depends_on: [pause], inputs: {value: 1}}\n",
                             owner=owner)
    run = broker_double.step(services.run_create, workflow=workflow)
    broker_double.deliver(broker_double.take("execute_task")[0])
    return run


def pause(run: WorkflowRun) -> TaskRun:
    return TaskRun.objects.get(run=run, task_id="pause")


def test_a_waiting_task_holds_no_worker_and_asks_for_a_wake_up_at_its_time(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "{seconds: 30}")

    row = pause(run)
    assert (row.status, row.worker, row.finished_at) == ("waiting", "", None)
    assert 29 <= (row.resume_at - row.started_at).total_seconds() <= 31
    [hint] = broker_double.take("resume_due")
    assert hint.args == (row.id,)
    later = broker_double.advance_clock(20)
    assert services.sweep(now=later)["zombies"] == 0  # no heartbeat while waiting, and none expected
    assert pause(run).status == "waiting"


def test_the_sweep_resumes_an_overdue_wait_whose_hint_was_lost(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "{seconds: 30}")
    broker_double.take("resume_due")  # lost with the broker

    broker_double.step(services.sweep, now=broker_double.advance_clock(31))
    broker_double.deliver_all()

    row = pause(run)
    assert row.status == "succeeded"
    assert row.output == {"waited_until": row.resume_at.isoformat()}
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_a_duplicate_wake_up_resumes_the_task_once(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "{seconds: 5}")
    [hint] = broker_double.take("resume_due")
    broker_double.advance_clock(6)

    first = broker_double.step(services.task_resume_due, task_run_id=hint.args[0])
    second = broker_double.step(services.task_resume_due, task_run_id=hint.args[0])

    assert first is not None and second is None
    assert len(broker_double.take("execute_task")) == 1


def test_waiting_until_a_time_with_an_offset_wakes_at_that_time(alice, broker_double):  # noqa: F811
    until = datetime.now(dt_timezone(timedelta(hours=2))).replace(microsecond=0) + timedelta(minutes=10)
    run = start(broker_double, alice, f"{{until: '{until.isoformat()}'}}")

    assert pause(run).resume_at == until


@pytest.mark.parametrize("inputs, message", [
    ("{until: '2030-01-01T09:00:00'}", "has no UTC offset"),
    ("{until: 'next tuesday'}", "is not an ISO 8601 time"),
    ("{}", "exactly one of `seconds` or `until`"),
    ("{seconds: 5, until: '2030-01-01T09:00:00Z'}", "exactly one of `seconds` or `until`"),
])
def test_a_wait_without_a_clear_time_fails_the_task_saying_why(alice, broker_double, inputs, message):  # noqa: F811
    run = start(broker_double, alice, inputs)

    row = pause(run)
    assert row.status == "failed"
    assert message in row.error


def test_cancelling_a_run_cancels_its_waiting_task_and_a_late_wake_up_changes_nothing(
        alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "{seconds: 5}")
    [hint] = broker_double.take("resume_due")

    broker_double.step(services.run_cancel, run_id=run.id)
    broker_double.advance_clock(6)
    broker_double.step(services.task_resume_due, task_run_id=hint.args[0])

    assert pause(run).status == "cancelled"
    assert WorkflowRun.objects.get(id=run.id).status == "cancelled"
    assert broker_double.take("execute_task") == []

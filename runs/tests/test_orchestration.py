"""How runs.services moves a run along, step by step on the database, with the broker played by the test."""
from __future__ import annotations

import pytest
from django.conf import settings

from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

from . import fake_actions
from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def save(owner, tasks: str, name: str = "orchestrated"):
    return workflow_save(source=f"name: {name}\ntasks:\n{tasks}", owner=owner)


def start(broker_double, workflow) -> WorkflowRun:  # noqa: F811
    run = broker_double.step(services.run_create, workflow=workflow)
    return run


def states(run: WorkflowRun) -> dict[str, str]:
    return dict(TaskRun.objects.filter(run=run).values_list("task_id", "status"))


def task_run(run: WorkflowRun, task_id: str) -> TaskRun:
    return TaskRun.objects.get(run=run, task_id=task_id)


def test_starting_a_run_queues_only_the_tasks_with_no_upstream(alice, broker_double):  # noqa: F811
    workflow = save(alice, "  a: {action: test.outcome}\n  b: {action: test.outcome}\n"
                           "  c: {action: test.outcome, depends_on: [a, b]}\n")
    run = start(broker_double, workflow)
    assert states(run) == {"a": "queued", "b": "queued", "c": "pending"}
    sent = broker_double.take("execute_task")
    assert [m.args[0] for m in sent] == [task_run(run, "a").id, task_run(run, "b").id]
    assert {m.queue for m in sent} == {"default"}


def test_a_second_delivery_of_the_same_message_does_not_run_the_task_again(alice, broker_double):  # noqa: F811
    run = start(broker_double, save(alice, "  a: {action: test.outcome}\n"))
    [message] = broker_double.take()
    broker_double.deliver(message)
    broker_double.deliver(message)
    assert fake_actions.CALLS["a"] == 1
    assert task_run(run, "a").attempt == 1
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_a_fan_in_task_waits_for_every_upstream_task(alice, broker_double):  # noqa: F811
    workflow = save(alice, "  a: {action: test.outcome, queue: q1}\n  b: {action: test.outcome, queue: q1}\n"
                           "  c: {action: test.outcome, depends_on: [a, b]}\n")
    run = start(broker_double, workflow)
    first, second = broker_double.take()
    broker_double.deliver(first)
    assert states(run)["c"] == "pending" and broker_double.messages == []
    broker_double.deliver(second)
    assert states(run)["c"] == "queued"
    [join] = broker_double.take()
    assert join.args == (task_run(run, "c").id,)
    broker_double.deliver(join)
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_a_failed_attempt_is_queued_again_after_its_backoff_and_then_succeeds(alice, broker_double):  # noqa: F811
    workflow = save(alice, "  flaky: {action: test.outcome, retries: 2, retry_delay: 30,"
                           " inputs: {fail_times: 1}}\n")
    run = start(broker_double, workflow)
    broker_double.deliver(broker_double.take()[0])
    row = task_run(run, "flaky")
    assert row.status == "queued" and row.attempt == 1 and row.failure == "action_failed"
    [retry] = broker_double.take()
    assert retry.countdown == 30
    assert 29 <= (row.not_before - row.queued_at).total_seconds() <= 31

    broker_double.deliver(retry)  # a message that arrives before its backoff is refused
    assert task_run(run, "flaky").status == "queued" and fake_actions.CALLS["flaky"] == 1

    broker_double.advance_clock(31)
    broker_double.deliver(retry)
    row = task_run(run, "flaky")
    assert row.status == "succeeded" and row.attempt == 2 and row.failure == ""
    assert [a["status"] for a in row.attempts] == ["failed", "succeeded"]


def test_cancelling_a_run_cancels_its_waiting_tasks_and_their_messages_do_nothing(alice, broker_double):  # noqa: F811
    run = start(broker_double, save(alice, "  a: {action: test.outcome}\n"
                                           "  b: {action: test.outcome, depends_on: [a]}\n"))
    [message] = broker_double.take()
    broker_double.step(services.run_cancel, run_id=run.id)
    broker_double.deliver(message)
    assert states(run) == {"a": "cancelled", "b": "cancelled"}
    assert WorkflowRun.objects.get(id=run.id).status == "cancelled"
    assert fake_actions.CALLS["a"] == 0 and broker_double.messages == []


def test_the_finishing_worker_runs_the_next_task_on_its_own_queue_without_a_message(alice, broker_double):  # noqa: F811
    workflow = save(alice, "  a: {action: test.outcome}\n  b: {action: test.outcome, depends_on: [a]}\n"
                           "  c: {action: test.outcome, depends_on: [b], queue: other}\n")
    run = start(broker_double, workflow)
    broker_double.deliver(broker_double.take()[0])  # delivered from the `default` queue
    assert states(run) == {"a": "succeeded", "b": "succeeded", "c": "queued"}
    b = task_run(run, "b")
    assert b.attempt == 1 and b.worker == services.worker_name()
    [other] = broker_double.take()
    assert other.queue == "other" and other.args == (task_run(run, "c").id,)


def test_the_sweep_requeues_a_task_whose_worker_died_and_the_run_still_finishes(alice, broker_double):  # noqa: F811
    run = start(broker_double, save(alice, "  a: {action: test.outcome}\n"))
    broker_double.take()
    # A worker claimed the task, then died: its heartbeat stops.
    died_at = broker_double.advance_clock(0)
    TaskRun.objects.filter(run=run).update(status="running", attempt=1, started_at=died_at, heartbeat_at=died_at,
                                           worker="gone:1")
    assert broker_double.step(services.sweep)["zombies"] == 0  # still within its lease
    broker_double.advance_clock(settings.AUTOMATION_TASK_LEASE_SECONDS + 1)
    assert broker_double.step(services.sweep)["zombies"] == 1
    broker_double.deliver_all()
    row = task_run(run, "a")
    assert row.status == "succeeded" and row.attempt == 2
    assert [a["status"] for a in row.attempts] == ["lost", "succeeded"]


def test_the_sweep_gives_up_on_a_task_whose_workers_keep_dying(alice, broker_double, settings):  # noqa: F811
    settings.AUTOMATION_MAX_LOST_ATTEMPTS = 1
    run = start(broker_double, save(alice, "  a: {action: test.outcome}\n"
                                           "  b: {action: test.outcome, depends_on: [a]}\n"))
    broker_double.take()
    died_at = broker_double.advance_clock(0)
    TaskRun.objects.filter(run=run, task_id="a").update(status="running", attempt=1, heartbeat_at=died_at)
    broker_double.advance_clock(settings.AUTOMATION_TASK_LEASE_SECONDS + 1)
    broker_double.step(services.sweep)
    a = task_run(run, "a")
    assert a.status == "failed" and a.failure == "worker_lost" and "gave up after 1 lost attempts" in a.error
    assert states(run)["b"] == "skipped" and WorkflowRun.objects.get(id=run.id).status == "failed"


def test_the_sweep_sends_again_a_message_the_broker_lost(alice, broker_double, settings):  # noqa: F811
    run = start(broker_double, save(alice, "  a: {action: test.outcome}\n"))
    broker_double.take()  # the broker lost it
    assert broker_double.step(services.sweep)["requeued"] == 0
    broker_double.advance_clock(settings.AUTOMATION_REQUEUE_AFTER_SECONDS + 1)
    assert broker_double.step(services.sweep)["requeued"] == 1
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_a_run_of_a_workflow_without_a_concurrency_limit_starts_in_the_transaction_that_creates_it(
        alice, broker_double):  # noqa: F811
    run = broker_double.step(services.run_create, workflow=save(alice, "  a: {action: test.outcome}\n"
                                                                       "  b: {action: test.outcome, depends_on: [a]}\n"))
    assert WorkflowRun.objects.get(id=run.id).status == "running"
    assert states(run) == {"a": "queued", "b": "pending"}
    assert [m.task for m in broker_double.messages] == ["execute_task"], "a start_run hop"
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_the_sweep_starts_a_run_whose_start_message_was_lost(alice, broker_double, settings):  # noqa: F811
    run = broker_double.step(services.run_create, workflow=workflow_save(
        source="name: limited\nconcurrency: 1\ntasks:\n  a: {action: test.outcome}\n", owner=alice))
    assert WorkflowRun.objects.get(id=run.id).status == "queued"
    assert [m.task for m in broker_double.take()] == ["start_run"]  # then lost by the broker
    broker_double.advance_clock(settings.AUTOMATION_REQUEUE_AFTER_SECONDS + 1)
    assert broker_double.step(services.sweep)["restarted"] == 1
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"

"""Joins decided by counting: each task run keeps how many of its upstream tasks are not final yet, succeeded and
failed, so a completion reads and writes only its direct downstream rows, whatever the size of the run."""
from __future__ import annotations

import itertools
import re
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automation.testing import wait_for_run
from runs import services
from runs.models import TaskRun, WorkflowRun
from runs.states import FINAL_TASK, TaskStatus, TriggerRule, count_decision, rule_decision
from workflows.services import workflow_save

from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice  # noqa: F401 - fixture


def test_counting_decides_as_the_rule_over_upstream_states_does_for_every_mix_of_states():
    for rule in TriggerRule:
        for size in range(5):
            for upstream in itertools.product(list(TaskStatus), repeat=size):
                left = sum(1 for status in upstream if status not in FINAL_TASK)
                succeeded, failed = upstream.count(TaskStatus.SUCCEEDED), upstream.count(TaskStatus.FAILED)
                assert count_decision(rule, size, left, succeeded, failed) == rule_decision(rule, list(upstream)), (
                    rule, upstream)


def chain(size: int, first: str = "{action: test.outcome}") -> str:
    return "".join(f"  t{i}: {{action: test.outcome, depends_on: [t{i - 1}]}}\n" if i else f"  t0: {first}\n"
                   for i in range(size))


def fan(width: int) -> str:
    return ("  root: {action: test.outcome}\n"
            + "".join(f"  f{i}: {{action: test.outcome, depends_on: [root]}}\n" for i in range(width))
            + f"  join: {{action: test.outcome, depends_on: [{', '.join(f'f{i}' for i in range(width))}]}}\n")


def started(broker_double, owner, tasks: str, name: str) -> WorkflowRun:  # noqa: F811
    broker_double.messages.clear()  # an earlier run's messages are not part of this one
    run = broker_double.step(services.run_create, workflow=workflow_save(source=f"name: {name}\ntasks:\n{tasks}",
                                                                          owner=owner))
    return run


def deliver_next(broker_double) -> None:  # noqa: F811
    # queue=None: every next task goes through the broker, so each delivery is one claim and one completion
    broker_double.deliver(replace(broker_double.messages.pop(0), queue=None))


def queries_of_one_completion(broker_double, owner, tasks: str, name: str) -> list[str]:  # noqa: F811
    """The SQL of delivering the third task message of the run: claim, execute, record, decide the downstream."""
    run = started(broker_double, owner, tasks, name)
    deliver_next(broker_double)
    deliver_next(broker_double)
    with CaptureQueriesContext(connection) as captured:
        deliver_next(broker_double)
    assert WorkflowRun.objects.get(id=run.id).status == "running"
    # ids and timestamps differ from run to run; the statements must not
    return [re.sub(r"\d+", "N", query["sql"]) for query in captured.captured_queries
            if "SAVEPOINT" not in query["sql"]]


@pytest.mark.django_db
@pytest.mark.parametrize("shape", [chain, fan])
def test_a_completion_costs_the_same_queries_in_a_run_of_ten_tasks_as_in_one_of_five_hundred(
        alice, broker_double, shape):  # noqa: F811
    few = queries_of_one_completion(broker_double, alice, shape(10), f"few {shape.__name__}")
    many = queries_of_one_completion(broker_double, alice, shape(500), f"many {shape.__name__}")
    assert many == few, "\n".join(many)
    # claim (one UPDATE ... RETURNING), the guarded finish with the run locked and the downstream counted in the
    # same statement, for a chain the next task queued: no read of the run's other task rows
    assert len(many) <= 3, "\n".join(many)


@pytest.mark.django_db
def test_a_failure_skips_a_long_chain_each_task_naming_its_upstream_and_an_all_done_task_still_runs(
        alice, broker_double):  # noqa: F811
    tasks = chain(300, first="{action: test.outcome, inputs: {fail: true}}")
    tasks += "  cleanup: {action: test.outcome, depends_on: [t299], trigger_rule: all_done}\n"
    run = started(broker_double, alice, tasks, "skips")
    deliver_next(broker_double)
    rows = {row.task_id: row for row in TaskRun.objects.filter(run=run)}
    assert rows["t0"].status == "failed"
    assert rows["t1"].status == "skipped" and rows["t1"].error == "upstream t0 failed"
    assert all(rows[f"t{i}"].status == "skipped" and rows[f"t{i}"].error == f"upstream t{i - 1} skipped"
               for i in range(2, 300))
    assert rows["cleanup"].status == "queued"
    assert broker_double.deliver_all() == 1
    run.refresh_from_db()
    assert run.status == "failed"
    assert TaskRun.objects.get(run=run, task_id="cleanup").status == "succeeded"


@pytest.mark.django_db
def test_a_handler_reached_by_a_failure_and_by_a_skip_it_caused_runs_once(alice, broker_double):  # noqa: F811
    run = started(broker_double, alice, "  a: {action: test.outcome, inputs: {fail: true}}\n"
                                        "  b: {action: test.outcome, depends_on: [a]}\n"
                                        "  c: {action: test.outcome, depends_on: [a]}\n"
                                        "  d: {action: test.outcome, depends_on: [b, c]}\n"
                                        "  handler: {action: test.outcome, depends_on: [a, b], trigger_rule: one_failed}\n"
                                        "  after_all: {action: test.outcome, depends_on: [d, handler],"
                                        " trigger_rule: one_success}\n", "diamond")
    deliver_next(broker_double)
    assert dict(TaskRun.objects.filter(run=run).values_list("task_id", "status")) == {
        "a": "failed", "b": "skipped", "c": "skipped", "d": "skipped", "handler": "queued", "after_all": "pending"}
    assert [m.args[0] for m in broker_double.messages] == [TaskRun.objects.get(run=run, task_id="handler").id]
    broker_double.deliver_all()
    assert dict(TaskRun.objects.filter(run=run, task_id__in=["handler", "after_all"]).values_list(
        "task_id", "status")) == {"handler": "succeeded", "after_all": "succeeded"}
    run.refresh_from_db()
    assert run.status == "failed"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tasks", [chain(1000), fan(300)], ids=["chain of 1000", "300 joined"])
def test_a_thousand_task_chain_and_a_three_hundred_wide_join_succeed_on_real_workers(start_worker, tasks):
    start_worker("w1", concurrency=2)
    noop = "transform.jinja, inputs: {value: ok}"  # test.outcome is not installed in the worker processes
    run = services.run_create(workflow=workflow_save(source="name: big\ntasks:\n" + tasks.replace("test.outcome", noop)))
    run = wait_for_run(run.id, timeout=180)
    assert run.status == "succeeded"
    assert set(TaskRun.objects.filter(run=run).values_list("status", flat=True)) == {"succeeded"}

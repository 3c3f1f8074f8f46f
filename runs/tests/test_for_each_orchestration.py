"""Distributed for_each (SPEC §9) step by step on the database, with the broker played by the test."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

from . import fake_actions
from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def start(broker_double, owner, tasks: str):  # noqa: F811
    workflow = workflow_save(source=f"name: each\ntasks:\n{tasks}", owner=owner)
    run = broker_double.step(services.run_create, workflow=workflow)
    return run


def items(run) -> list[TaskRun]:
    return list(TaskRun.objects.filter(run=run, item_index__isnull=False).order_by("item_index"))


def parent(run, task_id: str = "each") -> TaskRun:
    return TaskRun.objects.get(run=run, task_id=task_id, item_index__isnull=True)


def in_flight(run) -> int:
    return sum(1 for item in items(run) if item.status in ("queued", "running", "waiting"))


def test_items_are_created_when_the_task_is_claimed_and_at_most_max_parallel_are_in_flight(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ [10, 11, 12, 13, 14, 15, 16] }}',"
                                      " max_parallel: 3, queue: items, inputs: {key: 'k{{ index }}', value: '{{ item }}'}}\n")
    [claim_parent] = broker_double.take()
    broker_double.deliver(replace(claim_parent, queue=None))  # as if not from the task's queue: nothing kept locally
    assert parent(run).status == "waiting" and parent(run).inputs == {"for_each": [10, 11, 12, 13, 14, 15, 16]}
    assert [i.status for i in items(run)] == ["queued"] * 3 + ["pending"] * 4
    seen = 0
    while broker_double.messages:
        assert in_flight(run) <= 3
        message = broker_double.messages.pop(0)
        broker_double.deliver(replace(message, queue=None))  # one message per item: none runs on after another
        seen += 1
    assert seen == 7
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert [o["value"] for o in parent(run).output] == [10, 11, 12, 13, 14, 15, 16]
    assert [fake_actions.CALLS[f"k{i}"] for i in range(7)] == [1] * 7


def test_the_mini_scheduler_runs_the_next_item_on_the_same_worker_without_exceeding_max_parallel(
        alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ range(5) | list }}',"
                                      " max_parallel: 2, inputs: {key: 'm{{ index }}'}}\n")
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"
    assert len(parent(run).output) == 5
    assert all(i.attempt == 1 and i.status == "succeeded" for i in items(run))


def test_a_failing_item_fails_the_task_naming_its_index_after_its_own_retries(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice,
                "  each: {action: test.outcome, for_each: '{{ [0, 1, 2] }}', retries: 1, retry_delay: 5,"
                " inputs: {key: 'f{{ index }}', fail: '{{ index == 1 }}'}}\n"
                "  after: {action: test.outcome, depends_on: [each]}\n")
    while broker_double.messages:
        message = broker_double.messages.pop(0)
        if message.countdown:  # a retry's backoff: let it pass first
            broker_double.advance_clock(message.countdown + 1)
        broker_double.deliver(message)
    failed = [i for i in items(run) if i.item_index == 1][0]
    assert failed.status == "failed" and failed.attempt == 2
    assert parent(run).status == "failed"
    assert parent(run).error.startswith("item 1 failed: asked to fail")
    assert TaskRun.objects.get(run=run, task_id="after").status == "skipped"
    assert WorkflowRun.objects.get(id=run.id).status == "failed"


def test_an_empty_list_skips_the_task_and_what_depends_on_it(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ trigger.missing | default([]) }}'}\n"
                                      "  after: {action: test.outcome, depends_on: [each]}\n")
    broker_double.deliver_all()
    assert parent(run).status == "skipped" and parent(run).error == "for_each: the list is empty"
    assert items(run) == []
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_a_value_that_is_not_a_list_fails_the_task_naming_the_expression(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ {\"a\": 1} }}'}\n")
    broker_double.deliver_all()
    assert parent(run).status == "failed"
    assert "for_each: `{{ {\"a\": 1} }}` gave dict {'a': 1}, not a list" in parent(run).error
    assert WorkflowRun.objects.get(id=run.id).status == "failed"


def test_more_items_than_the_limit_fails_the_task_without_creating_items(alice, broker_double, settings):  # noqa: F811
    settings.AUTOMATION_MAX_ITEMS = 4
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ range(5) | list }}'}\n")
    broker_double.deliver_all()
    assert "5 items, more than the limit of 4" in parent(run).error
    assert items(run) == []


def test_a_later_task_reads_the_items_outputs_in_order_and_the_run_advance_ignores_items(
        alice, broker_double):  # noqa: F811
    run = start(broker_double, alice,
                "  each: {action: transform.jinja, for_each: '{{ [3, 1, 2] }}', inputs: {value: '{{ item * 10 }}'}}\n"
                "  total: {action: transform.jinja, depends_on: [each],"
                " inputs: {value: \"{{ steps.each.output | map(attribute='value') | list }}\"}}\n")
    broker_double.deliver_all()
    assert TaskRun.objects.get(run=run, task_id="total").output == {"value": [30, 10, 20]}


def test_a_duplicate_delivery_of_the_parent_creates_its_items_once(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ [1, 2] }}', queue: q,"
                                      " inputs: {key: 'd{{ index }}'}}\n")
    [message] = broker_double.take()
    broker_double.deliver(replace(message, queue=None))
    broker_double.deliver(replace(message, queue=None))
    assert len(items(run)) == 2
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_cancelling_a_run_cancels_the_waiting_parent_and_its_pending_items(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ [1, 2, 3] }}', queue: q,"
                                      " max_parallel: 1}\n")
    broker_double.deliver(replace(broker_double.take()[0], queue=None))
    assert [i.status for i in items(run)] == ["queued", "pending", "pending"]
    services.run_cancel(run_id=run.id)
    broker_double.deliver_all()
    assert parent(run).status == "cancelled"
    assert {i.status for i in items(run)} == {"cancelled"}


def queries_of_one_item(broker_double, owner, count: int) -> list[str]:  # noqa: F811
    """The SQL of delivering the third item of a `count`-item for_each: claim, execute, finish, start the next."""
    workflow = workflow_save(owner=owner, source=f"name: each of {count}\ntasks:\n  each: {{action: transform.jinja,"
                             f" for_each: '{{{{ range({count}) | list }}}}', max_parallel: 2,"
                             " inputs: {value: '{{ item }}'}}\n")
    broker_double.messages.clear()  # an earlier run's items are not part of this measure
    run = broker_double.step(services.run_create, workflow=workflow)
    broker_double.deliver(replace(broker_double.take()[0], queue=None))  # the parent: every item through the broker
    for _ in range(2):
        broker_double.deliver(replace(broker_double.messages.pop(0), queue=None))
    with CaptureQueriesContext(connection) as captured:
        broker_double.deliver(replace(broker_double.messages.pop(0), queue=None))
    assert [i.status for i in items(run)][:4] == ["succeeded"] * 3 + ["queued"], (parent(run).status, parent(run).error)
    return [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]


def test_finishing_an_item_costs_the_same_queries_for_ten_items_as_for_a_thousand(alice, broker_double):  # noqa: F811
    few = queries_of_one_item(broker_double, alice, 10)
    many = queries_of_one_item(broker_double, alice, 1000)
    assert len(many) == len(few), "\n".join(many)
    # claim (update, read), the run lock, the item's guarded update, the next item's start (one UPDATE): no read
    # of the item list or of the other tasks' results for an item whose templates do not name them
    assert len(many) <= 5, "\n".join(many)
    assert not any(re.search(r'SELECT (?:(?!FROM).)*"inputs"', sql) for sql in many[1:])  # inputs read, not written


def test_an_item_whose_worker_died_is_run_again_by_the_sweep_and_the_items_still_finish_in_order(
        alice, broker_double, settings):  # noqa: F811
    run = start(broker_double, alice, "  each: {action: test.outcome, for_each: '{{ [5, 6, 7, 8] }}', max_parallel: 2,"
                                      " inputs: {key: 'z{{ index }}', value: '{{ item }}'}}\n")
    broker_double.deliver(replace(broker_double.take()[0], queue=None))
    lost = broker_double.messages.pop(0)  # item 0: claimed by a worker that is then SIGKILLed
    assert services._claim(lost.args[0]).item_index == 0
    broker_double.deliver_all()  # the other items go on meanwhile, never more than 2 in flight
    assert [i.status for i in items(run)] == ["running", "succeeded", "succeeded", "succeeded"]
    broker_double.advance_clock(settings.AUTOMATION_TASK_LEASE_SECONDS + 1)
    assert broker_double.step(services.sweep)["zombies"] == 1
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"
    assert [o["value"] for o in parent(run).output] == [5, 6, 7, 8]
    assert items(run)[0].attempt == 2 and [a["status"] for a in items(run)[0].attempts] == ["lost", "succeeded"]


def test_an_item_that_names_an_earlier_task_reads_its_output(alice, broker_double):  # noqa: F811
    run = start(broker_double, alice,
                "  base: {action: transform.jinja, inputs: {value: 100}}\n"
                "  each: {action: transform.jinja, depends_on: [base], for_each: '{{ [1, 2] }}',"
                " inputs: {value: '{{ steps.base.output.value + item }}'}}\n")
    broker_double.deliver_all()
    assert [o["value"] for o in parent(run).output] == [101, 102]

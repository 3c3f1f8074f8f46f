"""flow.run_workflow (SPEC §9) step by step on the database, with the broker played by the test."""
from __future__ import annotations

import pytest

from runs import children, services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

from . import fake_actions
from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice, bob  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

DOUBLE = """
name: double
tasks:
  calc: {action: test.outcome, inputs: {value: "{{ trigger.body.n * 2 }}"}}
"""
CALLER = """
name: caller
tasks:
  call: {action: flow.run_workflow, inputs: {workflow: %s, payload: {n: 21}%s}}
  use: {action: test.outcome, depends_on: [call], inputs: {value: "{{ tasks.call.output.outputs.calc.value }}"}}
"""
SLOW_CHILD = """
name: slow
tasks:
  nap: {action: flow.wait, inputs: {seconds: 3600}}
"""


def caller(owner, *, child: str = "double", extra: str = "") -> object:
    return workflow_save(source=CALLER % (child, extra), owner=owner)


def run_all(broker_double, workflow) -> WorkflowRun:  # noqa: F811
    run = broker_double.step(services.run_create, workflow=workflow)
    broker_double.deliver_all()
    return WorkflowRun.objects.get(id=run.id)


def task(run: WorkflowRun, task_id: str) -> TaskRun:
    return TaskRun.objects.get(run_id=run.id, task_id=task_id, item_index__isnull=True)


def test_a_sub_workflows_outputs_flow_back_into_a_later_task_of_the_parent(alice, broker_double):  # noqa: F811
    workflow_save(source=DOUBLE, owner=alice)
    parent = run_all(broker_double, caller(alice))
    assert parent.status == "succeeded"
    child = WorkflowRun.objects.get(parent_run=parent)
    assert (child.status, child.depth, child.trigger_kind) == ("succeeded", 1, "child")
    assert child.parent_task_run_id == task(parent, "call").id
    assert child.trigger["body"] == {"n": 21}
    assert task(parent, "call").output == {"run_id": child.id, "status": "succeeded",
                                           "outputs": {"calc": {"calls": 1, "value": 42}}}
    assert task(parent, "use").output["value"] == 42


def test_without_wait_the_task_succeeds_at_once_with_the_child_run_id(alice, broker_double):  # noqa: F811
    workflow_save(source=SLOW_CHILD, owner=alice)
    parent = run_all(broker_double, caller(alice, child="slow", extra=", wait: false"))
    child = WorkflowRun.objects.get(parent_run=parent)
    assert task(parent, "call").output == {"run_id": child.id}
    assert task(parent, "call").status == "succeeded"
    assert child.status == "running" and task(child, "nap").status == "waiting"


def test_a_failed_child_fails_the_waiting_task_and_the_parent_run(alice, broker_double):  # noqa: F811
    workflow_save(source="name: double\ntasks:\n  calc: {action: test.outcome, inputs: {fail: true}}\n", owner=alice)
    parent = run_all(broker_double, caller(alice))
    child = WorkflowRun.objects.get(parent_run=parent)
    assert (parent.status, child.status) == ("failed", "failed")
    call = task(parent, "call")
    assert call.status == "failed" and call.error == f"child run {child.id} of 'double' failed"
    assert call.output["status"] == "failed"
    assert task(parent, "use").status == "skipped"


def test_a_workflow_that_calls_itself_stops_at_the_depth_limit_with_a_message(alice, broker_double,  # noqa: F811
                                                                              settings):
    settings.AUTOMATION_MAX_DEPTH = 3
    loop = workflow_save(source="name: loop\ntasks:\n  again: {action: flow.run_workflow, inputs: {workflow: loop}}\n",
                         owner=alice)
    top = run_all(broker_double, loop)
    runs = list(WorkflowRun.objects.filter(workflow=loop).order_by("depth"))
    assert [r.depth for r in runs] == [0, 1, 2, 3]  # the fourth call is refused: no run at depth 4
    assert {r.status for r in runs} == {"failed"} and runs[0].id == top.id
    deepest = task(runs[-1], "again")
    assert "runs may nest at most 3 deep (AUTOMATION_MAX_DEPTH)" in deepest.error
    assert "already 3 deep" in deepest.error


def test_another_owners_workflow_name_is_refused(alice, bob, broker_double):  # noqa: F811
    workflow_save(source=DOUBLE, owner=bob)
    parent = run_all(broker_double, caller(alice))
    assert parent.status == "failed"
    assert task(parent, "call").error == "no workflow named 'double' of this owner"
    assert not WorkflowRun.objects.filter(workflow__owner=bob).exists()


def test_a_name_compared_as_workflow_names_are_finds_the_owners_workflow(alice, broker_double):  # noqa: F811
    workflow_save(source=DOUBLE, owner=alice)
    parent = run_all(broker_double, caller(alice, child='"  DOUBLE "'))
    assert parent.status == "succeeded"


def test_cancelling_the_parent_cancels_its_waiting_child_and_grandchild(alice, broker_double):  # noqa: F811
    workflow_save(source=SLOW_CHILD, owner=alice)
    workflow_save(source="name: middle\ntasks:\n  call: {action: flow.run_workflow, inputs: {workflow: slow}}\n",
                  owner=alice)
    parent = run_all(broker_double, caller(alice, child="middle"))
    middle = WorkflowRun.objects.get(parent_run=parent)
    slow = WorkflowRun.objects.get(parent_run=middle)
    assert (parent.status, middle.status, slow.status) == ("running", "running", "running")

    broker_double.step(services.run_cancel, run_id=parent.id)
    broker_double.deliver_all()
    statuses = {r.id: r.status for r in WorkflowRun.objects.filter(id__in=[parent.id, middle.id, slow.id])}
    assert statuses == {parent.id: "cancelled", middle.id: "cancelled", slow.id: "cancelled"}
    assert task(slow, "nap").status == "cancelled" and task(parent, "call").status == "cancelled"


def test_a_child_started_without_wait_is_not_cancelled_with_its_parent(alice, broker_double):  # noqa: F811
    workflow_save(source=SLOW_CHILD, owner=alice)
    source = CALLER % ("slow", ", wait: false") + "  hold: {action: flow.wait, inputs: {seconds: 3600}}\n"
    parent = run_all(broker_double, workflow_save(source=source, owner=alice))
    broker_double.step(services.run_cancel, run_id=parent.id)
    assert WorkflowRun.objects.get(parent_run=parent).status == "running"


def test_cancelling_the_child_fails_the_parents_waiting_task(alice, broker_double):  # noqa: F811
    workflow_save(source=SLOW_CHILD, owner=alice)
    parent = run_all(broker_double, caller(alice, child="slow"))
    child = WorkflowRun.objects.get(parent_run=parent)
    broker_double.step(services.run_cancel, run_id=child.id)
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=parent.id).status == "failed"
    assert task(parent, "call").error == f"child run {child.id} of 'slow' cancelled"


def test_a_finish_followed_up_twice_resumes_the_parent_task_once(alice, broker_double):  # noqa: F811
    workflow_save(source=DOUBLE, owner=alice)
    parent = run_all(broker_double, caller(alice))
    child = WorkflowRun.objects.get(parent_run=parent)
    broker_double.step(services.run_finished_follow_up, run_id=child.id)
    broker_double.step(services.child_run_resume_parent, child_run_id=child.id)
    assert broker_double.messages == []
    assert fake_actions.CALLS["use"] == 1 and task(parent, "use").attempt == 1


def test_the_sweep_resumes_a_parent_whose_child_ended_while_its_follow_up_was_lost(alice, broker_double,  # noqa: F811
                                                                                   monkeypatch):
    workflow_save(source=DOUBLE, owner=alice)
    monkeypatch.setattr(services, "run_finished_follow_up", lambda *, run_id: None)  # the process died after commit
    parent = run_all(broker_double, caller(alice))
    assert WorkflowRun.objects.get(parent_run=parent).status == "succeeded"
    assert task(parent, "call").status == "waiting"

    counts = broker_double.step(services.sweep)
    assert counts["children_ended"] == 1
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=parent.id).status == "succeeded"
    assert broker_double.step(services.sweep)["children_ended"] == 0


def test_child_outputs_over_the_output_limit_fail_the_waiting_task(alice, broker_double, monkeypatch):  # noqa: F811
    monkeypatch.setattr(children, "MAX_OUTPUT_BYTES", 40)
    workflow_save(source=DOUBLE, owner=alice)
    parent = run_all(broker_double, caller(alice))
    call = task(parent, "call")
    assert call.status == "failed" and call.error.startswith("output too large: the outputs of child run")
    assert set(call.output) == {"run_id", "status"}


def test_the_run_api_names_the_parent_run_of_a_child(alice, broker_double, client):  # noqa: F811
    workflow_save(source=DOUBLE, owner=alice)
    parent = run_all(broker_double, caller(alice))
    child = WorkflowRun.objects.get(parent_run=parent)
    client.force_login(alice)
    shown = client.get(f"/api/runs/{child.id}/").json()
    assert (shown["parent_run"], shown["parent"], shown["trigger_kind"]) == (parent.id, None, "child")
    listed = {r["id"]: r for r in client.get("/api/runs/").json()["results"]}
    assert listed[child.id]["parent_run"] == parent.id and listed[parent.id]["parent_run"] is None

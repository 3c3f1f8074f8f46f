"""Sub-workflows and on_failure on real Celery workers (PostgreSQL + Redis), driven through the HTTP API by two
users."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from automation.testing import wait_for, wait_for_run
from runs.models import TaskRun, WorkflowRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DOUBLE = """
name: double
tasks:
  calc: {action: transform.jinja, inputs: {value: "{{ trigger.body.n * 2 }}"}}
"""
CALLER = """
name: caller
tasks:
  call: {action: flow.run_workflow, inputs: {workflow: %s, payload: {n: "{{ trigger.body.n }}"}}}
  use: {action: transform.jinja, depends_on: [call],
        inputs: {value: "{{ tasks.call.output.outputs.calc.value + 1 }}"}}
"""


def login(client, name: str):
    client.force_login(get_user_model().objects.create_user(name, password=f"pw-{name}"))
    return client


@pytest.fixture
def alice(client):
    return login(client, "alice")


def create(api, source: str) -> int:
    created = api.post("/api/workflows/", {"definition": source}, content_type="application/json")
    assert created.status_code == 201, created.json()
    return created.json()["id"]


def start(api, workflow_id: int, body: dict | None = None) -> int:
    started = api.post(f"/api/workflows/{workflow_id}/run/", body or {}, content_type="application/json")
    assert started.status_code == 202, started.json()
    return started.json()["run_id"]


def task(run_id: int, task_id: str) -> TaskRun:
    return TaskRun.objects.get(run_id=run_id, task_id=task_id, item_index__isnull=True)


def test_a_sub_workflows_outputs_flow_back_into_a_later_task_on_real_workers(alice, start_worker):
    start_worker("w1", concurrency=2)
    create(alice, DOUBLE)
    run_id = start(alice, create(alice, CALLER % "double"), {"n": 20})
    assert wait_for_run(run_id).status == "succeeded"
    child = WorkflowRun.objects.get(parent_run_id=run_id)
    assert task(run_id, "call").output == {"run_id": child.id, "status": "succeeded",
                                           "outputs": {"calc": {"value": 40}}}
    assert task(run_id, "use").output == {"value": 41}
    shown = alice.get(f"/api/runs/{child.id}/").json()
    assert (shown["parent_run"], shown["trigger_kind"], shown["trigger"]["body"]) == (run_id, "child", {"n": 20})


def test_a_self_calling_workflow_stops_at_the_depth_limit_on_real_workers(alice, start_worker, settings):
    start_worker("w1", concurrency=2)
    workflow_id = create(alice, "name: loop\ntasks:\n  again: {action: flow.run_workflow, inputs: {workflow: loop}}\n")
    top = start(alice, workflow_id)
    assert wait_for_run(top, timeout=60).status == "failed"
    runs = list(WorkflowRun.objects.filter(workflow_id=workflow_id).order_by("depth"))
    limit = settings.AUTOMATION_MAX_DEPTH
    assert [r.depth for r in runs] == list(range(limit + 1))
    assert {r.status for r in runs} == {"failed"}
    assert f"runs may nest at most {limit} deep (AUTOMATION_MAX_DEPTH)" in task(runs[-1].id, "again").error


def test_cancelling_the_parent_through_the_api_cancels_the_child_on_real_workers(alice, start_worker):
    start_worker("w1")
    create(alice, "name: slow\ntasks:\n  nap: {action: flow.wait, inputs: {seconds: 600}}\n")
    parent = start(alice, create(alice, CALLER % "slow"), {"n": 1})
    child = wait_for(lambda: WorkflowRun.objects.filter(parent_run_id=parent, status="running").first(),
                     message="the child run to start")
    wait_for(lambda: task(child.id, "nap").status == "waiting", message="the child to wait")
    assert alice.post(f"/api/runs/{parent}/cancel/").status_code == 202
    assert wait_for_run(child.id).status == "cancelled"
    assert task(child.id, "nap").status == "cancelled"
    assert WorkflowRun.objects.get(id=parent).status == "cancelled"


def test_a_workflow_of_another_user_cannot_be_called_by_its_name(client, start_worker):
    start_worker("w1")
    bob_id = create(login(client, "bob"), DOUBLE)
    alice = login(client, "alice")
    run_id = start(alice, create(alice, CALLER % "double"), {"n": 1})
    assert wait_for_run(run_id).status == "failed"
    assert task(run_id, "call").error == "no workflow named 'double' of this owner"
    assert not WorkflowRun.objects.filter(workflow_id=bob_id).exists()


def test_on_failure_starts_the_alert_workflow_once_on_real_workers(alice, start_worker):
    start_worker("w1", concurrency=2)
    alert_id = create(alice, "name: alert\ntasks:\n  note: {action: transform.jinja,"
                             " inputs: {value: \"{{ trigger.body.failed_tasks[0].task_id }}\"}}\n")
    importer = create(alice, "name: import\non_failure: alert\ntasks:\n"
                             "  load: {action: flow.run_workflow, inputs: {workflow: missing}}\n")
    failed = start(alice, importer)
    assert wait_for_run(failed).status == "failed"
    handler = wait_for(lambda: WorkflowRun.objects.filter(workflow_id=alert_id).first(), message="the alert run")
    assert wait_for_run(handler.id).status == "succeeded"
    assert handler.trigger_kind == "failure_handler"
    assert handler.trigger["body"]["run"]["id"] == failed
    assert handler.trigger["body"]["failed_tasks"] == [
        {"task_id": "load", "error": "no workflow named 'missing' of this owner"}]
    assert task(handler.id, "note").output == {"value": "load"}
    assert WorkflowRun.objects.get(id=failed).failure_handled
    assert WorkflowRun.objects.filter(workflow_id=alert_id).count() == 1

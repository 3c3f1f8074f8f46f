"""Approve/Reject on the admin run page (POST, CSRF-protected, for operators who may change the run), with the
broker played by the test."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

FLOW = """
name: gated
tasks:
  approve: {action: flow.approval, inputs: {message: "Go ahead?"}}
  pause: {action: flow.wait, inputs: {seconds: 600}}
"""


def waiting_run(broker_double, owner) -> WorkflowRun:  # noqa: F811
    run = broker_double.step(services.run_create, workflow=workflow_save(source=FLOW, owner=owner))
    for message in [m for m in broker_double.take() if m.task != "resume_due"]:
        broker_double.deliver(message)
    broker_double.take("resume_due")
    for message in broker_double.take():
        broker_double.deliver(message)
    assert set(TaskRun.objects.filter(run=run).values_list("status", flat=True)) == {"waiting"}
    return run


def row(run: WorkflowRun, task_id: str) -> TaskRun:
    return TaskRun.objects.get(run=run, task_id=task_id)


def answer(client: Client, run: WorkflowRun, task_id: str, decision: str):
    return client.post(f"/admin/runs/workflowrun/{run.id}/approvals/{row(run, task_id).id}/", {"decision": decision})


def test_an_operator_rejects_from_the_run_page_and_the_task_fails_naming_them(alice, broker_double):  # noqa: F811
    run = waiting_run(broker_double, alice)
    User.objects.create_superuser("boss", password="pw")
    client = Client()
    client.login(username="boss", password="pw")
    page = client.get(f"/admin/runs/workflowrun/{run.id}/change/").content.decode()
    assert "Go ahead?" in page and 'value="approve"' in page
    assert page.count('name="decision" value="approve"') == 1  # the flow.wait task gets no buttons

    response = broker_double.step(answer, client, run, "approve", "reject")

    assert response.status_code == 302
    approve = row(run, "approve")
    assert (approve.status, approve.error, approve.output) == ("failed", "rejected", {"approved": False, "by": "boss"})


def test_the_buttons_need_a_csrf_token(alice, broker_double):  # noqa: F811
    run = waiting_run(broker_double, alice)
    User.objects.create_superuser("boss", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.login(username="boss", password="pw")

    assert answer(client, run, "approve", "approve").status_code == 403
    assert row(run, "approve").status == "waiting"


def test_staff_who_may_only_view_the_run_cannot_approve_it(alice, broker_double):  # noqa: F811
    run = waiting_run(broker_double, alice)
    viewer = User.objects.create_user("watcher", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_workflowrun"))
    client = Client()
    client.login(username="watcher", password="pw")

    assert 'value="approve"' not in client.get(f"/admin/runs/workflowrun/{run.id}/change/").content.decode()
    assert answer(client, run, "approve", "approve").status_code == 403
    assert row(run, "approve").status == "waiting"


def test_a_waiting_wait_cannot_be_approved_through_the_page(alice, broker_double):  # noqa: F811
    run = waiting_run(broker_double, alice)
    User.objects.create_superuser("boss", password="pw")
    client = Client()
    client.login(username="boss", password="pw")

    broker_double.step(answer, client, run, "pause", "approve")

    assert row(run, "pause").status == "waiting"

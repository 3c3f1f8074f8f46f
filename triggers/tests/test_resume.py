"""`POST /resume/<token>`: answering a waiting flow.approval task (SPEC §9), on the real database with the broker
played by the test (runs/tests/broker_double.py), through Django's HTTP client."""
from __future__ import annotations

import hashlib
import json

import pytest
from django.conf import settings

from runs import services
from runs.models import TaskRun, WorkflowRun
from runs.tests.broker_double import broker_double  # noqa: F401 - fixture
from runs.tests.operator_fixtures import alice  # noqa: F401 - fixture
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db

APPROVAL = """
name: expense
tasks:
  notify:
    action: transform.jinja
    inputs: {value: "Approve at {{ run.resume_urls.approve }}"}
  approve:
    action: flow.approval
    depends_on: [notify]
    inputs: {message: "Pay 40 EUR?", timeout: 600}
  pay:
    action: transform.jinja
    depends_on: [approve]
    inputs: {value: "paid, approved by {{ steps.approve.output.by }}"}
"""


def settle(broker_double) -> list:  # noqa: F811
    """Deliver every message but the wake-up hints, whose ETA lies ahead; returns those hints."""
    hints = []
    while broker_double.messages:
        message = broker_double.messages.pop(0)
        if message.task == "resume_due":
            hints.append(message)
        else:
            broker_double.deliver(message)
    return hints


def run_until_waiting(broker_double, owner, workflow=None) -> WorkflowRun:  # noqa: F811
    workflow = workflow or workflow_save(source=APPROVAL, owner=owner)
    run = broker_double.step(services.run_create, workflow=workflow)
    settle(broker_double)
    assert task(run, "approve").status == "waiting"
    return run


def task(run: WorkflowRun, task_id: str) -> TaskRun:
    return TaskRun.objects.get(run=run, task_id=task_id)


def url_path(run: WorkflowRun) -> str:
    text = task(run, "notify").output["value"]
    url = text.removeprefix("Approve at ")
    assert url.startswith(settings.PUBLIC_URL + "/resume/"), text
    return url.removeprefix(settings.PUBLIC_URL)


def post(client, path: str, body) -> object:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type="application/json")


def deliver_after(broker_double, call):  # noqa: F811
    """Run an HTTP call as the web process would (its on-commit sends recorded), then let the workers go on."""
    response = broker_double.step(call)
    settle(broker_double)
    return response


def test_an_earlier_task_reads_the_resume_url_and_approving_through_it_lets_the_run_carry_on(
        alice, broker_double, client):  # noqa: F811
    run = run_until_waiting(broker_double, alice)
    path = url_path(run)

    answer = deliver_after(broker_double, lambda: post(client, path, {"approved": True, "note": "ok by me"}))

    assert answer.status_code == 200
    assert answer.json() == {"run_id": run.id, "task_id": "approve", "status": "succeeded"}
    assert task(run, "approve").output == {"approved": True, "note": "ok by me", "by": "url"}
    assert task(run, "pay").output == {"value": "paid, approved by url"}
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"


def test_a_second_reply_to_the_same_url_answers_409_and_changes_nothing(alice, broker_double, client):  # noqa: F811
    run = run_until_waiting(broker_double, alice)
    path = url_path(run)
    deliver_after(broker_double, lambda: post(client, path, {"approved": True}))

    again = post(client, path, {"approved": False})

    assert again.status_code == 409
    assert again.json()["errors"][0]["path"] == "token"
    assert task(run, "approve").status == "succeeded"


def test_an_unknown_token_answers_404(alice, broker_double, client):  # noqa: F811
    run_until_waiting(broker_double, alice)

    answer = post(client, "/resume/" + "0" * 64, {"approved": True})

    assert answer.status_code == 404
    assert answer.json() == {"errors": [{"path": "token", "message": "unknown resume token"}]}


@pytest.mark.parametrize("body", ["[true]", "\"approved\"", "{not json", "", "{\"approve\": true}",
                                  "{\"approved\": \"yes\"}"])
def test_a_body_that_is_not_an_object_with_approved_answers_400_and_the_task_keeps_waiting(
        alice, broker_double, client, body):  # noqa: F811
    run = run_until_waiting(broker_double, alice)

    answer = post(client, url_path(run), body)

    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert error["path"] in ("body", "body.approved") and error["message"]
    assert task(run, "approve").status == "waiting"


def test_a_rejection_fails_the_task_and_the_run(alice, broker_double, client):  # noqa: F811
    run = run_until_waiting(broker_double, alice)

    answer = deliver_after(broker_double, lambda: post(client, url_path(run), {"approved": False, "why": "too much"}))

    assert answer.status_code == 200 and answer.json()["status"] == "failed"
    approve = task(run, "approve")
    assert (approve.status, approve.error) == ("failed", "rejected")
    assert approve.output == {"approved": False, "why": "too much", "by": "url"}
    assert task(run, "pay").status == "skipped"
    assert WorkflowRun.objects.get(id=run.id).status == "failed"


def test_an_approval_without_a_reply_in_time_fails_as_timed_out(alice, broker_double, client):  # noqa: F811
    workflow = workflow_save(source=APPROVAL, owner=alice)
    run = broker_double.step(services.run_create, workflow=workflow)
    [hint] = settle(broker_double)
    assert hint.args == (task(run, "approve").id,)

    broker_double.step(services.task_resume_due, task_run_id=hint.args[0])  # a hint that came early: no effect
    assert task(run, "approve").status == "waiting"
    later = broker_double.advance_clock(601)
    broker_double.step(services.sweep, now=later)
    settle(broker_double)

    approve = task(run, "approve")
    assert (approve.status, approve.error) == ("failed", "approval timed out")
    assert WorkflowRun.objects.get(id=run.id).status == "failed"
    assert post(client, url_path(run), {"approved": True}).status_code == 409


def test_the_token_is_stored_only_as_its_sha256_and_fits_only_its_own_task_run(alice, broker_double):  # noqa: F811
    first = run_until_waiting(broker_double, alice)
    second = run_until_waiting(broker_double, alice, first.workflow)
    token = url_path(first).removeprefix("/resume/")

    approve = task(first, "approve")
    assert approve.resume_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(token) >= 64
    # The task run that the token opens keeps only the hash (the notify task stored the URL it was asked to).
    stored = json.dumps([approve.output, approve.inputs, approve.logs, approve.error, approve.attempts])
    assert token not in stored
    assert url_path(second) != url_path(first)


def test_cancelling_the_run_cancels_the_waiting_approval(alice, broker_double, client):  # noqa: F811
    run = run_until_waiting(broker_double, alice)

    broker_double.step(services.run_cancel, run_id=run.id)

    assert task(run, "approve").status == "cancelled"
    assert post(client, url_path(run), {"approved": True}).status_code == 409


def test_only_post_is_accepted(alice, broker_double, client):  # noqa: F811
    run = run_until_waiting(broker_double, alice)

    answer = client.get(url_path(run))

    assert answer.status_code == 405 and answer["Allow"] == "POST"
    assert task(run, "approve").status == "waiting"

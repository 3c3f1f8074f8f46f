"""webhook.send: the exact bytes sent are signed as our own generic webhook preset verifies, every attempt of a
task run carries the same Idempotency-Key, and a real worker's webhook.send starts a run of another workflow
through its /hooks/<token> on a live server."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from automation.testing import wait_for_run
from connectors.base import ActionConfig, ActionContext, ActionError
from connectors.secrets import secret_set
from connectors.webhook.actions import WebhookSend
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save
from triggers.webhook_signatures import SignatureError, verify

SECRET = "hook-key-5b1e0c77"
PAYLOAD = {"order": 42, "customer": "Zoë", "items": [{"sku": "A-1", "qty": 2}], "note": None}


def context(*, task_id="notify", attempt=1, allowed=("127.0.0.0/8",)) -> ActionContext:
    return ActionContext(run_id=17, task_id=task_id, attempt=attempt, workflow="orders",
                         config=ActionConfig(http_allowed_networks=allowed))


def send(url: str, ctx: ActionContext | None = None, **inputs) -> dict:
    return WebhookSend().execute({"url": url, "payload": PAYLOAD, **inputs}, ctx or context())


def test_the_signature_covers_the_exact_bytes_sent_and_our_generic_preset_verifies_it(http_server):
    send(http_server.url("/json"), secret=SECRET)

    seen = http_server.seen[-1]
    headers = {name.lower(): value for name, value in seen.headers.items()}
    assert seen.method == "POST" and json.loads(seen.body) == PAYLOAD
    assert headers["content-type"] == "application/json"
    verify("generic", SECRET, headers, seen.body)  # raises SignatureError when it does not match
    with pytest.raises(SignatureError):
        verify("generic", "another secret", headers, seen.body)


def test_without_a_secret_the_request_is_not_signed(http_server):
    send(http_server.url("/json"))

    assert not any(name.lower() == "x-signature-256" for name in http_server.seen[-1].headers)


def test_every_attempt_of_a_task_run_sends_the_same_idempotency_key_and_other_tasks_another(http_server):
    first = send(http_server.url("/json"), context(attempt=1))
    retried = send(http_server.url("/json"), context(attempt=2))
    other = send(http_server.url("/json"), context(task_id="notify_again"))

    keys = [seen.headers["Idempotency-Key"] for seen in http_server.seen]
    assert keys[0] == keys[1] == first["idempotency_key"] == retried["idempotency_key"]
    assert keys[2] == other["idempotency_key"] != keys[0]


def test_a_receiver_answering_an_error_fails_the_task_retryable_only_for_temporary_errors(http_server):
    with pytest.raises(ActionError, match=r"/status/503 -> 503, expected 2xx: status 503 body") as unavailable:
        send(http_server.url("/status/503"))
    with pytest.raises(ActionError, match=r"-> 404") as missing:
        send(http_server.url("/status/404"))

    assert unavailable.value.retryable is True and unavailable.value.output["status"] == 503
    assert missing.value.retryable is False


def test_a_redirect_is_not_followed(http_server):
    target = http_server.url("/json")

    with pytest.raises(ActionError, match="answered with a redirect, which webhook.send does not follow"):
        send(http_server.url(f"/redirect?code=307&to={target}"))

    assert [seen.path for seen in http_server.seen] == [f"/redirect?code=307&to={target}"]


def test_a_loopback_receiver_is_refused_unless_its_network_is_allowed(http_server, connections):
    with pytest.raises(ActionError, match=r"^refused: 127\.0\.0\.1 is a loopback address"):
        send(http_server.url("/json"), context(allowed=()))

    assert connections == [] and http_server.seen == []


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_webhook_send_from_a_worker_to_our_own_hook_verifies_and_starts_the_run(live_server, start_worker):
    start_worker("w1", AUTOMATION_HTTP_ALLOW_PRIVATE="0", AUTOMATION_HTTP_ALLOWED_NETWORKS="127.0.0.0/8")
    alice = get_user_model().objects.create_user("alice", password="pw")
    secret_set(owner_id=alice.id, name="HOOK_KEY", value=SECRET)
    receiver = workflow_save(owner=alice, source={
        "name": "receive orders",
        "triggers": [{"type": "webhook", "secret": "{{ secrets.HOOK_KEY }}"}],
        "tasks": {"record": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.customer }}"}}},
    })
    hook_url = live_server.url.replace("localhost", "127.0.0.1") + receiver.webhook_path
    sender = workflow_save(owner=alice, source={
        "name": "send orders",
        "tasks": {"notify": {"action": "webhook.send", "inputs": {
            "url": hook_url, "payload": PAYLOAD, "secret": "{{ secrets.HOOK_KEY }}"}}},
    })
    client = Client()
    client.force_login(alice)

    sent = wait_for_run(client.post(f"/api/workflows/{sender.id}/run/").json()["run_id"], timeout=60)

    notify = TaskRun.objects.get(run=sent, task_id="notify")
    assert sent.status == "succeeded", notify.error
    assert notify.output["status"] == 202
    received = wait_for_run(notify.output["json"]["run_id"], timeout=60)
    assert received.workflow_id == receiver.id and received.status == "succeeded"
    assert received.trigger["body"] == PAYLOAD
    assert received.trigger["headers"]["idempotency-key"] == notify.output["idempotency_key"]
    assert TaskRun.objects.get(run=received, task_id="record").output == {"value": "Zoë"}
    assert SECRET not in json.dumps(notify.output) and SECRET not in notify.logs
    assert WorkflowRun.objects.filter(workflow=receiver).count() == 1


@pytest.mark.django_db(transaction=True)
def test_our_hook_refuses_a_wrong_secret_and_starts_a_repeated_attempt_once(live_server, broker):
    alice = get_user_model().objects.create_user("alice", password="pw")
    receiver = workflow_save(owner=alice, source={
        "name": "receive orders", "triggers": [{"type": "webhook", "secret": SECRET}],
        "tasks": {"record": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.order }}"}}},
    })
    hook_url = live_server.url.replace("localhost", "127.0.0.1") + receiver.webhook_path

    with pytest.raises(ActionError, match=r"-> 401, expected 2xx: .*does not match the body") as refused:
        send(hook_url, secret="not the key")
    first = send(hook_url, context(attempt=1), secret=SECRET)
    repeated = send(hook_url, context(attempt=2), secret=SECRET)

    assert refused.value.retryable is False
    assert (first["status"], repeated["status"]) == (202, 200)  # the gateway answers a repeat with the first run
    assert first["json"]["run_id"] == repeated["json"]["run_id"]
    assert list(WorkflowRun.objects.filter(workflow=receiver).values_list("id", flat=True)) == [
        first["json"]["run_id"]]

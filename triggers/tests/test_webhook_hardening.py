"""The webhook findings of the "Trust boundaries" review, each against a real request: chunked bodies under
gunicorn and under a server that cannot read them, refused deliveries kept small and pruned, secrets that
cannot be empty or templated, the trigger's methods, no webhook without a webhook trigger, hostile signature
bytes, and one rate limit across processes."""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from automation.testing import ROOT, free_port, stop_process_group, wait_for, worker_environment
from connectors.models import Secret
from runs.models import WorkflowRun
from runs.tasks import prune
from runs.tests.operator_fixtures import alice, bob  # noqa: F401
from triggers.models import WebhookDelivery
from triggers.tasks import prune_deliveries
from triggers.tests.test_webhooks import clear_rate_limits, fresh_rate_limits  # noqa: F401
from triggers.webhook_signatures import stripe_header
from triggers.webhooks import WebhookRejected, delivery_replay
from workflows.limits import MAX_REFUSED_BODY_BYTES, MAX_WEBHOOK_BODY_BYTES
from workflows.models import WorkflowVersion
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db
SECRET = "hardening-secret"
TASKS = {"greet": {"action": "transform.jinja", "inputs": {"value": "hi"}}}


def hooked(name: str, **webhook) -> dict:
    return {"name": name, "triggers": [{"type": "webhook", **webhook}], "tasks": TASKS}


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ServerProcess:
    """A web server on 127.0.0.1 in its own process group, owned by the fixture that started it."""

    def __init__(self, command: list[str], port: int):
        self.port = port
        self.process = subprocess.Popen(command, cwd=ROOT, env=worker_environment(LOG_LEVEL="WARNING"),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def wait_up(self) -> "ServerProcess":
        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.process.stderr.read().decode()}")
            try:
                return self.request("POST", "/hooks/not-a-token")[0] == 404
            except OSError:
                return False

        wait_for(answers, timeout=60, interval=0.2, message="the web server to answer")
        return self

    def request(self, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """One request on a fresh connection; an iterable body is sent with Transfer-Encoding: chunked."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            chunked = body is not None and not isinstance(body, bytes)
            connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stop(self) -> None:
        stop_process_group(self.process)


def _serve(command: list[str], port: int):
    server = ServerProcess(command, port)
    try:
        yield server.wait_up()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gunicorn(django_db_setup):
    """Production's server: two sync workers on the test database and the test Redis."""
    port = free_port()
    yield from _serve([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                       "--log-level", "warning", "automation.wsgi:application"], port)


@pytest.fixture(scope="module")
def runserver(django_db_setup):
    """Django's development server: its WSGI input is not de-chunked."""
    port = free_port()
    yield from _serve([sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks",
                       f"127.0.0.1:{port}"], port)


def chunks(data: bytes, size: int = 7000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


# --- 1. chunked bodies ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_read_whole_under_gunicorn(gunicorn):
    workflow = workflow_save(source=hooked("chunked"))
    payload = {"order": 42, "lines": ["x" * 100] * 500}
    body = json.dumps(payload).encode()
    status, _, answer = gunicorn.request("POST", workflow.webhook_path, body=chunks(body),
                                         headers={"Content-Type": "application/json"})
    assert status == 202, answer
    run = WorkflowRun.objects.get(id=json.loads(answer)["run_id"])
    assert run.trigger["body"] == payload
    assert bytes(WebhookDelivery.objects.get(run=run).body) == body


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_one_mebibyte_answers_413_and_stores_nothing_under_gunicorn(gunicorn):
    workflow = workflow_save(source=hooked("chunked-big"))
    status, _, _ = gunicorn.request("POST", workflow.webhook_path, body=chunks(b"x" * (MAX_WEBHOOK_BODY_BYTES + 1)),
                                    headers={"Content-Type": "text/plain"})
    assert status == 413
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()
    assert not WebhookDelivery.objects.filter(workflow=workflow).exists()


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_the_server_cannot_read_answers_411_and_is_never_accepted_empty(runserver):
    workflow = workflow_save(source=hooked("chunked-dev"))
    status, _, answer = runserver.request("POST", workflow.webhook_path, body=chunks(b'{"order": 1}'),
                                          headers={"Content-Type": "application/json"})
    assert status == 411, answer
    assert json.loads(answer)["errors"][0]["path"] == "headers.transfer-encoding"
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()


def test_a_chunked_body_through_the_django_handler_without_a_terminated_input_answers_411(client):
    workflow = workflow_save(source=hooked("chunked-handler"))
    response = client.post(workflow.webhook_path, data=b'{"a": 1}', content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"})
    assert response.status_code == 411
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()


# --- 2. refused deliveries --------------------------------------------------------------------------------------


def test_a_refused_delivery_keeps_its_headers_and_only_the_first_4_kib_of_its_body(client):
    workflow = workflow_save(source=hooked("refused", secret=SECRET))
    body = b"y" * MAX_WEBHOOK_BODY_BYTES
    started = time.monotonic()
    for _ in range(20):
        response = client.post(workflow.webhook_path, data=body, content_type="text/plain",
                               headers={"X-Signature-256": sign(b"other"), "X-Sender": "probe"})
        assert response.status_code == 401
    elapsed = time.monotonic() - started
    deliveries = list(WebhookDelivery.objects.filter(workflow=workflow))
    assert len(deliveries) == 20
    assert all(bytes(d.body) == body[:MAX_REFUSED_BODY_BYTES] and d.body_truncated for d in deliveries)
    assert deliveries[0].headers["x-sender"] == "probe" and deliveries[0].status_code == 401
    assert sum(len(d.body) for d in deliveries) == 20 * MAX_REFUSED_BODY_BYTES
    print(f"20 refused 1 MiB deliveries: {elapsed:.2f} s, {20 * MAX_REFUSED_BODY_BYTES} body bytes stored")


def test_a_refused_delivery_within_4_kib_is_kept_whole_and_replays(client):
    workflow = workflow_save(source=hooked("refused-small", secret=SECRET))
    client.post(workflow.webhook_path, data=b'{"order": 8}', content_type="application/json")
    delivery = WebhookDelivery.objects.get(workflow=workflow)
    assert not delivery.body_truncated
    assert delivery_replay(delivery.id).trigger["body"] == {"order": 8}


def test_a_truncated_refused_delivery_cannot_be_replayed(client):
    workflow = workflow_save(source=hooked("refused-cut", secret=SECRET))
    client.post(workflow.webhook_path, data=b"z" * (MAX_REFUSED_BODY_BYTES + 1), content_type="text/plain")
    with pytest.raises(WebhookRejected, match="cannot be replayed"):
        delivery_replay(WebhookDelivery.objects.get(workflow=workflow).id)
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()


def test_deliveries_are_pruned_with_the_workflows_run_history_retention(client):
    workflow = workflow_save(source=hooked("pruned", secret=SECRET))
    workflow.retention_days, workflow.retention_max_runs = 7, 3
    workflow.save(update_fields=["retention_days", "retention_max_runs"])

    def accepted(n: int) -> int:
        body = json.dumps({"n": n}).encode()
        response = client.post(workflow.webhook_path, data=body, content_type="application/json",
                               headers={"X-Signature-256": sign(body)})
        assert response.status_code == 202
        return WebhookDelivery.objects.get(run_id=response.json()["run_id"]).id

    old_accepted, kept_accepted = accepted(1), accepted(2)
    for _ in range(5):
        client.post(workflow.webhook_path, data=b"{}", content_type="application/json")
    refused = list(WebhookDelivery.objects.filter(workflow=workflow, status_code=401).order_by("id")
                   .values_list("id", flat=True))
    WebhookDelivery.objects.filter(id=old_accepted).update(received_at=timezone.now() - timedelta(days=8))
    prune()
    result = prune_deliveries()
    remaining = set(WebhookDelivery.objects.filter(workflow=workflow).values_list("id", flat=True))
    assert remaining == {kept_accepted, *refused[-3:]}
    assert result["deliveries"] == 3


def test_an_accepted_delivery_goes_with_its_pruned_run(client):
    workflow = workflow_save(source=hooked("pruned-run"))
    response = client.post(workflow.webhook_path, data=b"{}", content_type="application/json")
    WorkflowRun.objects.filter(id=response.json()["run_id"]).update(
        status="succeeded", finished_at=timezone.now() - timedelta(days=400))
    prune()
    prune_deliveries()
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()
    assert not WebhookDelivery.objects.filter(workflow=workflow).exists()


# --- 3. secrets -----------------------------------------------------------------------------------------------


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.mark.parametrize("secret", ["", "   ", None])
def test_an_empty_secret_is_a_validation_error_naming_the_place(alice, secret):
    response = api_for(alice).post("/api/workflows/", {"definition": hooked("empty", secret=secret)}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["path"] for e in errors] == ["triggers[0].secret"], errors


@pytest.mark.parametrize("secret", ["{{ trigger.body.key }}", "prefix-{{ secrets.KEY }}", "{{ secrets.KEY | upper }}",
                                    "{% for i in range(99999999) %}{% endfor %}"])
def test_a_secret_template_other_than_a_vault_reference_is_a_validation_error(alice, secret):
    response = api_for(alice).post("/api/workflows/", {"definition": hooked("templated", secret=secret)},
                                   format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["path"] == "triggers[0].secret" and "{{ secrets.NAME }}" in error["message"]


def test_a_vault_secret_verifies_with_the_workflow_owners_value_only(client, alice, bob):
    Secret.objects.create(owner=alice, name="HOOK_KEY", value="alice-key")
    Secret.objects.create(owner=bob, name="HOOK_KEY", value="bob-key")
    workflow = workflow_save(source=hooked("vaulted", secret="{{ secrets.HOOK_KEY }}"), owner=alice)
    body = b'{"ok": true}'

    def post(secret: str) -> int:
        return client.post(workflow.webhook_path, data=body, content_type="application/json",
                           headers={"X-Signature-256": sign(body, secret)}).status_code

    assert post("alice-key") == 202
    assert post("bob-key") == 401
    Secret.objects.filter(owner=alice).delete()
    missing = client.post(workflow.webhook_path, data=body, content_type="application/json",
                          headers={"X-Signature-256": sign(body, "alice-key")})
    assert missing.status_code == 401 and "not available" in missing.json()["errors"][0]["message"]


def test_a_stored_templated_secret_is_never_rendered_at_request_time(client):
    """A definition stored before the rule: the gateway refuses it at once instead of running its template."""
    workflow = workflow_save(source=hooked("legacy", secret=SECRET))
    looping = hooked("legacy", secret="{% for i in range(10**9) %}{% endfor %}")
    WorkflowVersion.objects.filter(id=workflow.current_version_id).update(definition=looping)
    started = time.monotonic()
    response = client.post(workflow.webhook_path, data=b"{}", content_type="application/json")
    assert time.monotonic() - started < 1
    assert response.status_code == 409
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()


# --- 4. methods -----------------------------------------------------------------------------------------------


def test_a_webhook_accepts_post_only_unless_its_methods_list_get(client):
    default = workflow_save(source=hooked("post-only"))
    refused = client.get(default.webhook_path + "?a=1")
    assert refused.status_code == 405 and refused["Allow"] == "POST"
    get_only = workflow_save(source=hooked("get-only", methods=["GET"]))
    assert client.get(get_only.webhook_path + "?a=1").status_code == 202
    posted = client.post(get_only.webhook_path, data=b"{}", content_type="application/json")
    assert posted.status_code == 405 and posted["Allow"] == "GET"
    assert WorkflowRun.objects.filter(workflow=get_only).count() == 1
    assert not WorkflowRun.objects.filter(workflow=default).exists()


def test_a_webhook_with_a_secret_and_get_in_its_methods_is_a_validation_error(alice):
    response = api_for(alice).post("/api/workflows/", {"definition": hooked("signed-get", secret=SECRET,
                                                                            methods=["POST", "GET"])}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "triggers[0].methods",
                                          "message": "a workflow with a secret accepts POST only: the signature "
                                                     "covers the raw body, and other methods carry none"}]


@pytest.mark.parametrize("methods, path", [("POST", "triggers[0].methods"), ([], "triggers[0].methods"),
                                           (["PUT"], "triggers[0].methods[0]")])
def test_methods_that_are_not_a_list_of_post_or_get_are_a_validation_error(alice, methods, path):
    response = api_for(alice).post("/api/workflows/", {"definition": hooked("bad-methods", methods=methods)},
                                   format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == path


# --- 5. no webhook without a webhook trigger --------------------------------------------------------------------


def test_a_workflow_without_a_webhook_trigger_answers_404_at_its_token(client):
    workflow = workflow_save(source=hooked("was-hooked"))
    assert client.post(workflow.webhook_path, data=b"{}", content_type="application/json").status_code == 202
    workflow = workflow_save(source={"name": "was-hooked", "triggers": [{"type": "manual"}], "tasks": TASKS},
                             workflow=workflow)
    for response in (client.post(workflow.webhook_path, data=b"{}", content_type="application/json"),
                     client.get(workflow.webhook_path), client.delete(workflow.webhook_path)):
        assert response.status_code == 404
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1
    assert WebhookDelivery.objects.filter(workflow=workflow).count() == 1


# --- 6. hostile signature bytes ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset, header, value", [
    ("generic", "X-Signature-256", "sha256=\u00e9" + "0" * 63),
    ("github", "X-Hub-Signature-256", "sha256=" + "\u00ff" * 64),
    ("stripe", "Stripe-Signature", "t={now},v1=\u00e9abc"),
])
def test_a_signature_header_with_non_ascii_bytes_answers_401_malformed(gunicorn, preset, header, value):
    workflow = workflow_save(source=hooked(f"bytes-{preset}", secret=SECRET, signature=preset))
    status, _, answer = gunicorn.request("POST", workflow.webhook_path, body=b"{}", headers={
        "Content-Type": "application/json", header: value.format(now=int(time.time()))})
    assert status == 401, answer
    assert "malformed signature" in json.loads(answer)["errors"][0]["message"]
    assert WebhookDelivery.objects.get(workflow=workflow).status_code == 401


def test_a_valid_stripe_signature_still_verifies(client):
    workflow = workflow_save(source=hooked("stripe-ok", secret=SECRET, signature="stripe"))
    response = client.post(workflow.webhook_path, data=b"{}", content_type="application/json",
                           headers={"Stripe-Signature": stripe_header(SECRET, b"{}", int(time.time()))})
    assert response.status_code == 202


# --- 7. one rate limit across processes -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_rate_limit_is_one_count_across_web_processes(client, gunicorn):
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs CELERY_BROKER_URL=redis://... (or CACHE_URL)")
    workflow = workflow_save(source=hooked("limited", rate_limit="3/h"))
    here = [client.post(workflow.webhook_path, data=b"{}", content_type="application/json").status_code
            for _ in range(2)]
    there = [gunicorn.request("POST", workflow.webhook_path, body=b"{}",
                              headers={"Content-Type": "application/json"})[0] for _ in range(3)]
    assert here == [202, 202]
    assert there == [202, 429, 429]
    assert client.post(workflow.webhook_path, data=b"{}", content_type="application/json").status_code == 429
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_large_rate_limit_is_taken_in_leases_and_never_exceeded_across_processes(client, gunicorn):
    """200/h is leased two requests at a time: the three processes (this one, gunicorn's two workers) never accept
    a 201st in the window, refuse early at most the one request each other process holds, and one that still
    holds a lease may accept after the others were refused."""
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs CELERY_BROKER_URL=redis://... (or CACHE_URL)")
    workflow = workflow_save(source=hooked("leased", rate_limit="200/h"))

    def here() -> int:
        return client.post(workflow.webhook_path, data=b"{}", content_type="application/json").status_code

    first_here = here()  # this process leases two and uses one
    there = [gunicorn.request("POST", workflow.webhook_path, body=b"{}",
                              headers={"Content-Type": "application/json"})[0] for _ in range(205)]
    later_here = [here(), here()]
    accepted = [first_here, *there, *later_here].count(202)
    assert first_here == 202 and later_here == [202, 429]
    assert 200 - 2 <= accepted <= 200 and set(there) == {202, 429}
    assert WorkflowRun.objects.filter(workflow=workflow).count() == accepted

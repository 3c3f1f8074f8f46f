"""The webhook gateway against real PostgreSQL (and Redis for the enqueue): every answer leaves the database
consistent: either a delivery with its run, or a refused delivery and no run, or nothing at all."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.models import TaskRun, WorkflowRun
from triggers.hooks import forget_rate_counts
from triggers.models import WebhookDelivery
from triggers.webhook_signatures import stripe_header
from triggers.webhooks import MAX_BODY_BYTES, WebhookRejected, delivery_replay
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db
SECRET = "s3cret-value"


def definition(name: str = "hooked", **webhook) -> dict:
    return {
        "name": name,
        "triggers": [{"type": "webhook", **webhook}],
        "tasks": {"greet": {"action": "transform.jinja", "inputs": {"value": "hi"}}},
    }


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def clear_rate_limits() -> None:
    """Forget every webhook rate count; with the Redis cache only those keys (clear() would flush the broker)."""
    forget_rate_counts()
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=cache.make_key("ff:hook-rate:*")):
        client.delete(key)


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    clear_rate_limits()
    yield
    clear_rate_limits()


@pytest.fixture
def workflow():
    return workflow_save(source=definition())


@pytest.fixture
def signed_workflow():
    return workflow_save(source=definition("signed", secret=SECRET))


def post_json(client, workflow, payload, **headers):
    return client.post(workflow.webhook_path, data=json.dumps(payload), content_type="application/json",
                       headers=headers)


def counts(workflow) -> tuple[int, int]:
    return WorkflowRun.objects.filter(workflow=workflow).count(), WebhookDelivery.objects.filter(
        workflow=workflow).count()



def test_an_accepted_delivery_and_its_started_run_are_written_in_one_statement(client, workflow):
    """runs.services.run_create_with_companion writes the run, the delivery and the task runs in one statement
    (outside a transaction, one on its own): the run starts without a start_run hop, its first task queued."""
    with CaptureQueriesContext(connection) as queries:
        response = post_json(client, workflow, {"n": 1})
    assert response.status_code == 202
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"].upper()]
    assert len(inserts) == 1 and inserts[0].startswith("WITH new_run AS (INSERT INTO")
    assert 'INSERT INTO "runs_taskrun"' in inserts[0]
    run = WorkflowRun.objects.get(id=response.json()["run_id"])
    assert (run.status, run.trigger_kind, run.reuse_tasks, run.parent_id) == ("running", "webhook", [], None)
    assert run.created_at is not None and run.started_at is not None
    assert run.workflow_version_id == workflow.current_version_id
    assert {t.status for t in run.task_runs.all()} == {"queued"}
    assert WebhookDelivery.objects.get(run=run).status_code == 202


def test_the_task_runs_a_delivery_starts_are_those_any_other_start_creates(client, django_capture_on_commit_callbacks):
    workflow = workflow_save(source={"name": "fan", "triggers": [{"type": "webhook"}], "tasks": {
        "root": {"run": "echo 100%", "queue": "slow"},
        "left": {"run": "echo 'l'", "depends_on": ["root"]},
        "right": {"run": "echo r", "depends_on": ["root"]},
        "join": {"run": "echo j", "depends_on": ["left", "right"], "trigger_rule": "one_success"},
    }})
    with django_capture_on_commit_callbacks() as sent:
        first = post_json(client, workflow, {"n": 1}).json()["run_id"]
        second = post_json(client, workflow, {"n": 2}).json()["run_id"]  # the statement's cached form
    assert len(sent) == 2
    for run_id in (first, second):
        run = WorkflowRun.objects.get(id=run_id)
        rows = {row[0]: row[1:] for row in run.task_runs.values_list(
            "task_id", "status", "queue", "upstream_left", "queued_at", "inputs", "attempts", "logs", "item_index")}
        assert rows == {
            "root": ("queued", "slow", 0, run.started_at, {}, [], "", None),
            "left": ("pending", "default", 1, None, {}, [], "", None),
            "right": ("pending", "default", 1, None, {}, [], "", None),
            "join": ("pending", "default", 2, None, {}, [], "", None),
        }


def test_a_json_post_stores_the_delivery_and_a_started_run_and_answers_202(client, workflow):
    response = post_json(client, workflow, {"user": {"name": "Ada"}}, X_Custom="yes")
    assert response.status_code == 202
    run = WorkflowRun.objects.get(id=response.json()["run_id"])
    assert run.status == "running" and run.trigger_kind == "webhook"
    assert run.trigger["body"] == {"user": {"name": "Ada"}}
    assert run.trigger["method"] == "POST" and run.trigger["kind"] == "webhook"
    assert run.trigger["headers"]["x-custom"] == "yes"
    delivery = WebhookDelivery.objects.get(workflow=workflow)
    assert delivery.run_id == run.id and delivery.status_code == 202
    assert bytes(delivery.body) == b'{"user": {"name": "Ada"}}'


def test_an_unknown_token_answers_404_json_and_stores_nothing(client, workflow):
    response = client.post("/hooks/not-a-token", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["errors"][0]["path"] == "token"
    assert counts(workflow) == (0, 0)


@pytest.fixture
def get_workflow():
    return workflow_save(source=definition("gettable", methods=["POST", "GET"]))


def test_a_get_with_a_query_string_becomes_the_trigger_query(client, get_workflow):
    workflow = get_workflow
    response = client.get(workflow.webhook_path + "?order=42&tag=a&tag=b")
    assert response.status_code == 202
    trigger = WorkflowRun.objects.get(id=response.json()["run_id"]).trigger
    assert trigger["query"] == {"order": "42", "tag": ["a", "b"]}
    assert trigger["method"] == "GET" and trigger["body"] == {}


def test_a_urlencoded_form_post_becomes_a_dict_body(client, workflow):
    response = client.post(workflow.webhook_path, data="name=Ada&role=admin&role=dev",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202
    body = WorkflowRun.objects.get(id=response.json()["run_id"]).trigger["body"]
    assert body == {"name": "Ada", "role": ["admin", "dev"]}


def test_a_multipart_form_post_keeps_fields_and_describes_files(client, workflow):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("note.txt", b"hello", content_type="text/plain")
    response = client.post(workflow.webhook_path, data={"name": "Ada", "file": upload})
    assert response.status_code == 202
    body = WorkflowRun.objects.get(id=response.json()["run_id"]).trigger["body"]
    assert body["name"] == "Ada"
    assert body["file"] == {"filename": "note.txt", "content_type": "text/plain", "size": 5}


def test_malformed_json_answers_400_with_the_body_path_and_starts_no_run(client, workflow):
    response = client.post(workflow.webhook_path, data='{"a": ', content_type="application/json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["path"] == "body" and "invalid JSON" in error["message"]
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 0
    refused = WebhookDelivery.objects.get(workflow=workflow)
    assert refused.status_code == 400 and refused.run_id is None


@pytest.mark.parametrize("raw", [
    b'{"a": "\\u0000"}', b'{"a": "\\ud800"}', b'{"a": NaN}', b'{"a": 1e400}', b"[" * 100000 + b"]" * 100000,
    b'{"a": ' + b"9" * 5000 + b"}", b"\xff\xfe\x00",
])
def test_hostile_json_bodies_answer_400_never_500(client, workflow, raw):
    response = client.post(workflow.webhook_path, data=raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 0


def test_a_nul_character_in_the_query_answers_400(client, get_workflow):
    workflow = get_workflow
    response = client.get(workflow.webhook_path + "?a=%00")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "query"
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 0


def test_a_body_over_one_mebibyte_answers_413_and_stores_nothing(client, workflow):
    response = client.post(workflow.webhook_path, data=b"x" * (MAX_BODY_BYTES + 1), content_type="text/plain")
    assert response.status_code == 413
    assert counts(workflow) == (0, 0)


def test_a_body_without_content_length_is_cut_at_the_limit_while_reading(rf, workflow):
    """As under ASGI with chunked transfer: no Content-Length, the stream itself is counted."""
    import io

    from triggers.hooks import receive

    request = rf.post(workflow.webhook_path, data=b"", content_type="text/plain")
    request.META.pop("CONTENT_LENGTH", None)
    request._stream = io.BytesIO(b"x" * (MAX_BODY_BYTES + 10))
    assert receive(request, workflow.webhook_token).status_code == 413
    assert counts(workflow) == (0, 0)


def test_a_body_of_exactly_one_mebibyte_is_accepted(client, workflow):
    response = client.post(workflow.webhook_path, data=b"x" * MAX_BODY_BYTES, content_type="text/plain")
    assert response.status_code == 202


def test_a_correct_hmac_signature_is_accepted(client, signed_workflow):
    body = json.dumps({"ok": True}).encode()
    response = client.post(signed_workflow.webhook_path, data=body, content_type="application/json",
                           headers={"X-Signature-256": sign(body)})
    assert response.status_code == 202


@pytest.mark.parametrize("header", [None, "sha256=" + "0" * 64, "md5=abc", "garbage", sign(b"other body")])
def test_a_missing_or_wrong_hmac_signature_answers_401_and_starts_no_run(client, signed_workflow, header):
    body = json.dumps({"ok": True}).encode()
    headers = {"X-Signature-256": header} if header else {}
    response = client.post(signed_workflow.webhook_path, data=body, content_type="application/json",
                           headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["path"] == "signature"
    assert SECRET not in response.content.decode()
    assert WorkflowRun.objects.filter(workflow=signed_workflow).count() == 0
    assert WebhookDelivery.objects.get(workflow=signed_workflow).status_code == 401


def test_the_github_preset_reads_x_hub_signature_256(client):
    workflow = workflow_save(source=definition("gh", secret=SECRET, signature="github"))
    body = b'{"action": "opened"}'
    ok = client.post(workflow.webhook_path, data=body, content_type="application/json",
                     headers={"X-Hub-Signature-256": sign(body), "X-GitHub-Event": "issues"})
    assert ok.status_code == 202
    assert WorkflowRun.objects.get(id=ok.json()["run_id"]).trigger["headers"]["x-github-event"] == "issues"
    generic_header = client.post(workflow.webhook_path, data=body, content_type="application/json",
                                 headers={"X-Signature-256": sign(body)})
    assert generic_header.status_code == 401


def test_the_stripe_preset_checks_the_signature_and_a_five_minute_tolerance(client):
    workflow = workflow_save(source=definition("stripe", secret=SECRET, signature="stripe"))
    body = b'{"type": "invoice.paid"}'
    now = int(time.time())

    def post(header):
        return client.post(workflow.webhook_path, data=body, content_type="application/json",
                           headers={"Stripe-Signature": header})

    assert post(stripe_header(SECRET, body, now)).status_code == 202
    stale = post(stripe_header(SECRET, body, now - 301))
    assert stale.status_code == 401 and "300 s" in stale.json()["errors"][0]["message"]
    assert post(stripe_header("wrong", body, now)).status_code == 401
    assert post(f"t={now}").status_code == 401
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1


def test_a_repeated_idempotency_key_answers_the_first_run_and_creates_nothing(client, workflow):
    first = post_json(client, workflow, {"n": 1}, Idempotency_Key="evt-1")
    again = post_json(client, workflow, {"n": 2}, Idempotency_Key="evt-1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["run_id"] == first.json()["run_id"]
    assert counts(workflow) == (1, 1)
    other = post_json(client, workflow, {"n": 3}, Idempotency_Key="evt-2")
    assert other.status_code == 202 and other.json()["run_id"] != first.json()["run_id"]


def test_an_idempotency_key_older_than_a_day_starts_a_new_run(client, workflow):
    from datetime import timedelta

    from django.utils import timezone

    first = post_json(client, workflow, {}, Idempotency_Key="evt-old")
    WebhookDelivery.objects.filter(workflow=workflow).update(received_at=timezone.now() - timedelta(hours=25))
    again = post_json(client, workflow, {}, Idempotency_Key="evt-old")
    assert again.status_code == 202 and again.json()["run_id"] != first.json()["run_id"]
    assert counts(workflow) == (2, 2)


def test_a_disabled_workflow_answers_409_and_starts_no_run(client):
    workflow = workflow_save(source=definition("off"), enabled=False)
    response = post_json(client, workflow, {})
    assert response.status_code == 409
    assert "disabled" in response.json()["errors"][0]["message"]
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 0


def test_the_rate_limit_answers_429_with_retry_after(client):
    workflow = workflow_save(source=definition("limited", rate_limit=2))
    assert [post_json(client, workflow, {}).status_code for _ in range(2)] == [202, 202]
    limited = post_json(client, workflow, {})
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert "rate limit of 2 requests per 60 s" in limited.json()["errors"][0]["message"]
    assert counts(workflow) == (2, 2)


def test_other_methods_answer_405_with_allow(client, workflow):
    response = client.delete(workflow.webhook_path)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_replaying_a_delivery_starts_a_new_run_with_the_same_trigger(client, workflow):
    first = post_json(client, workflow, {"order": 7}, X_Source="shop")
    delivery = WebhookDelivery.objects.get(run_id=first.json()["run_id"])
    replayed = delivery_replay(delivery.id)
    original = WorkflowRun.objects.get(id=first.json()["run_id"])
    assert replayed.id != original.id and replayed.status == "running"
    assert replayed.trigger == {**original.trigger, "replayed_from": delivery.id}


def test_replaying_a_delivery_refused_for_its_signature_runs_it(client, signed_workflow):
    post_json(client, signed_workflow, {"order": 8})
    refused = WebhookDelivery.objects.get(workflow=signed_workflow)
    run = delivery_replay(refused.id)
    assert run.trigger["body"] == {"order": 8}


def test_replaying_an_unparseable_delivery_is_refused(client, workflow):
    client.post(workflow.webhook_path, data="{", content_type="application/json")
    with pytest.raises(WebhookRejected):
        delivery_replay(WebhookDelivery.objects.get(workflow=workflow).id)
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_an_accepted_delivery_reaches_the_redis_queue(client, settings):
    import redis

    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://...")
    connection = redis.Redis.from_url(broker)
    connection.delete("default")
    workflow = workflow_save(source=definition("to-redis"))
    response = post_json(client, workflow, {"x": 1})
    assert response.status_code == 202
    messages = [json.loads(m) for m in connection.lrange("default", 0, -1)]
    assert len(messages) == 1
    assert messages[0]["headers"]["task"] == "runs.execute_task"  # the run started in the accept transaction
    first_task = TaskRun.objects.get(run_id=response.json()["run_id"])
    assert json.loads(__import__("base64").b64decode(messages[0]["body"]))[0] == [first_task.id]
    connection.delete("default")

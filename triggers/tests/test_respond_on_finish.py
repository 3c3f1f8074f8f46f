"""`respond: on_finish` (SPEC §9): the webhook's caller gets the run's answer, through real requests, a real
Celery worker, Redis wake-ups and, for the concurrency test, gunicorn with 4 sync workers."""
from __future__ import annotations

import http.client
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from automation.testing import free_port
from runs.models import TaskRun
from triggers.responses import safe_headers
from triggers.tests.test_webhook_hardening import _serve
from triggers.tests.test_webhooks import clear_rate_limits, fresh_rate_limits  # noqa: F401
from workflows.services import workflow_save

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def on_finish(name: str, tasks: dict, timeout: float = 15) -> dict:
    return {"name": name, "tasks": tasks,
            "triggers": [{"type": "webhook", "respond": "on_finish", "respond_timeout": timeout}]}


def post(client, workflow, payload: dict):
    started = time.monotonic()
    response = client.post(workflow.webhook_path, data=json.dumps(payload), content_type="application/json")
    return response, time.monotonic() - started


def test_a_flow_respond_task_answers_the_webhook_caller_with_its_status_headers_and_body(client, start_worker):
    start_worker()
    workflow = workflow_save(source=on_finish("respond-order", {
        "price": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.n * 3 }}"}},
        "answer": {"action": "flow.respond", "depends_on": ["price"], "inputs": {
            "status": 201, "body": {"order": "{{ trigger.body.n }}", "price": "{{ steps.price.output.value }}"},
            "headers": {"X-Order": "order {{ trigger.body.n }}", "Set-Cookie": "session=planted",
                        "Connection": "close", "Strict-Transport-Security": "max-age=1"}}},
    }))
    response, _ = post(client, workflow, {"n": 7})
    assert response.status_code == 201, TaskRun.objects.filter(task_id="answer").values("error").first()
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"order": 7, "price": 21}
    assert response["X-Order"] == "order 7"
    assert "Set-Cookie" not in response and not response.cookies
    assert "Strict-Transport-Security" not in response


def test_a_string_body_is_sent_as_text_and_a_run_without_flow_respond_answers_its_outputs(client, start_worker):
    start_worker()
    text = workflow_save(source=on_finish("respond-text", {
        "answer": {"action": "flow.respond", "inputs": {"body": "thanks {{ trigger.body.who }}"}}}))
    response, _ = post(client, text, {"who": "ann"})
    assert response.status_code == 200
    assert response.content == b"thanks ann"
    assert response["Content-Type"].startswith("text/plain")

    plain = workflow_save(source=on_finish("respond-outputs", {
        "greet": {"action": "transform.jinja", "inputs": {"value": "hi {{ trigger.body.who }}"}}}))
    response, _ = post(client, plain, {"who": "bo"})
    assert response.status_code == 200
    answer = json.loads(response.content)
    assert answer["status"] == "succeeded"
    assert answer["outputs"] == {"greet": {"value": "hi bo"}}
    assert isinstance(answer["run_id"], int)


def test_a_run_longer_than_respond_timeout_answers_202_with_its_run_id_on_time(client, start_worker):
    start_worker()
    workflow = workflow_save(source=on_finish("respond-slow", {"slow": {"run": "sleep 6"}}, timeout=1.5))
    response, elapsed = post(client, workflow, {})
    assert response.status_code == 202
    assert set(json.loads(response.content)) == {"run_id"}
    assert 1.4 <= elapsed < 2.5, elapsed


def test_respond_immediately_is_still_the_default_answer(client):
    workflow = workflow_save(source={"name": "respond-default", "triggers": [{"type": "webhook"}],
                                     "tasks": {"a": {"action": "transform.jinja", "inputs": {"value": 1}}}})
    started = time.monotonic()
    response = client.post(workflow.webhook_path, data="{}", content_type="application/json")
    assert response.status_code == 202
    assert time.monotonic() - started < 1


def test_headers_that_act_on_the_connection_or_the_site_are_never_sent():
    kept = safe_headers({"X-Ok": "1", "Content-Type": "text/csv", "Transfer-Encoding": "chunked",
                         "set-cookie": "a=b", "Bad Name": "x", "X-Split": "a\r\nSet-Cookie: b=c",
                         "Clear-Site-Data": "*", "X-Number": 5})
    assert kept == {"X-Ok": "1", "Content-Type": "text/csv", "X-Number": "5"}


@pytest.fixture
def gunicorn4(django_db_setup):
    port = free_port()
    yield from _serve([sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}",
                       "--log-level", "warning", "--backlog", "128", "automation.wsgi:application"], port)


def test_fifty_concurrent_on_finish_webhooks_on_four_gunicorn_workers_all_answer_within_their_timeout(
        gunicorn4, start_worker):
    start_worker(concurrency=2)
    timeout = 8
    workflow = workflow_save(source=on_finish("respond-many", {
        "double": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.i * 2 }}"}},
        "answer": {"action": "flow.respond", "depends_on": ["double"],
                   "inputs": {"body": {"i": "{{ trigger.body.i }}", "double": "{{ steps.double.output.value }}"}}},
    }, timeout=timeout))

    def call(i: int):
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", gunicorn4.port, timeout=120)
        try:
            connection.request("POST", workflow.webhook_path, body=json.dumps({"i": i}).encode(),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read()), time.monotonic() - started
        finally:
            connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(call, range(50)))
    total = time.monotonic() - started
    # Four workers each hold one caller at a time: the last caller may queue behind ceil(50/4) answers, each
    # bounded by the timeout. Every answer is the run's own (no 202: runs finish long before the timeout).
    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * 50, statuses
    assert [body for _, body, _ in answers] == [{"i": i, "double": i * 2} for i in range(50)]
    assert total < timeout * 2, f"50 answers took {total:.1f}s"
    print(f"50 on_finish webhooks on 4 workers: {total:.2f}s, slowest {max(a[2] for a in answers):.2f}s")

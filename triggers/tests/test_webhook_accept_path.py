"""The webhook accept path under faults, on production's server (gunicorn): a broker that accepts connections
and never answers costs a delivery at most a second (and the next ones nothing), the run is stored all the same;
a database connection the server dropped between two deliveries is replaced without the sender noticing; the web
path's own publish stores exactly the message Celery would."""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time

import pytest
from celery import current_app
from django.db import connection

from automation.testing import ROOT, WORKER_APPLICATION_NAME, free_port, wait_for, worker_environment
from runs.broker import publish
from runs.models import TaskRun, WorkflowRun
from triggers.models import WebhookDelivery
from triggers.tests.test_webhook_hardening import ServerProcess, sign
from triggers.tests.test_webhooks import fresh_rate_limits  # noqa: F401
from workflows.models import Workflow
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "hardening-secret"  # the one test_webhook_hardening.sign uses


def signed_workflow(name: str):
    return workflow_save(source={"name": name, "triggers": [{"type": "webhook", "secret": SECRET}],
                                 "tasks": {"greet": {"action": "transform.jinja", "inputs": {"value": "hi"}}}})


def post(server: ServerProcess, workflow, n: int) -> tuple[int, float]:
    body = b'{"n": %d}' % n
    started = time.monotonic()
    status, _, _ = server.request("POST", workflow.webhook_path, body=body,
                                  headers={"Content-Type": "application/json", "X-Signature-256": sign(body)})
    return status, time.monotonic() - started


class SilentBroker:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte (a frozen Redis)."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.socket.close()
        for held in self.accepted:
            held.close()


@pytest.fixture
def silent_broker():
    broker = SilentBroker()
    yield broker
    broker.close()


class Gunicorn(ServerProcess):
    """One sync worker on the test database, with `env` on top of the workers' environment."""

    def __init__(self, **env: str):
        self.port = free_port()
        command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{self.port}",
                   "--log-level", "warning", "automation.wsgi:application"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=worker_environment(LOG_LEVEL="WARNING", **env),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def gunicorn(**env: str) -> ServerProcess:
    return Gunicorn(**env).wait_up()


def test_a_frozen_broker_costs_a_delivery_at_most_one_second_and_the_run_is_stored(silent_broker):
    workflow = signed_workflow("frozen broker")
    # The cache (rate limit) lives on the same silent Redis, as it does by default.
    server = gunicorn(CELERY_BROKER_URL=f"redis://127.0.0.1:{silent_broker.port}/0")
    try:
        answers = [post(server, workflow, n) for n in range(5)]
    finally:
        server.stop()
    assert [status for status, _ in answers] == [202] * 5
    assert max(took for _, took in answers) < 1.0, answers
    # Only the first delivery waited for the broker; the others found it known to be down.
    assert sum(took for _, took in answers[1:]) < 0.5, answers
    # Stored and waiting for the sweeper: the run (queued, or started in the accept transaction) and no task
    # run further than queued, since no message reached a worker.
    runs = WorkflowRun.objects.filter(workflow=workflow)
    assert runs.count() == 5 and {run.status for run in runs} <= {"queued", "running"}
    assert not TaskRun.objects.filter(run__in=runs).exclude(status__in=["pending", "queued"]).exists()
    assert WebhookDelivery.objects.filter(workflow=workflow, status_code=202).count() == 5


def test_a_dropped_database_connection_is_replaced_without_failing_the_next_delivery(broker):
    workflow = signed_workflow("dropped connection")
    server = gunicorn()
    try:
        assert post(server, workflow, 1)[0] == 202
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND application_name = %s", [WORKER_APPLICATION_NAME])
            assert cursor.fetchone()[0] >= 1
        answers = [post(server, workflow, n)[0] for n in range(2, 5)]
    finally:
        server.stop()
    assert answers == [202, 202, 202]
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 4
    # Each accepted run's start reached the broker.
    wait_for(lambda: broker.llen("default") >= 4, timeout=5, message="four start messages in the queue")


def test_the_web_paths_one_lpush_stores_the_message_celery_itself_would(broker):
    def sent(publish) -> dict:
        publish()
        message = json.loads(broker.rpop("default"))
        task_id = message["headers"]["id"]
        assert message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id
        for ids, key in ((message["headers"], "id"), (message["headers"], "root_id"),
                         (message["properties"], "correlation_id"), (message["properties"], "delivery_tag")):
            ids[key] = "<id>"
        return message

    celerys = sent(lambda: current_app.send_task("runs.start_run", (42,)))
    ours = sent(lambda: publish("runs.start_run", (42,)))  # outside a worker: runs.broker's one LPUSH
    assert ours == celerys
    assert base64.b64decode(ours["body"]) == b'[[42], {}, {"callbacks": null, "errbacks": null, "chain": null, ' \
                                             b'"chord": null}]'


def test_the_webhook_shortcut_still_sits_behind_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    workflow = signed_workflow("behind https")
    body = b'{"n": 1}'
    plain = client.post(workflow.webhook_path, data=body, content_type="application/json",
                        headers={"X-Signature-256": sign(body)})
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    secure = client.post(workflow.webhook_path, data=body, content_type="application/json", secure=True,
                         headers={"X-Signature-256": sign(body)})
    assert secure.status_code == 202
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1


def test_a_path_below_a_webhook_token_is_not_a_webhook(client):
    workflow = signed_workflow("no sub-paths")
    body = b'{"n": 1}'
    response = client.post(workflow.webhook_path + "/extra", data=body, content_type="application/json",
                           headers={"X-Signature-256": sign(body)})
    assert response.status_code == 404
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()


def test_an_accepted_delivery_is_answered_with_a_content_length_not_chunked():
    workflow = signed_workflow("content length")
    server = gunicorn()
    try:
        body = b'{"n": 1}'
        status, headers, answer = server.request("POST", workflow.webhook_path, body=body, headers={
            "Content-Type": "application/json", "X-Signature-256": sign(body)})
    finally:
        server.stop()
    assert status == 202
    assert int(headers["Content-Length"]) == len(answer) and "Transfer-Encoding" not in headers
    assert json.loads(answer)["run_id"] == WorkflowRun.objects.get(workflow=workflow).id


def test_a_web_process_that_accepted_deliveries_answers_the_next_one_by_the_workflow_as_it_is_now():
    """A web process skips reading the workflow for a token it just accepted at, yet every change made elsewhere
    (here, in the test process) decides the very next delivery: disabled, re-enabled, a new secret, a new token."""
    workflow = signed_workflow("changed elsewhere")
    server = gunicorn()

    def delivered(n: int, secret: str = SECRET, path: str | None = None) -> int:
        body = b'{"n": %d}' % n
        return server.request("POST", path or workflow.webhook_path, body=body, headers={
            "Content-Type": "application/json", "X-Signature-256": sign(body, secret)})[0]

    try:
        assert [delivered(n) for n in range(3)] == [202, 202, 202]
        Workflow.objects.filter(id=workflow.id).update(enabled=False)
        disabled = delivered(3)
        Workflow.objects.filter(id=workflow.id).update(enabled=True)
        enabled_again = delivered(4)
        workflow_save(workflow=workflow, source={"name": "changed elsewhere",
                                                 "triggers": [{"type": "webhook", "secret": "rotated-secret"}],
                                                 "tasks": {"greet": {"action": "transform.jinja",
                                                                     "inputs": {"value": "hi"}}}})
        old_secret, new_secret = delivered(5), delivered(6, secret="rotated-secret")
        old_path = workflow.webhook_path
        Workflow.objects.filter(id=workflow.id).update(webhook_token="a-new-token-for-this-workflow")
        moved = delivered(7, secret="rotated-secret", path=old_path)
    finally:
        server.stop()
    assert (disabled, enabled_again, old_secret, new_secret, moved) == (409, 202, 401, 202, 404)
    runs = WorkflowRun.objects.filter(workflow=workflow)
    assert sorted(run.trigger["body"]["n"] for run in runs) == [0, 1, 2, 4, 6]
    assert runs.get(trigger__body__n=6).workflow_version_id == Workflow.objects.get(id=workflow.id).current_version_id
    assert sorted(WebhookDelivery.objects.filter(workflow=workflow).values_list("status_code", flat=True)) == \
        [202] * 5 + [401, 409]

"""Recording an attempt never repeats a side effect: an output the database cannot hold fails the task once."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model

from automation.testing import wait_for_run
from runs.executor import AttemptResult
from runs.models import TaskRun, WorkflowRun
from runs.services import task_finish
from runs.states import TaskStatus
from runs.tests.operator_fixtures import make_run, make_workflow
from workflows.services import spec_for_version


class NulBodyServer:
    """A local HTTP server whose answer has a NUL in its body; counts the requests it was sent."""

    def __init__(self):
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.hits += 1
                body = b"before\x00after"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_response_body_with_a_nul_fails_the_task_once_and_is_requested_once(client, start_worker):
    user = get_user_model().objects.create_user("operator", password="pw")
    client.force_login(user)
    with NulBodyServer() as server:
        definition = {"name": "nul body", "tasks": {"fetch": {
            "action": "http.request", "retries": 2, "retry_delay": 0.1,
            "inputs": {"method": "GET", "url": server.url}}}}
        created = client.post("/api/workflows/", {"definition": definition}, content_type="application/json")
        assert created.status_code == 201, created.json()
        start_worker("w1", AUTOMATION_HTTP_ALLOW_PRIVATE="1")
        started = client.post(f"/api/workflows/{created.json()['id']}/run/", {}, content_type="application/json")
        run = wait_for_run(started.json()["run_id"], timeout=60)
        fetch = TaskRun.objects.get(run=run, task_id="fetch")
        assert run.status == "failed"
        assert fetch.status == "failed" and fetch.attempt == 1
        assert fetch.error.startswith("output.body: contains a NUL character"), fetch.error
        assert fetch.output == {}
        assert server.hits == 1


@pytest.mark.django_db
def test_a_result_the_database_refuses_is_recorded_as_a_failed_attempt(alice):
    workflow = make_workflow(alice, "name: refused\ntasks:\n  a: {run: 'echo a'}\n")
    run = make_run(workflow, status="running", tasks={"a": "running"}, finished=False)
    task_run = TaskRun.objects.get(run=run, task_id="a")
    unstorable = AttemptResult(TaskStatus.SUCCEEDED, output={"body": "a\x00b"}, logs="fine")
    task_finish(task_run=task_run, result=unstorable, spec=spec_for_version(run.workflow_version_id))
    task_run.refresh_from_db()
    assert task_run.status == "failed"
    assert task_run.error.startswith("the result could not be stored:") and "\x00" not in task_run.error
    assert task_run.output == {} and task_run.attempts[-1]["status"] == "failed"
    assert WorkflowRun.objects.get(id=run.id).status == "failed"


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="pw-alice")

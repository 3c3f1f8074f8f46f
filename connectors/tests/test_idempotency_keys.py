"""One Idempotency-Key per logical call (SPEC §10), seen by a receiver on 127.0.0.1 that counts them: across a
retried attempt and across a real worker SIGKILLed in the middle of the call."""
from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from automation.testing import wait_for, wait_for_run
from runs.models import TaskRun, WorkflowRun
from runs.services import run_create
from runs.states import idempotency_key
from workflows.services import workflow_save

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class KeyReceiver:
    """Counts requests per Idempotency-Key. `/flaky` answers 503 to a key's first request; `/slow` holds a
    key's first request for 30 s (long enough to kill the worker in the middle)."""

    def __init__(self):
        self.keys: Counter = Counter()
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key")
                outer.keys[key] += 1
                first = outer.keys[key] == 1
                outer.arrived.set()
                if first and self.path == "/slow":
                    time.sleep(30)
                status = 503 if first and self.path == "/flaky" else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the killed worker's connection breaks; that is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = KeyReceiver()
    yield server
    server.close()


def calling(name: str, url: str, **task) -> dict:
    return {"name": name, "tasks": {"call": {"action": "http.request", "inputs": {"method": "POST", "url": url,
                                                                                  "json": {"a": 1}}, **task}}}


def test_a_retried_attempt_sends_the_same_idempotency_key(receiver, start_worker):
    start_worker()
    workflow = workflow_save(source=calling("keys-retried", receiver.url + "/flaky", retries=2, retry_delay=0.2))
    run = run_create(workflow=workflow)
    wait_for_run(run.id, timeout=60)
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"
    assert TaskRun.objects.get(run=run).attempt == 2
    assert receiver.keys == Counter({idempotency_key(run.id, "call"): 2})


def test_a_worker_killed_mid_call_is_retried_under_the_same_idempotency_key(receiver, start_worker):
    first = start_worker("w1")
    workflow = workflow_save(source=calling("keys-killed", receiver.url + "/slow", timeout=60))
    run = run_create(workflow=workflow)
    wait_for(receiver.arrived.is_set, timeout=30, message="the call to arrive")
    first.kill()
    start_worker("w2")
    wait_for_run(run.id, timeout=60)
    assert WorkflowRun.objects.get(id=run.id).status == "succeeded"
    assert receiver.keys == Counter({idempotency_key(run.id, "call"): 2})


def test_a_header_set_in_the_inputs_wins_and_idempotency_key_false_sends_none(receiver, start_worker):
    start_worker()
    mine = workflow_save(source={"name": "keys-own", "tasks": {"call": {"action": "http.request", "inputs": {
        "method": "POST", "url": receiver.url + "/ok", "headers": {"idempotency-key": "order-7"}}}}})
    off = workflow_save(source={"name": "keys-off", "tasks": {"call": {"action": "http.request", "inputs": {
        "method": "POST", "url": receiver.url + "/ok", "idempotency_key": False}}}})
    for workflow in (mine, off):
        run = run_create(workflow=workflow)
        wait_for_run(run.id, timeout=60)
        assert WorkflowRun.objects.get(id=run.id).status == "succeeded"
    assert receiver.keys == Counter({"order-7": 1, None: 1})

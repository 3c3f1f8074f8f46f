"""Poll triggers against a real local HTTP server serving a growing list: only never-seen items start runs,
across a "restart" of every in-process cache."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runs.models import WorkflowRun
from triggers.models import PollSeenKey, TriggerState
from triggers.polling import KEEP_KEYS, poll_fire
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db


class Feed:
    def __init__(self):
        self.items: list = []
        self.status = 200


@pytest.fixture
def feed():
    state = Feed()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps({"items": state.items}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/items"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def private_http_allowed(settings):
    settings.AUTOMATION_HTTP_ALLOW_PRIVATE = True


def polled_workflow(url: str, name: str = "polled", **overrides):
    trigger = {"type": "poll", "every": 60, "action": "http.request", "inputs": {"url": url},
               "items": "{{ output.json['items'] }}", "key": "{{ item.id }}", **overrides}
    return workflow_save(source={"name": name, "triggers": [trigger],
                                 "tasks": {"a": {"action": "transform.jinja", "inputs": {"value": 1}}}})


def restart() -> None:
    """What a process restart forgets: every per-process cache on the poll path."""
    from connectors.registry import default_registry
    from workflows.services import spec_for_version

    spec_for_version.cache_clear()
    default_registry.cache_clear()


def started_items(workflow) -> list:
    return [run.trigger["item"]["id"] for run in WorkflowRun.objects.filter(workflow=workflow).order_by("id")]


def test_the_first_poll_only_records_keys_and_later_polls_start_runs_for_new_items_only(feed):
    feed.items = [{"id": 1}, {"id": 2}]
    workflow = polled_workflow(feed.url)
    first = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert first.primed and first.run_ids == [] and first.error == ""
    assert PollSeenKey.objects.filter(workflow=workflow).count() == 2

    feed.items = [{"id": 1}, {"id": 2}, {"id": 3}]
    second = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert not second.primed and len(second.run_ids) == 1
    assert started_items(workflow) == [3]
    run = WorkflowRun.objects.get(id=second.run_ids[0])
    assert run.trigger_kind == "poll" and run.trigger["kind"] == "poll" and run.trigger["item"] == {"id": 3}

    restart()
    feed.items = [{"id": 4}, {"id": 1}, {"id": 2}, {"id": 3}, {"id": 5}]
    third = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert len(third.run_ids) == 2
    assert started_items(workflow) == [3, 4, 5]

    restart()
    assert poll_fire(workflow_id=workflow.id, trigger_index=0).run_ids == []
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 3


def test_a_failing_source_starts_nothing_and_does_not_prime(feed):
    feed.status = 500
    workflow = polled_workflow(feed.url)
    outcome = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert outcome.error and outcome.run_ids == []
    assert TriggerState.objects.get(workflow=workflow).last_fired_at is None
    assert not PollSeenKey.objects.filter(workflow=workflow).exists()


def test_items_that_do_not_render_to_a_list_are_reported(feed):
    feed.items = [{"id": 1}]
    workflow = polled_workflow(feed.url, items="{{ output.json['items'][0]['id'] }}")
    outcome = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert "must render to a list" in outcome.error


def test_without_a_key_template_the_whole_item_is_the_key(feed):
    feed.items = [{"name": "a"}]
    workflow = polled_workflow(feed.url, key=None)
    poll_fire(workflow_id=workflow.id, trigger_index=0)
    feed.items = [{"name": "a"}, {"name": "b"}, {"name": "b"}]
    outcome = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert len(outcome.run_ids) == 1


def test_a_concurrent_poll_never_double_starts_an_item(feed):
    """Two pollers that both believe an item is new: the key's unique constraint lets one start it."""
    from triggers import polling

    feed.items = [{"id": 1}]
    workflow = polled_workflow(feed.url)
    poll_fire(workflow_id=workflow.id, trigger_index=0)
    feed.items = [{"id": 1}, {"id": 2}]
    trigger_key = TriggerState.objects.get(workflow=workflow).trigger_key
    keyed = {"2": {"id": 2}}
    from django.utils import timezone

    first = polling._record(workflow, trigger_key, keyed, timezone.now())
    second = polling._record(workflow, trigger_key, keyed, timezone.now())
    assert len(first.run_ids) == 1 and second.run_ids == []


def test_seen_keys_are_pruned_to_the_most_recently_seen(feed, monkeypatch):
    from triggers import polling

    monkeypatch.setattr(polling, "KEEP_KEYS", 3)
    feed.items = [{"id": n} for n in range(3)]
    workflow = polled_workflow(feed.url)
    poll_fire(workflow_id=workflow.id, trigger_index=0)
    feed.items = [{"id": n} for n in range(1, 4)]  # 0 dropped by the source, 3 new
    poll_fire(workflow_id=workflow.id, trigger_index=0)
    keys = set(PollSeenKey.objects.filter(workflow=workflow).values_list("key", flat=True))
    assert keys == {"1", "2", "3"}
    assert KEEP_KEYS == 10_000


def test_changing_the_source_primes_the_trigger_again(feed):
    feed.items = [{"id": 1}]
    workflow = polled_workflow(feed.url)
    poll_fire(workflow_id=workflow.id, trigger_index=0)
    trigger = workflow.definition["triggers"][0]
    changed = {**workflow.definition, "triggers": [{**trigger, "inputs": {"url": feed.url + "?v=2"}}]}
    workflow = workflow_save(source=changed, workflow=workflow)
    feed.items = [{"id": 1}, {"id": 2}]
    outcome = poll_fire(workflow_id=workflow.id, trigger_index=0)
    assert outcome.primed and outcome.run_ids == []
    assert PollSeenKey.objects.filter(workflow=workflow).count() == 2

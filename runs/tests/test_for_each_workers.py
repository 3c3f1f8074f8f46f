"""for_each on real Celery workers (PostgreSQL + Redis), through the HTTP API and the admin run page."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from automation.testing import wait_for, wait_for_run
from runs.models import TaskRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api(client):
    user = get_user_model().objects.create_superuser("operator", password="pw")
    client.force_login(user)
    return client


def create_and_run(api, definition: dict, body=None) -> int:
    created = api.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert created.status_code == 201, created.json()
    started = api.post(f"/api/workflows/{created.json()['id']}/run/", body or {}, content_type="application/json")
    assert started.status_code == 202
    return started.json()["run_id"]


def peak_overlap(rows) -> int:
    moments = sorted([(r.started_at, 1) for r in rows] + [(r.finished_at, -1) for r in rows])
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


def test_seven_items_with_max_parallel_three_never_run_more_than_three_at_once(api, start_worker):
    start_worker("w1", concurrency=2, AUTOMATION_ALLOW_SHELL="1")
    start_worker("w2", concurrency=2, AUTOMATION_ALLOW_SHELL="1")
    run_id = create_and_run(api, {"name": "seven", "tasks": {
        "notify": {"run": "sleep 0.4; echo {{ item }}", "for_each": "{{ trigger.body.people }}", "max_parallel": 3},
        "after": {"action": "transform.jinja", "depends_on": ["notify"],
                  "inputs": {"value": "{{ steps.notify.output | map(attribute='stdout') | join('') }}"}},
    }}, {"people": ["a", "b", "c", "d", "e", "f", "g"]})
    assert wait_for(lambda: api.get(f"/api/runs/?status=waiting").json()["results"], timeout=30,
                    message="the run to be listed as waiting")[0]["id"] == run_id
    run = wait_for_run(run_id, timeout=60)
    assert run.status == "succeeded"
    items = list(TaskRun.objects.filter(run_id=run_id, item_index__isnull=False).order_by("item_index"))
    assert len(items) == 7 and peak_overlap(items) == 3
    after = TaskRun.objects.get(run_id=run_id, task_id="after")
    assert after.output == {"value": "a\nb\nc\nd\ne\nf\ng\n"}

    tasks = api.get(f"/api/runs/{run_id}/").json()["tasks"]
    rows = [(t["task_id"], t["item_index"]) for t in tasks]
    own = rows.index(("notify", None))
    assert rows[own:own + 8] == [("notify", None), *[("notify", i) for i in range(7)]]
    assert len(rows) == 9 and ("after", None) in rows
    assert api.get(f"/api/runs/?status=waiting").json()["results"] == []
    page = api.get(f"/admin/runs/workflowrun/{run_id}/change/").content.decode()
    assert "notify[3]" in page
    logs = api.get(f"/api/runs/{run_id}/tasks/notify[3]/logs/?format=txt")
    assert logs.status_code == 200 and logs.content.decode().strip() == "d"


def test_a_failing_item_fails_the_task_with_its_index_on_workers(api, start_worker):
    start_worker("w1", concurrency=2, AUTOMATION_ALLOW_SHELL="1")
    run_id = create_and_run(api, {"name": "one fails", "tasks": {
        "check": {"run": "test {{ item }} -ne 3", "for_each": "{{ [1, 2, 3, 4] }}"},
        "empty": {"action": "transform.jinja", "for_each": "{{ [] }}", "inputs": {"value": "{{ item }}"}},
        "not_a_list": {"action": "transform.jinja", "for_each": "{{ 'abc' }}", "inputs": {"value": "{{ item }}"}},
    }})
    run = wait_for_run(run_id, timeout=60)
    assert run.status == "failed"
    rows = {t.task_id: t for t in TaskRun.objects.filter(run_id=run_id, item_index__isnull=True)}
    assert rows["check"].status == "failed" and rows["check"].error.startswith("item 2 failed: exit code 1")
    assert [t.status for t in TaskRun.objects.filter(run_id=run_id, task_id="check", item_index__isnull=False)
            .order_by("item_index")] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert rows["empty"].status == "skipped"
    assert rows["not_a_list"].status == "failed" and "`{{ 'abc' }}` gave str 'abc', not a list" in rows["not_a_list"].error


def test_a_thousand_no_op_items_complete_on_two_workers(api, start_worker):
    start_worker("w1")
    start_worker("w2")
    started = time.monotonic()
    run_id = create_and_run(api, {"name": "thousand", "tasks": {
        "each": {"action": "transform.jinja", "for_each": "{{ range(1000) | list }}", "max_parallel": 20,
                 "inputs": {"value": "{{ item }}"}}}})
    run = wait_for_run(run_id, timeout=180)
    elapsed = time.monotonic() - started
    assert run.status == "succeeded"
    output = TaskRun.objects.get(run_id=run_id, task_id="each", item_index__isnull=True).output
    assert [o["value"] for o in output] == list(range(1000))
    print(f"1,000 items in {elapsed:.1f}s ({1000 / elapsed:.0f} items/s)")

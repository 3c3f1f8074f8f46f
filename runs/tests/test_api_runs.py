"""The runs API: ownership, filters, cursor pagination, detail, logs, retry, cancel; and a schema walk."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone
from rest_framework.test import APIClient

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import alice, bob, make_run, make_workflow, staff, viewer  # noqa: F401

pytestmark = pytest.mark.django_db
TASKS_FAILED = {"task_A": "succeeded", "task_B": "failed", "task_D": "succeeded", "task_E": "skipped"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [run["id"] for run in response.json()["results"]]


def test_runs_are_filtered_by_workflow_status_and_date(alice):
    first, second = make_workflow(alice, name="one"), make_workflow(alice, name="two")
    old = make_run(first, "failed", created_at=timezone.now() - timedelta(days=3))
    failed = make_run(first, "failed")
    ok = make_run(second, "succeeded")
    client = client_for(alice)
    assert ids(client.get("/api/runs/")) == [ok.id, failed.id, old.id]
    assert ids(client.get("/api/runs/", {"workflow": first.id})) == [failed.id, old.id]
    assert ids(client.get("/api/runs/", {"status": "failed", "workflow": first.id})) == [failed.id, old.id]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(client.get("/api/runs/", {"created_after": since})) == [ok.id, failed.id]
    assert ids(client.get("/api/runs/", {"created_before": since})) == [old.id]
    assert ids(client.get("/api/runs/", {"created_after": timezone.now().date().isoformat()})) == [ok.id, failed.id]


def test_invalid_filters_answer_path_named_errors(alice):
    client = client_for(alice)
    response = client.get("/api/runs/", {"status": "exploded", "created_after": "yesterday"})
    assert response.status_code == 400
    paths = {error["path"] for error in response.json()["errors"]}
    assert paths == {"status", "created_after"}
    assert client.get("/api/runs/", {"workflow": "abc"}).status_code == 400


def test_the_runs_list_pages_by_cursor_newest_first(alice):
    workflow = make_workflow(alice)
    made = [make_run(workflow).id for _ in range(7)]
    client = client_for(alice)
    seen, url, pages = [], "/api/runs/?page_size=3", 0
    while url:
        body = client.get(url).json()
        assert set(body) == {"next", "previous", "results"}
        seen += [run["id"] for run in body["results"]]
        url, pages = body["next"], pages + 1
    assert seen == sorted(made, reverse=True) and pages == 3
    assert "cursor=" in client.get("/api/runs/?page_size=3").json()["next"]


def test_paging_before_a_date_lists_every_older_run_once_newest_first(alice):
    workflow = make_workflow(alice)
    now = timezone.now()
    older = [make_run(workflow, created_at=now - timedelta(days=days)).id for days in (9, 8, 7, 6, 5)]
    make_run(workflow)
    client = client_for(alice)
    seen, url = [], f"/api/runs/?page_size=2&created_before={(now - timedelta(days=1)).date().isoformat()}"
    while url:
        body = client.get(url).json()
        seen += [run["id"] for run in body["results"]]
        url = body["next"]
    assert seen == list(reversed(older))


def test_page_size_is_bounded(alice):
    from runs.api import RunCursorPagination

    workflow = make_workflow(alice)
    for _ in range(3):
        make_run(workflow)
    assert RunCursorPagination.max_page_size <= 500
    assert len(client_for(alice).get("/api/runs/", {"page_size": 100000}).json()["results"]) == 3
    assert client_for(alice).get("/api/runs/", {"cursor": "garbage"}).status_code == 404


def test_a_user_sees_only_runs_of_their_workflows(alice, bob):
    mine = make_run(make_workflow(alice, name="mine"), "failed", TASKS_FAILED)
    theirs = make_run(make_workflow(bob, name="theirs"), "failed", TASKS_FAILED)
    client = client_for(alice)
    assert ids(client.get("/api/runs/")) == [mine.id]
    for url in (f"/api/runs/{theirs.id}/", f"/api/runs/{theirs.id}/tasks/task_A/logs/"):
        assert client.get(url).status_code == 404
    for verb in ("retry", "cancel"):
        assert client.post(f"/api/runs/{theirs.id}/{verb}/").status_code == 404
    assert client.post(f"/api/runs/{theirs.id}/rerun/", {"from_task": "task_B"}, format="json").status_code == 404
    assert WorkflowRun.objects.count() == 2


def test_the_run_detail_carries_task_runs_with_output_and_logs(alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    body = client_for(alice).get(f"/api/runs/{run.id}/").json()
    assert body["status"] == "failed"
    tasks = {task["task_id"]: task for task in body["tasks"]}
    assert tasks["task_A"]["output"] == {"stdout": "task_A done\n", "exit_code": 0}
    assert tasks["task_B"]["error"] == "exit code 3" and tasks["task_B"]["logs"] == "log line of task_B\n"


def test_task_logs_answer_json_or_plain_text(alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    client = client_for(alice)
    url = f"/api/runs/{run.id}/tasks/task_B/logs/"
    assert client.get(url).json() == {"task_id": "task_B", "status": "failed", "attempt": 1,
                                      "logs": "log line of task_B\n"}
    text = client.get(url, HTTP_ACCEPT="text/plain")
    assert text.status_code == 200 and text["Content-Type"].startswith("text/plain")
    assert text.content == b"log line of task_B\n"
    assert client.get(f"/api/runs/{run.id}/tasks/nope/logs/").status_code == 404


def test_retry_starts_a_new_run_that_reuses_succeeded_tasks(alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    response = client_for(alice).post(f"/api/runs/{run.id}/retry/")
    assert response.status_code == 202
    retry = WorkflowRun.objects.get(id=response.json()["run_id"])
    assert retry.parent_id == run.id and sorted(retry.reuse_tasks) == ["task_A", "task_D"]


def test_retrying_a_succeeded_run_is_refused_with_a_conflict_and_a_message(alice):
    run = make_run(make_workflow(alice), "succeeded", {"task_A": "succeeded"})
    response = client_for(alice).post(f"/api/runs/{run.id}/retry/")
    assert response.status_code == 409
    assert "only failed or cancelled runs can be retried" in response.json()["errors"][0]["message"]


def test_cancel_stops_a_running_run(alice):
    run = make_run(make_workflow(alice), "running", {"task_A": "running", "task_B": "pending"})
    response = client_for(alice).post(f"/api/runs/{run.id}/cancel/")
    assert response.status_code == 202 and response.json() == {"run_id": run.id}
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.task_runs.get(task_id="task_B").status == "cancelled"


def test_rerun_with_an_unknown_task_is_a_400(alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    response = client_for(alice).post(f"/api/runs/{run.id}/rerun/", {"from_task": "nope"}, format="json")
    assert response.status_code == 400 and "unknown task 'nope'" in response.json()["errors"][0]["message"]


def test_viewers_cannot_retry_or_cancel(viewer):
    run = make_run(make_workflow(viewer), "failed", TASKS_FAILED)
    client = client_for(viewer)
    assert client.get(f"/api/runs/{run.id}/").status_code == 200
    assert client.post(f"/api/runs/{run.id}/retry/").status_code == 403
    assert client.post(f"/api/runs/{run.id}/cancel/").status_code == 403


def test_every_get_endpoint_of_the_openapi_schema_answers_without_a_server_error(staff, alice):
    """A schemathesis-style walk: each GET path of /api/schema/, with real ids and odd query values."""
    workflow = make_workflow(alice)
    run = make_run(workflow, "failed", TASKS_FAILED)
    client = client_for(staff)
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    values = {"id": str(run.id), "task_id": "task_B"}
    odd = {"integer": ["0", "-1", "99999999999", "x"], "string": ["", "ünï", "' OR 1=1 --"], "boolean": ["maybe"]}
    checked = 0
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        ids_for_path = dict(values, id=str(workflow.id) if path.startswith("/api/workflows/") else str(run.id))
        concrete = re.sub(r"\{(\w+)\}", lambda m: ids_for_path.get(m.group(1), "1"), path)
        for anonymous in (False, True):
            answer = (APIClient() if anonymous else client).get(concrete)
            assert answer.status_code < 500, (concrete, answer.status_code)
        for parameter in operations["get"].get("parameters", []):
            if parameter["in"] != "query":
                continue
            kind = parameter.get("schema", {}).get("type", "string")
            for value in odd.get(kind, odd["string"]) + parameter.get("schema", {}).get("enum", [])[:1]:
                answer = client.get(concrete, {parameter["name"]: value})
                assert answer.status_code < 500, (concrete, parameter["name"], value, answer.status_code)
        for wrong_id in ("0", "abc"):
            if "{id}" in path:
                answer = client.get(re.sub(r"\{id\}", wrong_id, path).replace("{task_id}", "x"))
                assert answer.status_code in (400, 404), (path, wrong_id, answer.status_code)
        checked += 1
    assert checked >= 6

"""The run list on a long history: counts, deep pages, sorting, search, and the dashboard's queue depths."""
from __future__ import annotations

import pytest
import redis
from django.db import connection
from django.urls import reverse

from runs import admin as runs_admin
from runs.admin_dashboard import dashboard
from runs.models import TaskRun, WorkflowRun
from runs.tests.operator_fixtures import alice, make_run, make_workflow, staff  # noqa: F401

pytestmark = pytest.mark.django_db
REDIS_DB = "redis://127.0.0.1:6379/7"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def many_runs(workflow, count: int, **fields) -> list[int]:
    """`count` run rows at once, oldest first; their ids."""
    WorkflowRun.objects.bulk_create(WorkflowRun(workflow=workflow, workflow_version=workflow.current_version,
                                                **fields) for _ in range(count))
    return list(WorkflowRun.objects.filter(workflow=workflow).order_by("id").values_list("id", flat=True))


def listed(response) -> list[int]:
    assert response.status_code == 200
    return [run.id for run in response.context["cl"].result_list]


def test_a_long_list_shows_an_estimated_count_and_a_deep_page_lists_the_same_runs(admin_client, alice, monkeypatch):
    monkeypatch.setattr(runs_admin, "EXACT_COUNT_UP_TO", 20)
    monkeypatch.setattr(runs_admin, "DEFERRED_JOIN_FROM", 50)
    workflow = make_workflow(alice)
    ids = many_runs(workflow, 160, status="succeeded")
    failed = make_run(workflow, "failed")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_workflowrun")
    url = reverse("admin:runs_workflowrun_changelist")
    first = admin_client.get(url)
    assert 100 <= first.context["cl"].result_count <= 400  # the planner's figure, not a count of every row
    assert listed(first) == [failed.id, *reversed(ids)][:50]
    assert listed(admin_client.get(url, {"p": 3})) == list(reversed(ids))[99:149]
    only_failed = admin_client.get(url, {"status__exact": "failed"})
    assert only_failed.context["cl"].result_count == 1 and listed(only_failed) == [failed.id]


def test_every_sortable_column_orders_the_whole_list(admin_client, alice):
    first, second = make_workflow(alice, name="first"), make_workflow(alice, name="second")
    made = [make_run(second, "failed", trigger_kind="cron"), make_run(first, "succeeded", trigger_kind="webhook"),
            make_run(second, "succeeded", trigger_kind="manual"), make_run(first, "running", trigger_kind="cron"),
            make_run(first, "failed", trigger_kind="manual")]
    keys = {2: lambda run: run.status, 3: lambda run: run.workflow_id, 4: lambda run: run.trigger_kind,
            5: lambda run: run.created_at, 6: lambda run: run.started_at}
    url = reverse("admin:runs_workflowrun_changelist")
    for column, key in keys.items():
        for sign, descending in (("", False), ("-", True)):
            shown = listed(admin_client.get(url, {"o": f"{sign}{column}"}))
            runs = {run.id: run for run in made}
            assert sorted(shown) == sorted(runs)
            values = [key(runs[run_id]) for run_id in shown]
            assert values == sorted(values, reverse=descending), (column, sign)
            assert listed(admin_client.get(url, {"o": f"{sign}{column}"})) == shown  # the same order every time


def test_searching_a_run_id_finds_that_run(admin_client, alice):
    workflow = make_workflow(alice)
    wanted, other = make_run(workflow), make_run(workflow)
    url = reverse("admin:runs_workflowrun_changelist")
    assert listed(admin_client.get(url, {"q": str(wanted.id)})) == [wanted.id]
    assert listed(admin_client.get(url, {"q": f" #{other.id} "})) == [other.id]
    assert listed(admin_client.get(url, {"q": "not a number"})) == []
    assert listed(admin_client.get(url, {"q": "9" * 40})) == []


def test_the_dashboard_reads_the_depth_of_each_queue_in_use(alice, settings):
    settings.CELERY_BROKER_URL = REDIS_DB
    run = make_run(make_workflow(alice), "running")
    TaskRun.objects.create(run=run, task_id="report", status="queued", queue="ff-test-reports")
    client = redis.Redis.from_url(REDIS_DB)
    try:
        client.delete("ff-test-reports")
        client.lpush("ff-test-reports", "message 1", "message 2")
        depth = dashboard()["broker_depth"]
        assert depth["ff-test-reports"] == 2 and "default" in depth
    finally:
        client.delete("ff-test-reports")
        client.close()

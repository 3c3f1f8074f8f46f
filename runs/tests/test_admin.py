"""The run admin: a fast list with filters, the read-only run page, its live endpoint, retry and cancel."""
from __future__ import annotations

import pytest
from django.urls import reverse

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import alice, make_run, make_workflow, staff  # noqa: F401

pytestmark = pytest.mark.django_db
TASKS_FAILED = {"task_E": "skipped", "task_B": "failed", "task_D": "succeeded", "task_A": "succeeded"}


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_the_run_list_shows_coloured_status_workflow_trigger_and_duration(admin_client, alice):
    workflow = make_workflow(alice)
    make_run(workflow, "failed", TASKS_FAILED, trigger_kind="webhook")
    make_run(workflow, "succeeded")
    page = admin_client.get(reverse("admin:runs_workflowrun_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'ff-badge ff-status-failed">failed<' in html and 'ff-status-succeeded">succeeded<' in html
    assert "Data Pipeline" in html and "webhook" in html and "3.00 s" in html


def test_the_run_list_filters_and_stays_within_a_fixed_number_of_queries(admin_client, alice,
                                                                         django_assert_max_num_queries):
    workflow = make_workflow(alice)
    for index in range(30):
        make_run(workflow, "failed" if index % 3 else "succeeded", trigger_kind="cron" if index % 2 else "manual")
    url = reverse("admin:runs_workflowrun_changelist")
    with django_assert_max_num_queries(12):
        assert admin_client.get(url).status_code == 200
    filtered = admin_client.get(url, {"status__exact": "succeeded", "workflow__id__exact": workflow.id,
                                      "trigger_kind": "manual", "created_at__gte": "2000-01-01"})
    assert filtered.status_code == 200
    assert filtered.context["cl"].result_count == 5


def test_the_run_page_lists_task_runs_in_plan_order_with_output_logs_and_attempts(admin_client, alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    page = admin_client.get(reverse("admin:runs_workflowrun_change", args=[run.id]))
    assert page.status_code == 200
    html = page.content.decode()
    order = [html.index(f'<tbody class="ff-task" data-task="{task}"') for task in ("task_A", "task_B", "task_D",
                                                                                  "task_E")]
    assert order == sorted(order)
    assert "&quot;stdout&quot;: &quot;task_A done\\n&quot;" in html  # pretty JSON output
    assert "log line of task_B" in html and "<details" in html and "exit code 3" in html
    assert "Attempts (1)" in html and '<svg class="ff-graph"' in html
    assert 'data-final="1"' in html and "Retry failed tasks" in html and "Cancel run" not in html


def test_a_queued_run_page_shows_tasks_not_yet_started_and_asks_to_poll(admin_client, alice):
    run = make_run(make_workflow(alice), "queued")
    html = admin_client.get(reverse("admin:runs_workflowrun_change", args=[run.id])).content.decode()
    assert 'data-final="0"' in html and "not started" in html and "Cancel run" in html


def test_the_live_endpoint_answers_status_and_the_page_body(admin_client, alice):
    run = make_run(make_workflow(alice), "running", {"task_A": "succeeded", "task_B": "running"})
    url = reverse("admin:runs_workflowrun_live", args=[run.id])
    body = admin_client.get(url).json()
    assert body["status"] == "running" and body["final"] is False and 'data-task="task_B"' in body["html"]
    WorkflowRun.objects.filter(id=run.id).update(status="succeeded")
    body = admin_client.get(url).json()
    assert body["status"] == "succeeded" and body["final"] is True


def test_raw_task_logs_are_plain_text(admin_client, alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    response = admin_client.get(reverse("admin:runs_workflowrun_task_logs", args=[run.id, "task_B"]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert response.content == b"log line of task_B\n"


def test_the_retry_button_opens_the_new_run(admin_client, alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    response = admin_client.post(reverse("admin:runs_workflowrun_retry", args=[run.id]))
    retry = WorkflowRun.objects.get(parent=run)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:runs_workflowrun_change", args=[retry.id])
    assert admin_client.get(reverse("admin:runs_workflowrun_retry", args=[run.id])).status_code == 405


def test_the_cancel_button_cancels_a_running_run(admin_client, alice):
    run = make_run(make_workflow(alice), "running", {"task_A": "running", "task_B": "pending"})
    response = admin_client.post(reverse("admin:runs_workflowrun_cancel", args=[run.id]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_the_list_actions_retry_failed_runs_and_cancel_running_ones(admin_client, alice):
    workflow = make_workflow(alice)
    failed = make_run(workflow, "failed", TASKS_FAILED)
    succeeded = make_run(workflow, "succeeded")
    running = make_run(workflow, "running", {"task_A": "running"})
    url = reverse("admin:runs_workflowrun_changelist")
    response = admin_client.post(url, {"action": "retry_failed", "_selected_action": [failed.id, succeeded.id]},
                                 follow=True)
    assert WorkflowRun.objects.filter(parent=failed).count() == 1
    assert not WorkflowRun.objects.filter(parent=succeeded).exists()
    assert "only failed or cancelled runs can be retried" in " ".join(str(m) for m in response.context["messages"])
    admin_client.post(url, {"action": "cancel_runs", "_selected_action": [running.id, succeeded.id]})
    running.refresh_from_db()
    succeeded.refresh_from_db()
    assert running.status == "cancelled" and succeeded.status == "succeeded"


def test_runs_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:runs_workflowrun_add")).status_code == 403


def test_non_staff_users_are_sent_to_the_login_page(client, alice):
    run = make_run(make_workflow(alice), "failed", TASKS_FAILED)
    client.force_login(alice)
    response = client.get(reverse("admin:runs_workflowrun_live", args=[run.id]))
    assert response.status_code == 302 and "/login/" in response["Location"]

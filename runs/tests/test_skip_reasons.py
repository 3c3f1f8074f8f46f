"""A skipped task says why, on the run page and in the API, for runs executed by a real Celery worker."""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from automation.testing import wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DEFINITION = {"name": "Skips", "tasks": {
    "task_A": {"run": "echo a"},
    "task_B": {"run": "exit 3", "depends_on": ["task_A"]},
    "task_C": {"run": "echo never", "depends_on": ["task_B"]},
    "task_D": {"run": "echo never either", "depends_on": ["task_C"]},
    "optional": {"run": "echo off", "when": "{{ trigger.body.enabled }}"},
}}


def test_a_skipped_task_says_which_upstream_task_failed_or_what_when_rendered(client, start_worker):
    operator = get_user_model().objects.create_user("operator", password="pw", is_staff=True, is_superuser=True)
    client.force_login(operator)
    start_worker("w1")
    created = client.post("/api/workflows/", {"definition": DEFINITION}, content_type="application/json")
    started = client.post(f"/api/workflows/{created.json()['id']}/run/", {"enabled": False},
                          content_type="application/json")
    run = wait_for_run(started.json()["run_id"])
    assert run.status == "failed"

    tasks = {t["task_id"]: t for t in client.get(f"/api/runs/{run.id}/").json()["tasks"]}
    assert {t: tasks[t]["status"] for t in tasks} == {"task_A": "succeeded", "task_B": "failed",
                                                      "task_C": "skipped", "task_D": "skipped",
                                                      "optional": "skipped"}
    assert tasks["task_C"]["error"] == "upstream task_B failed"
    assert tasks["task_D"]["error"] == "upstream task_C skipped"
    assert tasks["optional"]["error"] == "`when` rendered False"

    html = client.get(reverse("admin:runs_workflowrun_change", args=[run.id])).content.decode()
    assert '<p class="ff-skip-reason">Skipped: upstream task_B failed</p>' in html
    assert "Skipped: `when` rendered False" in html

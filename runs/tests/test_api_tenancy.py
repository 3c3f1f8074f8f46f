"""Runs belong to their workflow's owner (SPEC §11): other users get 404, staff act through
`runs.view_workflowrun` / `runs.change_workflowrun`, and a rerun trigger that cannot be stored is a 400."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import alice, bob, make_run, make_workflow, staff  # noqa: F401

pytestmark = pytest.mark.django_db
FAILED = {"task_A": "succeeded", "task_B": "failed", "task_D": "succeeded", "task_E": "skipped"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def staff_with(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(id=user.id)


def post_every_action(client, run: WorkflowRun) -> list[int]:
    url = f"/api/runs/{run.id}/"
    return [client.post(f"{url}retry/", format="json").status_code,
            client.post(f"{url}rerun/", {"from_task": "task_B"}, format="json").status_code,
            client.post(f"{url}cancel/", format="json").status_code]


def test_another_users_runs_are_not_found_for_every_verb(alice, bob):
    run = make_run(make_workflow(bob), "failed", FAILED)
    client = client_for(alice)
    assert client.get("/api/runs/").json()["results"] == []
    assert client.get(f"/api/runs/{run.id}/").status_code == 404
    assert client.get(f"/api/runs/{run.id}/tasks/task_A/logs/").status_code == 404
    assert post_every_action(client, run) == [404, 404, 404]
    assert WorkflowRun.objects.count() == 1


def test_staff_without_permissions_are_treated_like_other_users(alice):
    run = make_run(make_workflow(alice), "failed", FAILED)
    client = client_for(staff_with())
    assert client.get(f"/api/runs/{run.id}/").status_code == 404
    assert post_every_action(client, run) == [404, 404, 404]
    assert WorkflowRun.objects.count() == 1


def test_staff_with_view_permission_see_runs_but_cannot_retry_rerun_or_cancel(alice):
    run = make_run(make_workflow(alice), "failed", FAILED)
    client = client_for(staff_with("view_workflowrun"))
    assert [r["id"] for r in client.get("/api/runs/").json()["results"]] == [run.id]
    assert client.get(f"/api/runs/{run.id}/").status_code == 200
    assert post_every_action(client, run) == [403, 403, 403]
    assert WorkflowRun.objects.count() == 1


def test_staff_with_change_permission_retry_rerun_and_cancel_others_runs(alice):
    workflow = make_workflow(alice)
    failed, running = make_run(workflow, "failed", FAILED), make_run(workflow, "running", {"task_A": "running"})
    client = client_for(staff_with("change_workflowrun"))
    assert client.post(f"/api/runs/{failed.id}/retry/", format="json").status_code == 202
    assert client.post(f"/api/runs/{failed.id}/rerun/", {"from_task": "task_B"}, format="json").status_code == 202
    assert client.post(f"/api/runs/{running.id}/cancel/", format="json").status_code == 202
    assert WorkflowRun.objects.get(id=running.id).status == "cancelled"


def test_a_superuser_sees_every_run(staff, alice, bob):
    make_run(make_workflow(alice), "succeeded")
    make_run(make_workflow(bob), "succeeded")
    assert len(client_for(staff).get("/api/runs/").json()["results"]) == 2


@pytest.mark.parametrize("trigger, path", [
    ('{"body": {"note": "a\\u0000b"}}', "trigger.body.note"),
    ('{"body": "\\ud800"}', "trigger.body"),
    ('{"body": ' + "[" * 70 + "]" * 70 + "}", "trigger.body"),
])
def test_a_rerun_trigger_that_cannot_be_stored_is_a_400_naming_trigger(alice, trigger, path):
    run = make_run(make_workflow(alice), "failed", FAILED)
    response = client_for(alice).post(f"/api/runs/{run.id}/rerun/",
                                      f'{{"from_task": "task_B", "trigger": {trigger}}}',
                                      content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["path"].startswith(path)
    assert WorkflowRun.objects.count() == 1

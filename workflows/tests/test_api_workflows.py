"""The workflows API: ownership, pagination, validation errors, validate-only, run, token auth, viewers."""
from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import INVALID, PIPELINE, alice, bob, make_workflow, staff, viewer  # noqa: F401
from workflows.models import Workflow, WorkflowVersion
from workflows.services import spec_for_version

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_user_lists_only_their_own_workflows_in_pages(alice, bob):
    for index in range(3):
        make_workflow(alice, name=f"alice {index}")
    make_workflow(bob, name="bob's")
    body = client_for(alice).get("/api/workflows/", {"page_size": 2}).json()
    assert body["count"] == 3
    assert [w["name"] for w in body["results"]] == ["alice 0", "alice 1"]
    assert body["next"] and "page=2" in body["next"]
    assert set(body["results"][0]) == {"id", "name", "definition", "version", "enabled", "webhook_url",
                                       "created_at", "updated_at"}


def test_staff_see_every_workflow(staff, alice, bob):
    make_workflow(alice, name="a")
    make_workflow(bob, name="b")
    assert client_for(staff).get("/api/workflows/").json()["count"] == 2


def test_another_users_workflow_is_not_found_for_every_verb(alice, bob):
    theirs = make_workflow(bob)
    client = client_for(alice)
    url = f"/api/workflows/{theirs.id}/"
    assert client.get(url).status_code == 404
    assert client.put(url, {"definition": PIPELINE}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.post(f"{url}run/", {}, format="json").status_code == 404
    assert Workflow.objects.filter(id=theirs.id).exists() and not WorkflowRun.objects.exists()


def test_creating_with_an_invalid_definition_answers_path_named_errors(alice):
    response = client_for(alice).post("/api/workflows/", {"definition": INVALID}, format="json")
    assert response.status_code == 400
    assert {"path": "tasks.task_B.depends_on", "message": "unknown task 'task_Z'"} in response.json()["errors"]
    assert not Workflow.objects.exists()


def test_creating_from_a_yaml_string_names_the_workflow_after_its_definition(alice):
    response = client_for(alice).post("/api/workflows/", {"definition": PIPELINE}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Data Pipeline" and body["version"] == 1
    assert body["webhook_url"] is None  # no webhook trigger, so no /hooks/ URL (SPEC §6)
    assert Workflow.objects.get(id=body["id"]).owner == alice


def test_a_definition_that_is_not_an_object_or_string_is_refused(alice):
    response = client_for(alice).post("/api/workflows/", {"definition": [1, 2]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "definition"


def test_an_update_based_on_a_stale_version_conflicts(alice):
    workflow = make_workflow(alice)
    client = client_for(alice)
    changed = PIPELINE.replace("Finalizing", "Done")
    assert client.put(f"/api/workflows/{workflow.id}/", {"definition": changed, "version": 1},
                      format="json").status_code == 200
    response = client.put(f"/api/workflows/{workflow.id}/", {"definition": PIPELINE, "version": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["path"] == "version"


def test_validate_answers_the_plan_without_saving(alice):
    response = client_for(alice).post("/api/workflows/validate/", {"definition": PIPELINE}, format="json")
    assert response.status_code == 200
    assert response.json() == {"valid": True, "name": "Data Pipeline",
                               "plan": [["task_A"], ["task_B", "task_D"], ["task_E"]]}
    assert not Workflow.objects.exists()


def test_validate_answers_path_named_errors(alice):
    client = client_for(alice)
    response = client.post("/api/workflows/validate/", {"definition": INVALID}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "tasks.task_B.depends_on", "message": "unknown task 'task_Z'"}]
    unparsable = client.post("/api/workflows/validate/", {"definition": "tasks: [unclosed"}, format="json")
    assert unparsable.status_code == 400 and "line" in unparsable.json()["errors"][0]["message"]
    missing = client.post("/api/workflows/validate/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["errors"][0]["path"] == "definition"


def test_running_an_own_workflow_stores_the_payload_as_trigger_body(alice):
    workflow = make_workflow(alice)
    response = client_for(alice).post(f"/api/workflows/{workflow.id}/run/", {"user_id": 7}, format="json")
    assert response.status_code == 202
    run = WorkflowRun.objects.get(id=response.json()["run_id"])
    assert run.trigger["body"] == {"user_id": 7} and run.status == "running"  # started in the request


def test_running_a_workflow_whose_stored_definition_no_longer_compiles_is_a_conflict_naming_it(alice):
    workflow = make_workflow(alice)
    WorkflowVersion.objects.filter(id=workflow.current_version_id).update(
        definition={"name": workflow.name, "tasks": {"a": {"action": "no.such_action"}}})
    spec_for_version.cache_clear()
    response = client_for(alice).post(f"/api/workflows/{workflow.id}/run/", {}, format="json")
    assert response.status_code == 409
    [error] = response.json()["errors"]
    assert error["path"] == "workflow" and "no longer valid" in error["message"] and "no.such_action" in error["message"]
    assert not WorkflowRun.objects.filter(workflow=workflow).exists()


def test_anonymous_requests_are_refused(db):
    assert APIClient().get("/api/workflows/").status_code in (401, 403)


def test_a_token_from_the_token_endpoint_authenticates(alice):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw-alice"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=alice).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/workflows/").status_code == 200
    wrong = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["errors"]


def test_viewers_can_read_but_not_run_or_change(viewer):
    workflow = make_workflow(viewer)
    client = client_for(viewer)
    assert client.get(f"/api/workflows/{workflow.id}/").status_code == 200
    assert client.post(f"/api/workflows/{workflow.id}/run/", {}, format="json").status_code == 403
    assert client.delete(f"/api/workflows/{workflow.id}/").status_code == 403
    assert client.post("/api/workflows/validate/", {"definition": PIPELINE}, format="json").status_code == 200
    assert not WorkflowRun.objects.exists()


def test_the_api_is_throttled_with_generous_rates():
    from django.conf import settings

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert set(rates) >= {"anon", "user"}

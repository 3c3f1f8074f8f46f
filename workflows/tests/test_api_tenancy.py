"""Workflows belong to their owner (SPEC §11): per-owner names, no takeover by name, staff through model
permissions, and deletes that never end in a server error. Users A and B act through the HTTP API."""
from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Permission, User
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from runs.models import TaskRun, WorkflowRun
from runs.tests.operator_fixtures import PIPELINE, alice, bob, make_run, make_workflow, staff  # noqa: F401
from workflows.models import Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db

WITH_HOOK = {"name": "hooked", "triggers": [{"type": "webhook"}], "tasks": {"a": {"run": "echo a"}}}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def definition(name: str, command: str = "echo mine") -> dict:
    return {"name": name, "tasks": {"a": {"run": command}}}


def staff_with(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(id=user.id)  # fresh: no cached permissions


@pytest.mark.parametrize("padding", [" ", "\t", "\u00a0", "\u2003"])
def test_creating_with_another_users_name_plus_whitespace_never_touches_their_workflow(alice, bob, padding):
    theirs = make_workflow(bob, source=definition("Nightly report", "echo bob"))
    response = client_for(alice).post("/api/workflows/", {"definition": definition(f"Nightly report{padding}")},
                                      format="json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] != theirs.id and response.json()["name"] == "Nightly report"
    theirs.refresh_from_db()
    assert theirs.owner == bob and theirs.version == 1 and theirs.definition["tasks"]["a"]["run"] == "echo bob"


@pytest.mark.parametrize("variant", ["Nightly report ", "\u00a0nightly REPORT", "Ｎｉｇｈｔｌｙ report"])
def test_creating_a_name_the_owner_already_uses_is_a_400_naming_name_and_updates_nothing(alice, variant):
    mine = make_workflow(alice, source=definition("Nightly report", "echo first"))
    response = client_for(alice).post("/api/workflows/", {"definition": definition(variant, "echo second")},
                                      format="json")
    assert response.status_code == 400, response.content
    assert [error["path"] for error in response.json()["errors"]] == ["name"]
    mine.refresh_from_db()
    assert mine.version == 1 and mine.definition["tasks"]["a"]["run"] == "echo first"
    assert Workflow.objects.count() == 1


def test_an_explicit_name_is_stored_stripped_and_clashes_like_the_definitions_name(alice):
    client = client_for(alice)
    created = client.post("/api/workflows/", {"name": "  Deploy\t", "definition": PIPELINE}, format="json")
    assert created.status_code == 201 and created.json()["name"] == "Deploy"
    again = client.post("/api/workflows/", {"name": "deploy", "definition": PIPELINE}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["path"] == "name"


def test_two_users_may_use_the_same_name(alice, bob):
    for user in (alice, bob):
        assert client_for(user).post("/api/workflows/", {"definition": PIPELINE}, format="json").status_code == 201
    assert set(Workflow.objects.values_list("owner__username", "name")) == {("alice", "Data Pipeline"),
                                                                           ("bob", "Data Pipeline")}


def test_renaming_onto_another_of_the_owners_workflows_is_a_400_naming_name(alice):
    make_workflow(alice, source=definition("first"))
    second = make_workflow(alice, source=definition("second"))
    response = client_for(alice).patch(f"/api/workflows/{second.id}/", {"name": "FIRST "}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "name"
    second.refresh_from_db()
    assert second.name == "second"


def test_the_database_refuses_a_second_normalised_name_for_one_owner(alice):
    make_workflow(alice, source=definition("Report"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Workflow.objects.create(name="\u2003report", owner=alice, definition=definition("report"))
    with pytest.raises(IntegrityError), transaction.atomic():  # the ownerless share one namespace too
        for _ in range(2):
            Workflow.objects.create(name="Orphan", owner=None, definition=definition("Orphan"))


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_of_one_name_give_one_workflow_and_one_400(alice):
    barrier, answers = threading.Barrier(2), []

    def create(padding: str) -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(client_for(alice).post(
                "/api/workflows/", {"definition": definition(f"Race{padding}")}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(padding,)) for padding in ("", " ")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [201, 400]
    assert Workflow.objects.filter(owner=alice).count() == 1


# --- staff act on others' workflows through Django's model permissions ---------------------------------------


def test_staff_without_permissions_cannot_see_change_or_run_another_users_workflow(alice):
    theirs = make_workflow(alice)
    staff_user = staff_with()
    client = client_for(staff_user)
    url = f"/api/workflows/{theirs.id}/"
    assert client.get("/api/workflows/").json()["count"] == 0
    assert client.get(url).status_code == 404
    assert client.patch(url, {"enabled": False}, format="json").status_code == 404
    assert client.post(f"{url}run/", {}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled and not WorkflowRun.objects.exists()


def test_staff_with_view_permission_see_but_cannot_change_run_or_delete(alice):
    theirs = make_workflow(alice)
    client = client_for(staff_with("view_workflow"))
    url = f"/api/workflows/{theirs.id}/"
    assert client.get(url).status_code == 200
    for response in (client.patch(url, {"enabled": False}, format="json"),
                     client.post(f"{url}run/", {}, format="json"), client.delete(url)):
        assert response.status_code == 403 and response.json()["errors"][0]["message"]
    assert Workflow.objects.get(id=theirs.id).enabled and not WorkflowRun.objects.exists()


def test_staff_with_change_permission_edit_and_run_but_need_delete_permission_to_delete(alice):
    theirs = make_workflow(alice)
    client = client_for(staff_with("change_workflow"))
    url = f"/api/workflows/{theirs.id}/"
    assert client.patch(url, {"enabled": False}, format="json").status_code == 200
    assert client.post(f"{url}run/", {}, format="json").status_code == 202
    assert client.delete(url).status_code == 403
    theirs.refresh_from_db()
    assert not theirs.enabled and theirs.owner == alice
    WorkflowRun.objects.update(status="cancelled")  # an active run would make the delete a 409
    assert client_for(staff_with("view_workflow", "delete_workflow")).delete(url).status_code == 204


def test_a_superuser_sees_and_changes_everyones_workflows(staff, alice, bob):
    make_workflow(alice, source=definition("a"))
    theirs = make_workflow(bob, source=definition("b"))
    client = client_for(staff)
    assert client.get("/api/workflows/").json()["count"] == 2
    assert client.patch(f"/api/workflows/{theirs.id}/", {"enabled": False}, format="json").status_code == 200
    assert Workflow.objects.get(id=theirs.id).owner == bob  # an edit does not take the workflow over


# --- delete ----------------------------------------------------------------------------------------------------


def test_deleting_a_workflow_with_finished_runs_deletes_them_and_its_versions(alice):
    workflow = make_workflow(alice)
    make_run(workflow, "succeeded", {"task_A": "succeeded"})
    make_run(workflow, "failed", {"task_A": "failed"})
    response = client_for(alice).delete(f"/api/workflows/{workflow.id}/")
    assert response.status_code == 204, response.content
    assert not Workflow.objects.exists() and not WorkflowVersion.objects.exists()
    assert not WorkflowRun.objects.exists() and not TaskRun.objects.exists()


@pytest.mark.parametrize("status", ["queued", "running"])
def test_deleting_a_workflow_with_active_runs_is_a_409_naming_them(alice, status):
    workflow = make_workflow(alice)
    make_run(workflow, "succeeded")
    active = make_run(workflow, status)
    response = client_for(alice).delete(f"/api/workflows/{workflow.id}/")
    assert response.status_code == 409
    message = response.json()["errors"][0]["message"]
    assert str(active.id) in message and "cancel them first" in message
    assert Workflow.objects.filter(id=workflow.id).exists() and WorkflowRun.objects.count() == 2


# --- webhook_url ------------------------------------------------------------------------------------------------


def test_webhook_url_is_null_without_a_webhook_trigger(alice):
    client = client_for(alice)
    plain = client.post("/api/workflows/", {"definition": PIPELINE}, format="json").json()
    hooked = client.post("/api/workflows/", {"definition": WITH_HOOK}, format="json").json()
    assert plain["webhook_url"] is None
    token = Workflow.objects.get(id=hooked["id"]).webhook_token
    assert hooked["webhook_url"] == f"http://testserver/hooks/{token}"

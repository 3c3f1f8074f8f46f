"""Connected accounts belong to their user (SPEC §11): a workflow uses its owner's connections only, the API
lists the caller's own, and a connection whose tokens no key decrypts any more still lists and disconnects."""
from __future__ import annotations

import pytest
from django.test import Client

from connectors.models import ConnectedAccount
from connectors.tests.fake_github import connect_account, fake_github, github_user  # noqa: F401
from connectors.tests.test_github_client import rekey  # noqa: F401
from runs import services as runs
from runs.models import TaskRun, WorkflowRun

NAMES_BOBS_CONNECTION = {"name": "borrow bob's GitHub", "tasks": {"star": {
    "action": "github.star_repo", "inputs": {"repo": "octo/hello", "connection": "bob-hub"}}}}


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_a_workflow_naming_another_users_connection_fails_without_using_it(
        fake_github, connect_account, github_user, bob, monkeypatch):
    queued: list[tuple] = []
    monkeypatch.setattr(runs, "_send", lambda name, args, **options: queued.append((name, args)))
    monkeypatch.setattr(runs, "_send_many", lambda name, calls: queued.extend((name, args) for args, _ in calls))
    connect_account(bob, login="bob-hub")
    alice = _client(github_user)
    created = alice.post("/api/workflows/", {"definition": NAMES_BOBS_CONNECTION}, content_type="application/json")
    assert created.status_code == 201, created.content

    started = alice.post(f"/api/workflows/{created.json()['id']}/run/", {}, content_type="application/json")
    while queued:  # play the broker in-process
        name, args = queued.pop(0)
        if name == "start_run":
            runs.run_start(run_id=args[0])
        elif name == "execute_task":
            runs.task_execute(task_run_id=args[0])

    run = WorkflowRun.objects.get(id=started.json()["run_id"])
    task = TaskRun.objects.get(run=run)
    assert run.status == "failed" and task.status == "failed"
    assert task.error.startswith("the workflow's owner has no GitHub connection 'bob-hub'"), task.error
    assert fake_github.requests == [] and fake_github.stars == set()


@pytest.mark.django_db
def test_the_connections_api_lists_only_the_callers_accounts(connect_account, github_user, bob):
    connect_account(github_user, login="octocat")
    connect_account(bob, login="bob-hub")

    assert [a["login"] for a in _client(github_user).get("/api/connections/").json()] == ["octocat"]
    assert [a["login"] for a in _client(bob).get("/api/connections/").json()] == ["bob-hub"]


@pytest.mark.django_db
def test_a_connection_whose_key_was_lost_still_lists_and_disconnects(connect_account, github_user, rekey):
    rekey("old-secret-key-" + "o" * 40)
    account = connect_account(github_user)
    rekey("new-secret-key-" + "n" * 40)  # no fallback: nothing decrypts the tokens any more
    alice = _client(github_user)

    listed = alice.get("/api/connections/")
    page = alice.get("/connections/")
    disconnected = alice.post(f"/api/connections/{account.id}/disconnect/")

    assert listed.status_code == 200 and [a["login"] for a in listed.json()] == ["octocat"]
    assert page.status_code == 200 and "octocat" in page.content.decode()
    assert disconnected.status_code == 200 and disconnected.json() == {"disconnected": True, "revoked": False}
    assert not ConnectedAccount.objects.exists()

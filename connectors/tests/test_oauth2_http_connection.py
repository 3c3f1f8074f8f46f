"""`http.request` with `connection:` (SPEC §12): the workflow owner's account authorises the request, a 401
refreshes once and retries once, twenty tasks on one expiring account refresh it once, a revoked refresh token
marks the account and fails the task naming it, and another user's account is never used. Runs go through the
HTTP API; the executing is done by a real Celery worker, or by runs.services with the broker played in-process."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from automation.testing import wait_for_run
from connectors.models import ConnectedAccount
from connectors.tests.fake_oauth2 import fake_oauth2, fake_provider, store_fake_account  # noqa: F401
from connectors.tests.test_oauth2_connect import browser_for, connect
from runs import services as runs
from runs.models import TaskRun, WorkflowRun

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _call(fake_oauth2, connection_name: str, path: str = "/api/data") -> dict:
    return {"action": "http.request", "inputs": {"url": fake_oauth2.url + path, "connection": connection_name}}


def _start(client: Client, definition: dict) -> int:
    created = client.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert created.status_code == 201, created.content
    started = client.post(f"/api/workflows/{created.json()['id']}/run/", {}, content_type="application/json")
    assert started.status_code == 202, started.content
    return started.json()["run_id"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


def test_a_connected_account_authorises_http_request_on_a_worker_and_an_expired_token_is_refreshed_once(
        live_server, fake_oauth2, fake_provider, alice, start_worker):
    browser = browser_for(live_server, alice)
    connect(browser)  # through the real views
    account = ConnectedAccount.objects.get(user=alice)
    start_worker()
    api = _client(alice)
    definition = {"name": "call the fake api", "tasks": {"call": _call(fake_oauth2, "fake")}}

    first = wait_for_run(_start(api, definition), timeout=60)
    fake_oauth2.expire_access_tokens()
    second = wait_for_run(_start(api, {**definition, "name": "call it again"}), timeout=60)

    for run in (first, second):
        task = TaskRun.objects.get(run=run)
        assert run.status == "succeeded", task.error
        assert task.output["json"] == {"user": "alice-at-fake", "path": "/api/data"}
    assert fake_oauth2.refreshes == 1
    assert [(path, status) for path, _, status in fake_oauth2.api_calls if path == "/api/data"] == [
        ("/api/data", 200), ("/api/data", 401), ("/api/data", 200)]
    logs = TaskRun.objects.get(run=second).logs
    assert "using connection 'fake:alice-at-fake'" in logs and "refreshing it and retrying once" in logs
    assert "Bearer" not in logs and account.access_token not in logs
    stored = ConnectedAccount.objects.get(id=account.id)
    assert stored.status == "ok" and fake_oauth2.valid_access_token(stored.access_token)


def test_twenty_tasks_on_one_expiring_account_cause_exactly_one_refresh(
        fake_oauth2, store_fake_account, alice, start_worker):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    account = store_fake_account(alice)
    fake_oauth2.expire_access_tokens()  # rejected by the API ...
    ConnectedAccount.objects.filter(id=account.id).update(expires_at=timezone.now() + timedelta(seconds=30))
    fake_oauth2.refresh_delay = 0.3  # ... and about to expire here: both refresh paths race for the lock
    tasks = {f"call_{n}": _call(fake_oauth2, "fake:alice-at-fake") for n in range(20)}
    start_worker(concurrency=4)

    run = wait_for_run(_start(_client(alice), {"name": "twenty at once", "tasks": tasks}), timeout=120)

    results = TaskRun.objects.filter(run=run)
    assert run.status == "succeeded", [t.error for t in results if t.error]
    assert len(results) == 20 and all(t.output["json"]["user"] == "alice-at-fake" for t in results)
    assert fake_oauth2.refreshes == 1


def test_a_revoked_refresh_token_marks_the_account_and_the_task_error_names_the_connection(
        fake_oauth2, store_fake_account, alice, deliver):
    account = store_fake_account(alice)
    fake_oauth2.expire_access_tokens()
    fake_oauth2.revoke_refresh_tokens()

    run_id = _start(_client(alice), {"name": "revoked", "tasks": {"call": _call(fake_oauth2, "fake")}})
    deliver()

    run = WorkflowRun.objects.get(id=run_id)
    task = TaskRun.objects.get(run=run)
    assert run.status == "failed" and task.status == "failed"
    assert task.error.startswith("connection 'fake:alice-at-fake' needs re-authorisation: token refresh refused "
                                 "(invalid_grant"), task.error
    assert "Reconnect it from the Connections page (/connections/)" in task.error
    assert task.attempt == 1  # not retried: only reconnecting helps
    stored = ConnectedAccount.objects.get(id=account.id)
    assert stored.status == ConnectedAccount.Status.NEEDS_REAUTH and "invalid_grant" in stored.status_reason
    listed = _client(alice).get("/api/connections/").json()
    assert [(a["login"], a["status"]) for a in listed] == [("alice-at-fake", "needs_reauth")]


def test_another_users_connection_is_never_usable(fake_oauth2, store_fake_account, alice, django_user_model,
                                                  deliver):
    store_fake_account(django_user_model.objects.create_user("bob"), login="bob-at-fake")
    tasks = {"by_login": _call(fake_oauth2, "fake:bob-at-fake"), "by_provider": _call(fake_oauth2, "fake")}

    run_id = _start(_client(alice), {"name": "borrow bob's account", "tasks": tasks})
    deliver()

    errors = {t.task_id: t.error for t in TaskRun.objects.filter(run_id=run_id)}
    assert errors["by_login"].startswith("the workflow's owner has no connection 'fake:bob-at-fake'")
    assert errors["by_provider"].startswith("the workflow's owner has no connected fake account")
    assert fake_oauth2.api_calls == [] and fake_oauth2.refreshes == 0


def test_a_connection_and_an_authorization_header_together_are_refused(fake_oauth2, store_fake_account, alice,
                                                                       deliver):
    store_fake_account(alice)
    call = _call(fake_oauth2, "fake")
    call["inputs"]["headers"] = {"Authorization": "Bearer mine"}

    run_id = _start(_client(alice), {"name": "both", "tasks": {"call": call}})
    deliver()

    assert TaskRun.objects.get(run_id=run_id).error == "give either connection or an Authorization header, not both"
    assert fake_oauth2.api_calls == []

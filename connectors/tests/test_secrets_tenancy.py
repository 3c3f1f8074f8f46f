"""The secrets vault is per owner (SPEC §11, §6 `secrets/`): a workflow reads its owner's secrets only, and the
API shows and changes the caller's own vault only. Two users, A (alice) and B (bob), through the HTTP API; runs
executed through runs.services (the broker played in-process) or by a real Celery worker."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client

from automation.testing import wait_for_run
from connectors.models import Secret
from connectors.secrets import secret_value
from runs import services as runs
from runs.models import TaskRun, WorkflowRun
from runs.permissions import VIEWERS_GROUP
from workflows.limits import MAX_SECRET_VALUE_BYTES

B_VALUE = "bob-only-7c1d9e42-value"
PROBES = {  # each one tried to read B's value into A's run before owners existed
    "as_list": "{{ secrets.B_KEY | list }}",
    "reversed": "{{ secrets.B_KEY | reverse }}",
    "upper": "{{ secrets.B_KEY | upper }}",
    "sliced": "{{ secrets.B_KEY[1:] }}",
    "joined": "{{ secrets.B_KEY | join('-') }}",
}


def _login(username: str, **extra) -> tuple:
    user = get_user_model().objects.create_user(username, password="pw", **extra)
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def alice():
    return _login("alice")


@pytest.fixture
def bob():
    return _login("bob")


def _post_secret(client: Client, name: str, value) -> dict:
    answer = client.post("/api/secrets/", {"name": name, "value": value}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _create_workflow(client: Client, definition: dict) -> int:
    created = client.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert created.status_code == 201, created.content
    return created.json()["id"]


def _stored_text(run_id: int) -> list[str]:
    """Every stored row of the run, as the database holds it (no model, no masking on the way out)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM runs_taskrun t WHERE run_id = %s", [run_id])
        rows = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(r)::text FROM runs_workflowrun r WHERE id = %s", [run_id])
        return [*rows, cursor.fetchone()[0]]


# --- workflows read their owner's vault only ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_another_users_secret_is_undefined_in_filters_and_slices_and_stored_nowhere(alice, bob, deliver):
    (_, a), (_, b) = alice, bob
    _post_secret(b, "B_KEY", B_VALUE)
    tasks = {task: {"action": "transform.jinja", "inputs": {"value": template}} for task, template in PROBES.items()}
    # Whether the name exists elsewhere must not show either: B's name and a name nobody has answer alike.
    tasks["exists"] = {"action": "transform.jinja", "inputs": {"value": "{{ secrets.B_KEY is defined }}"}}
    tasks["nobody"] = {"action": "transform.jinja", "inputs": {"value": "{{ secrets.NO_ONE_HAS_IT is defined }}"}}
    workflow_id = _create_workflow(a, {"name": "probe the vault", "tasks": tasks})

    started = a.post(f"/api/workflows/{workflow_id}/run/", {}, content_type="application/json")
    deliver()

    run = WorkflowRun.objects.get(id=started.json()["run_id"])
    results = {t.task_id: t for t in TaskRun.objects.filter(run=run)}
    assert run.status == "failed"
    for task in PROBES:
        assert results[task].status == "failed", (task, results[task].output)
        assert "secrets.B_KEY is undefined" in results[task].error, (task, results[task].error)
    assert results["exists"].output == results["nobody"].output == {"value": False}
    leaks = {B_VALUE, B_VALUE[::-1], B_VALUE.upper(), B_VALUE[1:], "-".join(B_VALUE), str(list(B_VALUE))}
    for text in _stored_text(run.id):
        assert not any(leak in text for leak in leaks), text


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_two_owners_may_both_have_a_secret_named_key_and_each_workflow_gets_its_owners(alice, bob, start_worker):
    (_, a), (_, b) = alice, bob
    start_worker("w1")
    _post_secret(a, "KEY", "a" * 11)
    _post_secret(b, "KEY", "b" * 23)
    definition = {"name": "key length", "tasks": {"measure": {"action": "transform.jinja", "inputs": {
        "value": "{{ secrets.KEY | length }}"}}}}
    run_ids = {}
    for who, client in (("alice", a), ("bob", b)):
        workflow_id = _create_workflow(client, definition)
        run_ids[who] = client.post(f"/api/workflows/{workflow_id}/run/", {}, content_type="application/json"
                                   ).json()["run_id"]

    lengths = {}
    for who, run_id in run_ids.items():
        run = wait_for_run(run_id)
        assert run.status == "succeeded", who
        lengths[who] = TaskRun.objects.get(run=run).output["value"]

    assert lengths == {"alice": 11, "bob": 23}


@pytest.mark.django_db
def test_secret_value_reads_only_the_named_owners_vault(alice, bob):
    (a_user, a), (b_user, _) = alice, bob
    Secret.objects.create(owner=b_user, name="B_KEY", value=B_VALUE)

    assert secret_value("B_KEY", owner_id=b_user.id) == B_VALUE
    assert secret_value("B_KEY", owner_id=a_user.id) is None
    assert secret_value("B_KEY", owner_id=None) is None


@pytest.mark.django_db
def test_a_secret_without_an_owner_is_read_by_no_workflow(alice):
    a_user, _ = alice
    Secret.objects.create(owner=None, name="ORPHAN", value="from-before-owners")

    assert secret_value("ORPHAN", owner_id=a_user.id) is None
    assert secret_value("ORPHAN", owner_id=None) is None


# --- the API: the caller's own vault ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_vault_api_lists_only_the_callers_own_secrets_and_never_their_values(alice, bob):
    (_, a), (_, b) = alice, bob
    _post_secret(a, "SHARED_NAME", "alice-value-1")
    _post_secret(a, "A_ONLY", "alice-value-2")
    _post_secret(b, "SHARED_NAME", B_VALUE)

    listed_a, listed_b = a.get("/api/secrets/"), b.get("/api/secrets/")

    assert [s["name"] for s in listed_a.json()] == ["A_ONLY", "SHARED_NAME"]
    assert [s["name"] for s in listed_b.json()] == ["SHARED_NAME"]
    assert set(listed_a.json()[0]) == {"name", "created_at", "updated_at"}
    for text in (listed_a.content.decode(), listed_b.content.decode()):
        assert "value" not in text and "gAAAAA" not in text


@pytest.mark.django_db
def test_a_user_cannot_delete_another_users_secret(alice, bob):
    (_, a), (b_user, b) = alice, bob
    _post_secret(b, "B_KEY", B_VALUE)

    refused = a.delete("/api/secrets/B_KEY/")

    assert refused.status_code == 404
    assert refused.json() == {"errors": [{"path": "", "message": "you have no secret named 'B_KEY'"}]}
    assert secret_value("B_KEY", owner_id=b_user.id) == B_VALUE
    assert b.delete("/api/secrets/B_KEY/").status_code == 204
    assert b.delete("/api/secrets/B_KEY/").status_code == 404
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_a_superuser_sees_and_deletes_only_their_own_vault_through_the_api(bob):
    b_user, b = bob
    _, root = _login("root", is_staff=True, is_superuser=True)
    _post_secret(b, "B_KEY", B_VALUE)

    assert root.get("/api/secrets/").json() == []
    assert root.delete("/api/secrets/B_KEY/").status_code == 404
    assert secret_value("B_KEY", owner_id=b_user.id) == B_VALUE


@pytest.mark.django_db
def test_posting_an_existing_name_replaces_its_value_and_keeps_one_row(alice):
    a_user, a = alice
    first = _post_secret(a, "TOKEN", "old-value")

    second = _post_secret(a, "TOKEN", "new-value")

    assert Secret.objects.filter(owner=a_user).count() == 1
    assert secret_value("TOKEN", owner_id=a_user.id) == "new-value"
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "path", "message"), [
    ({"name": "1ABC", "value": "v"}, "name", "must start with a letter or _"),
    ({"name": "A-B", "value": "v"}, "name", "must start with a letter or _"),
    ({"name": "", "value": "v"}, "name", "must start with a letter or _"),
    ({"name": "A" * 101, "value": "v"}, "name", "longer than 100 characters"),
    ({"name": 5, "value": "v"}, "name", "must be a string"),
    ({"value": "v"}, "name", "must be a string"),
    ({"name": "OK", "value": ""}, "value", "must not be empty"),
    ({"name": "OK", "value": 12}, "value", "must be a string"),
    ({"name": "OK", "value": "a\u0000b"}, "value", "contains a NUL character"),
    ({"name": "OK", "value": "x" * (MAX_SECRET_VALUE_BYTES + 1)}, "value", "larger than 65,536 bytes"),
    ({"name": "OK", "value": "é" * (MAX_SECRET_VALUE_BYTES // 2 + 1)}, "value", "larger than 65,536 bytes"),
    (["OK", "v"], "", "expected a JSON object"),
])
def test_a_bad_secret_name_or_value_is_refused_with_an_error_naming_it(alice, body, path, message):
    _, a = alice

    refused = a.post("/api/secrets/", body, content_type="application/json")

    assert refused.status_code == 400, refused.content
    [error] = refused.json()["errors"]
    assert error["path"] == path and error["message"].startswith(message), error
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_a_value_of_exactly_the_limit_is_stored(alice):
    a_user, a = alice
    _post_secret(a, "BIG", "x" * MAX_SECRET_VALUE_BYTES)
    assert len(secret_value("BIG", owner_id=a_user.id)) == MAX_SECRET_VALUE_BYTES


@pytest.mark.django_db
def test_read_only_users_may_list_but_not_add_or_delete_secrets(alice):
    a_user, a = alice
    _post_secret(a, "MINE", "v")
    a_user.groups.add(Group.objects.get_or_create(name=VIEWERS_GROUP)[0])

    assert a.get("/api/secrets/").status_code == 200
    added = a.post("/api/secrets/", {"name": "MORE", "value": "v"}, content_type="application/json")
    deleted = a.delete("/api/secrets/MINE/")

    assert added.status_code == deleted.status_code == 403
    assert added.json()["errors"][0]["message"] == "read-only users (group 'viewers') cannot change secrets"
    assert list(Secret.objects.values_list("name", flat=True)) == ["MINE"]


@pytest.mark.django_db
def test_the_vault_needs_a_login():
    anonymous = Client()
    assert anonymous.get("/api/secrets/").status_code in (401, 403)
    assert anonymous.post("/api/secrets/", {"name": "X", "value": "v"},
                          content_type="application/json").status_code in (401, 403)
    assert not Secret.objects.exists()


@pytest.mark.django_db
def test_the_openapi_schema_documents_the_vault(alice):
    _, a = alice
    schema = a.get("/api/schema/", {"format": "json"}).json()

    assert set(schema["paths"]["/api/secrets/"]) >= {"get", "post"}
    assert "201" in schema["paths"]["/api/secrets/"]["post"]["responses"]
    assert "204" in schema["paths"]["/api/secrets/{name}/"]["delete"]["responses"]
    assert set(schema["components"]["schemas"]["Secret"]["properties"]) == {"name", "created_at", "updated_at"}


# --- runworkflow --owner ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # LocalRunner reads the vault from its own threads' connections
@pytest.mark.parametrize(("extra", "length"), [(["--owner", "bob"], 23), ([], 5)])
def test_runworkflow_reads_the_vault_of_owner_or_of_the_first_superuser(alice, bob, tmp_path, capsys, extra, length):
    (a_user, _), (b_user, _) = alice, bob
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    for owner, value in ((a_user, "a" * 11), (b_user, "b" * 23), (root, "r" * 5)):
        Secret.objects.create(owner=owner, name="KEY", value=value)
    definition = tmp_path / "key.yaml"
    definition.write_text('name: key\ntasks:\n  measure:\n    action: transform.jinja\n'
                          '    inputs: {value: "{{ secrets.KEY | length }}"}\n')

    with pytest.raises(SystemExit) as exited:
        call_command("runworkflow", str(definition), *extra)

    printed = capsys.readouterr().out
    assert exited.value.code == 0, printed
    assert f'"value": {length}' in printed


@pytest.mark.django_db
def test_runworkflow_refuses_an_unknown_owner(tmp_path, capsys):
    definition = tmp_path / "key.yaml"
    definition.write_text("name: key\ntasks:\n  hello: {run: echo hi}\n")

    with pytest.raises(SystemExit) as exited:
        call_command("runworkflow", str(definition), "--owner", "nobody")

    assert exited.value.code == 2
    assert "--owner: no user named 'nobody'" in capsys.readouterr().err

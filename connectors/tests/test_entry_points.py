"""An action from an installed package (connectors/tests/example_plugin, entry point `flowforge.actions`) is
listed by the API and runs like a built-in: in-process through `runworkflow`, and on a Celery worker."""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from automation.testing import wait_for_run
from connectors.registry import BUILTIN_ACTIONS, ENTRY_POINT_GROUP, ActionRegistry
from runs.models import TaskRun

INSTALL_HINT = "install it first: .venv/bin/pip install --no-deps ./connectors/tests/example_plugin"


@pytest.fixture(autouse=True)
def example_plugin_installed():
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert "example.ping" in names, f"the example plug-in is not installed; {INSTALL_HINT}"


@pytest.fixture
def api(client):
    client.force_login(get_user_model().objects.create_user("operator", password="pw"))
    return client


def test_the_entry_point_action_is_known_to_the_registry_without_being_listed_as_built_in():
    assert "example.ping" not in BUILTIN_ACTIONS
    registry = ActionRegistry()
    assert "example.ping" in registry
    assert registry.get_class("example.ping").__module__ == "flowforge_example_plugin"


def test_a_registry_without_entry_points_does_not_know_it():
    assert "example.ping" not in ActionRegistry(use_entry_points=False)


@pytest.mark.django_db
def test_the_entry_point_action_is_listed_by_the_api_with_its_schema(api):
    response = api.get("/api/actions/")

    assert response.status_code == 200
    ping = next(a for a in response.json() if a["name"] == "example.ping")
    assert ping["family"] == "example"
    assert ping["title"] == "Ping (example plug-in)"
    assert ping["input_schema"]["properties"] == {"message": {"type": "string", "description": "Any text"}}
    assert ping["input_schema"]["required"] == ["message"]
    assert ping["output_schema"]["properties"] == {"pong": {"type": "string"}}


@pytest.mark.django_db
def test_a_workflow_using_the_entry_point_action_runs_in_process(tmp_path, capsys):
    definition = tmp_path / "ping.yaml"
    definition.write_text(
        "name: ping\n"
        "tasks:\n"
        "  ping: {action: example.ping, inputs: {message: '{{ trigger.body.word }}'}}\n"
        "  shout:\n"
        "    action: transform.jinja\n"
        "    depends_on: [ping]\n"
        "    inputs: {value: '{{ steps.ping.output.pong | upper }}'}\n"
    )

    with pytest.raises(SystemExit) as exited:
        call_command("runworkflow", str(definition), "--input", '{"word": "marco"}')

    printed = capsys.readouterr().out
    assert exited.value.code == 0, printed
    assert "[SUCCESS] Task ping" in printed
    assert '"pong": "marco"' in printed
    assert '"value": "MARCO"' in printed


@pytest.mark.django_db
def test_the_entry_point_action_inputs_are_checked_when_the_definition_is_saved(api):
    response = api.post("/api/workflows/", {"definition": {
        "name": "bad ping", "tasks": {"ping": {"action": "example.ping", "inputs": {"message": 42}}}}},
        content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "tasks.ping.inputs.message", "message": "42 is not of type 'string'"}]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_workflow_using_the_entry_point_action_runs_on_a_worker(api, start_worker):
    start_worker("w1")
    created = api.post("/api/workflows/", {"definition": {
        "name": "ping on a worker", "tasks": {"ping": {"action": "example.ping",
                                                       "inputs": {"message": "{{ trigger.body.word }}"}}}}},
        content_type="application/json")
    assert created.status_code == 201, created.json()
    started = api.post(f"/api/workflows/{created.json()['id']}/run/", {"word": "polo"},
                       content_type="application/json")

    run = wait_for_run(started.json()["run_id"])

    task = TaskRun.objects.get(run=run, task_id="ping")
    assert (run.status, task.status) == ("succeeded", "succeeded"), task.error
    assert task.output == {"pong": "polo"}
    assert task.logs == "pong: polo"

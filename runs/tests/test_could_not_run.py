"""A task that could not run (unknown action, template error, invalid inputs) is named as such, apart from an
action that ran and failed: in the executor's result, on the task run, in the API, on the run page and the CLI."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from connectors.base import ActionConfig
from runs import services
from runs.executor import execute_attempt, template_context
from runs.models import TaskRun, WorkflowRun
from runs.states import FailureKind, TaskStatus
from workflows.definition import TaskSpec
from workflows.services import workflow_save

from . import fake_actions
from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice, staff  # noqa: F401 - fixtures


def attempt(action: str, inputs: dict, **task):
    spec = TaskSpec(id="t", action=action, inputs=inputs, **task)
    context = template_context(trigger={}, task_results={"a": {"output": {"name": "n"}, "status": "succeeded"}},
                               run={"id": 1})
    return execute_attempt(spec, template_context=context, registry=fake_actions.registry(), config=ActionConfig(),
                           run_id=1)


@pytest.mark.parametrize("action, inputs, task, kind, error", [
    ("test.gone", {}, {}, FailureKind.UNKNOWN_ACTION, "could not run: unknown action: 'test.gone'"),
    ("test.outcome", {"value": "{{ steps.a.output.nme }}"}, {}, FailureKind.TEMPLATE_ERROR,
     "could not run: template error: inputs.value: steps.a.output.nme is undefined"),
    ("test.outcome", {}, {"when": "{{ steps.a.output.nme }}"}, FailureKind.TEMPLATE_ERROR,
     "could not run: template error: when: steps.a.output.nme is undefined"),
    ("test.outcome", {"fail_times": "{{ steps.a.output.name }}"}, {}, FailureKind.INVALID_INPUTS,
     "could not run: invalid inputs: inputs.fail_times: "),
])
def test_a_task_that_could_not_run_says_why_and_never_calls_its_action(action, inputs, task, kind, error):
    fake_actions.CALLS.clear()
    result = attempt(action, inputs, retries=3, **task)
    assert result.status == TaskStatus.FAILED and result.failure == kind
    assert result.error.startswith(error), result.error
    assert result.could_not_run and not result.retryable
    assert fake_actions.CALLS["t"] == 0


def test_an_action_that_ran_and_failed_is_a_failure_not_a_could_not_run():
    result = attempt("test.outcome", {"fail": True})
    assert result.failure == FailureKind.ACTION_FAILED and not result.could_not_run
    assert result.error == "asked to fail (call 1)" and result.retryable


UNDEFINED = """name: typo
tasks:
  a: {action: test.outcome, inputs: {value: n}}
  b: {action: test.outcome, depends_on: [a], retries: 3, inputs: {value: "{{ steps.a.output.nme }}"}}
"""


@pytest.mark.django_db
def test_a_template_error_fails_the_task_once_and_the_api_and_run_page_say_it_could_not_run(
        alice, staff, broker_double, client):  # noqa: F811
    workflow = workflow_save(source=UNDEFINED, owner=alice)
    run = broker_double.step(services.run_create, workflow=workflow)
    broker_double.deliver_all()

    b = TaskRun.objects.get(run=run, task_id="b")
    assert (b.status, b.attempt, b.failure) == ("failed", 1, "template_error")  # retries: 3, yet no retry
    assert WorkflowRun.objects.get(id=run.id).status == "failed"

    api = APIClient()
    api.force_authenticate(alice)
    tasks = {t["task_id"]: t for t in api.get(f"/api/runs/{run.id}/").json()["tasks"]}
    assert tasks["b"]["error"] == "could not run: template error: inputs.value: steps.a.output.nme is undefined"

    client.force_login(staff)
    page = client.get(f"/admin/runs/workflowrun/{run.id}/change/").content.decode()
    assert 'data-failure="template_error"' in page
    assert "Could not run: template error (the action was never called)" in page


@pytest.mark.django_db
def test_the_command_line_prints_a_task_that_could_not_run(tmp_path, capsys):
    definition = tmp_path / "typo.yaml"
    definition.write_text("name: typo\ntasks:\n  a: {action: transform.jinja, inputs: {value: n}}\n"
                          "  b: {action: transform.jinja, depends_on: [a],"
                          " inputs: {value: '{{ steps.a.output.nme }}'}}\n")
    with pytest.raises(SystemExit) as exited:
        call_command("runworkflow", str(definition))
    printed = capsys.readouterr().out
    assert exited.value.code == 1, printed
    assert "[FAILED] Task b: could not run: template error: inputs.value: steps.a.output.nme is undefined" in printed

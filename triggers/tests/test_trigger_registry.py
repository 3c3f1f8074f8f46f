"""A new trigger type is one module plus one registry line: the test-only `tick` type (triggers/tests/tick_trigger.py)
is validated when a workflow is saved, scheduled on save, fired into a run and unscheduled on delete."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django_celery_beat.models import PeriodicTask

from runs.models import WorkflowRun
from triggers.registry import BUILTIN_TRIGGERS, FIRE_TASK, TriggerRegistry, default_registry
from triggers.tasks import fire_trigger
from workflows.trigger_specs import BUILTIN_TRIGGER_SPECS, trigger_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tick_registered():
    default_registry().register("tick", "triggers.tests.tick_trigger:TickHandler")
    yield
    default_registry().unregister("tick")


@pytest.fixture
def api(client):
    client.force_login(get_user_model().objects.create_user("ticker", password="pw"))
    return client


def save(api, *triggers):
    return api.post("/api/workflows/", {"definition": {
        "name": "ticking", "tasks": {"echo": {"action": "transform.jinja",
                                              "inputs": {"value": "{{ trigger.body.label }}"}}},
        "triggers": list(triggers)}}, content_type="application/json")


def test_the_built_in_types_are_listed_once_and_the_parser_asks_the_installed_registry():
    assert set(BUILTIN_TRIGGERS) == set(BUILTIN_TRIGGER_SPECS) == {"webhook", "cron", "poll", "manual"}
    assert trigger_catalog() is default_registry()
    assert "tick" not in TriggerRegistry(use_entry_points=False)


def test_a_registered_trigger_type_checks_its_own_keys_with_path_named_errors(api):
    response = save(api, {"type": "tick", "every": 0, "label": 5, "colour": "red"})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "triggers[0].colour", "message": "unknown key 'colour'"},
        {"path": "triggers[0].label", "message": "must be a string, got 5"},
        {"path": "triggers[0].every", "message": "must be a number >= 1, got 0"},
    ]


def test_a_type_no_one_registered_is_refused_naming_the_known_ones(api):
    default_registry().unregister("tick")

    response = save(api, {"type": "tick"})

    assert response.json()["errors"] == [{"path": "triggers[0].type",
                                          "message": "'tick' is not one of webhook, cron, poll, manual"}]


def test_saving_schedules_a_registered_type_and_a_fire_starts_a_run_that_deleting_stops(api):
    created = save(api, {"type": "manual"}, {"type": "tick", "every": 90, "label": "hello"})
    assert created.status_code == 201, created.json()
    workflow_id = created.json()["id"]

    (task,) = PeriodicTask.objects.filter(name__startswith=f"flowforge:{workflow_id}:")
    assert (task.name, task.task, task.interval.every) == (f"flowforge:{workflow_id}:tick:1", FIRE_TASK, 90)
    assert json.loads(task.kwargs) == {"workflow_id": workflow_id, "trigger_index": 1}

    fire_trigger(**json.loads(task.kwargs))

    run = WorkflowRun.objects.get(workflow_id=workflow_id)
    assert (run.trigger_kind, run.trigger, run.status) == ("tick", {"kind": "tick", "body": {"label": "hello"}},
                                                           "running")
    run.delete()  # a workflow with an unfinished run cannot be deleted
    assert api.delete(f"/api/workflows/{workflow_id}/").status_code == 204
    assert not PeriodicTask.objects.filter(name__startswith=f"flowforge:{workflow_id}:").exists()

"""`on_failure` (SPEC §9): a failed run starts its workflow's handler exactly once, with the failed tasks listed."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

from . import fake_actions
from .broker_double import broker_double  # noqa: F401 - fixture
from .operator_fixtures import alice, bob  # noqa: F401 - fixture

IMPORT = """
name: nightly import
on_failure: alert
tasks:
  fetch: {action: test.outcome}
  load: {action: test.outcome, depends_on: [fetch], inputs: {fail: true}}
  tidy: {action: test.outcome, inputs: {fail: true}}
  report: {action: test.outcome, depends_on: [load]}
"""
ALERT = """
name: alert
tasks:
  note: {action: test.outcome, inputs: {value: "{{ trigger.body.failed_tasks | length }}"}}
"""


def run_all(broker_double, workflow) -> WorkflowRun:  # noqa: F811
    run = broker_double.step(services.run_create, workflow=workflow)
    broker_double.deliver_all()
    return WorkflowRun.objects.get(id=run.id)


def handlers() -> list[WorkflowRun]:
    return list(WorkflowRun.objects.filter(trigger_kind="failure_handler").order_by("id"))


@pytest.mark.django_db
def test_a_failed_run_starts_its_on_failure_workflow_once_with_the_failed_tasks_listed(alice, broker_double,  # noqa: F811
                                                                                       settings):
    settings.PUBLIC_URL = "https://flows.example.com"
    workflow_save(source=ALERT, owner=alice)
    failed = run_all(broker_double, workflow_save(source=IMPORT, owner=alice))
    assert failed.status == "failed" and failed.failure_handled
    [handler] = handlers()
    assert handler.workflow.name == "alert" and handler.status == "succeeded"
    assert handler.trigger["body"] == {
        "run": {"id": failed.id, "workflow": "nightly import", "status": "failed",
                "url": f"https://flows.example.com/admin/runs/workflowrun/{failed.id}/change/"},
        "failed_tasks": [{"task_id": "load", "error": "asked to fail (call 1)"},
                         {"task_id": "tidy", "error": "asked to fail (call 1)"}],
    }
    assert TaskRun.objects.get(run=handler, task_id="note").output["value"] == 2


@pytest.mark.django_db
def test_a_finish_recorded_twice_starts_the_handler_once(alice, broker_double):  # noqa: F811
    workflow_save(source=ALERT, owner=alice)
    failed = run_all(broker_double, workflow_save(source=IMPORT, owner=alice))
    broker_double.step(services.run_finished_follow_up, run_id=failed.id)
    assert broker_double.step(services.run_failure_handle, run_id=failed.id) is None
    assert broker_double.step(services.sweep)["failure_handlers"] == 0
    assert len(handlers()) == 1


@pytest.mark.django_db
def test_a_succeeded_or_cancelled_run_starts_no_handler(alice, broker_double):  # noqa: F811
    workflow_save(source=ALERT, owner=alice)
    fine = run_all(broker_double, workflow_save(source="name: fine\non_failure: alert\ntasks:\n"
                                                       "  a: {action: test.outcome}\n", owner=alice))
    waits = run_all(broker_double, workflow_save(source="name: waits\non_failure: alert\ntasks:\n"
                                                        "  a: {action: flow.wait, inputs: {seconds: 3600}}\n",
                                                 owner=alice))
    broker_double.step(services.run_cancel, run_id=waits.id)
    broker_double.deliver_all()
    assert WorkflowRun.objects.get(id=fine.id).status == "succeeded"
    assert WorkflowRun.objects.get(id=waits.id).status == "cancelled"
    assert handlers() == []


@pytest.mark.django_db
def test_a_failure_handlers_own_failure_does_not_start_it_again(alice, broker_double):  # noqa: F811
    workflow_save(source="name: alert\non_failure: alert\ntasks:\n  note: {action: test.outcome,"
                         " inputs: {fail: true}}\n", owner=alice)
    run_all(broker_double, workflow_save(source=IMPORT, owner=alice))
    [handler] = handlers()
    assert handler.status == "failed"
    assert WorkflowRun.objects.count() == 2


@pytest.mark.django_db
def test_an_on_failure_name_of_another_owner_starts_nothing(alice, bob, broker_double, caplog):  # noqa: F811
    workflow_save(source=ALERT, owner=bob)
    failed = run_all(broker_double, workflow_save(source=IMPORT, owner=alice))
    assert failed.status == "failed" and handlers() == []
    assert f"run {failed.id} failed; its on_failure handler was not started: no workflow named 'alert' of this " \
           "owner" in caplog.text


@pytest.mark.django_db
def test_an_on_failure_workflow_created_after_the_definition_is_found_at_run_time(alice, broker_double):  # noqa: F811
    importer = workflow_save(source=IMPORT, owner=alice)  # `alert` does not exist yet: allowed
    workflow_save(source=ALERT, owner=alice)
    run_all(broker_double, importer)
    assert len(handlers()) == 1


@pytest.mark.django_db
def test_the_sweep_starts_the_handler_of_a_failed_run_whose_follow_up_was_lost(alice, broker_double,  # noqa: F811
                                                                               monkeypatch):
    workflow_save(source=ALERT, owner=alice)
    with monkeypatch.context() as patched:
        patched.setattr(services, "run_finished_follow_up", lambda *, run_id: None)
        failed = run_all(broker_double, workflow_save(source=IMPORT, owner=alice))
    assert not failed.failure_handled and handlers() == []
    assert broker_double.step(services.sweep)["failure_handlers"] == 1
    assert broker_double.step(services.sweep)["failure_handlers"] == 0
    broker_double.deliver_all()
    assert [h.status for h in handlers()] == ["succeeded"]


@pytest.mark.django_db(transaction=True)
def test_two_follow_ups_of_the_same_failure_at_once_start_the_handler_once(alice, monkeypatch):  # noqa: F811
    monkeypatch.setattr("workflows.services.default_registry", fake_actions.registry)
    monkeypatch.setattr(services, "_send", lambda *args, **options: None)  # no worker: the runs stay queued
    monkeypatch.setattr(services, "_send_many", lambda *args: None)
    alert = workflow_save(source=ALERT, owner=alice)
    importer = workflow_save(source=IMPORT, owner=alice)
    failed = WorkflowRun.objects.create(workflow=importer, workflow_version_id=importer.current_version_id,
                                        status="failed")
    TaskRun.objects.create(run=failed, task_id="load", status="failed", error="boom")
    barrier = threading.Barrier(4)
    started = []

    def follow_up():
        try:
            barrier.wait()
            started.append(services.run_failure_handle(run_id=failed.id))
        finally:
            connection.close()

    threads = [threading.Thread(target=follow_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([run for run in started if run is not None]) == 1
    [handler] = WorkflowRun.objects.filter(workflow=alert)
    assert handler.trigger["body"]["failed_tasks"] == [{"task_id": "load", "error": "boom"}]

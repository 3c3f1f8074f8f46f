"""The example workflows of the repository's examples/ folder (the ones `bin/start` imports): every one is accepted
by the real parser, and the control-flow examples do what their comments say on real workers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.auth import get_user_model

from automation.testing import wait_for, wait_for_run
from runs.models import TaskRun, WorkflowRun
from workflows.definition import InvalidDefinition
from workflows.models import Workflow
from workflows.services import definition_validate, workflow_save

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKFLOW_FILES = sorted(p for p in EXAMPLES.iterdir()
                        if p.suffix in (".yaml", ".yml", ".json") and p.name != "schedule.yaml")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_example_workflow_is_accepted_by_the_parser(path):
    if path.name.startswith("invalid-"):
        with pytest.raises(InvalidDefinition):
            definition_validate(path.read_text())
    else:
        definition_validate(path.read_text())


def test_the_on_failure_example_names_an_alert_workflow_that_is_an_example_too():
    names = {yaml.safe_load(p.read_text())["name"]: yaml.safe_load(p.read_text()) for p in WORKFLOW_FILES}
    failing = [d for d in names.values() if d.get("on_failure")]
    assert failing, "no example shows on_failure"
    assert all(d["on_failure"] in names for d in failing)


def test_the_for_each_approval_example_maps_a_task_and_asks_for_approval():
    definition = yaml.safe_load((EXAMPLES / "for-each-approval.yaml").read_text())
    tasks = definition["tasks"]
    assert any("for_each" in t and "max_parallel" in t for t in tasks.values())
    approvals = [task_id for task_id, t in tasks.items() if t.get("action") == "flow.approval"]
    assert approvals and f"run.resume_urls.{approvals[0]}" in yaml.safe_dump(tasks)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_failing_import_example_writes_one_alert_file_through_its_alert_workflow(client, start_worker):
    owner = get_user_model().objects.create_user("ops", password="pw")
    for name in ("on-failure-alert.yaml", "on-failure-import.yaml"):
        workflow_save(source=(EXAMPLES / name).read_text(), owner=owner)
    start_worker("w1", concurrency=2)
    client.force_login(owner)
    failing = Workflow.objects.get(name="Import that fails", owner=owner)
    started = client.post(f"/api/workflows/{failing.id}/run/", {}, content_type="application/json")
    assert started.status_code == 202
    run = wait_for_run(started.json()["run_id"])
    assert run.status == "failed"

    alert = wait_for(lambda: WorkflowRun.objects.filter(workflow__name="Alert on failure").first(),
                     message="the alert run")
    assert wait_for_run(alert.id).status == "succeeded"
    written = Path(settings.AUTOMATION_FILES_ROOT) / "alerts" / f"run-{run.id}.txt"
    text = written.read_text()
    assert f"Import that fails run {run.id} failed" in text and "- read_export:" in text
    assert WorkflowRun.objects.filter(workflow__name="Alert on failure").count() == 1
    assert TaskRun.objects.get(run=alert, task_id="alert").status == "succeeded"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_invoice_example_waits_for_the_approval_in_its_email_then_files_every_invoice(client, start_worker):
    owner = get_user_model().objects.create_user("finance", password="pw")
    workflow = workflow_save(source=(EXAMPLES / "for-each-approval.yaml").read_text(), owner=owner)
    # The e-mail is not sent anywhere; the test reads its body as the task run recorded it (rendered inputs).
    start_worker("w1", concurrency=2, EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend")
    invoices = [{"id": "A-1", "amount": 120}, {"id": "A-2", "amount": 75}, {"id": "A-3", "amount": 5}]
    accepted = client.post(f"/hooks/{workflow.webhook_token}", {"invoices": invoices}, content_type="application/json")
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]

    def approval_waiting():
        tasks = list(TaskRun.objects.filter(run_id=run_id).values_list("task_id", "status", "error"))
        assert not any(status == "failed" for _, status, _ in tasks), tasks
        return TaskRun.objects.filter(run_id=run_id, task_id="approve", status="waiting").first()

    approve = wait_for(approval_waiting, message="the approval to wait")
    ask = TaskRun.objects.get(run_id=run_id, task_id="ask", item_index=None)
    mail = ask.inputs["subject"] + "\n" + ask.inputs["body"]
    assert "3 invoices, 200 in total" in mail
    resume_url = next(word for word in mail.split() if "/resume/" in word)
    assert not Path(settings.AUTOMATION_FILES_ROOT, "invoices", str(run_id)).exists()

    answered = client.post("/" + resume_url.split("://", 1)[1].split("/", 1)[1],
                           {"approved": True, "comment": "ok"}, content_type="application/json")
    assert answered.status_code == 200, answered.content
    run = wait_for_run(run_id)
    assert run.status == "succeeded", list(TaskRun.objects.filter(run_id=run_id).values("task_id", "status", "error"))
    filed = sorted(Path(settings.AUTOMATION_FILES_ROOT, "invoices", str(run_id)).iterdir())
    assert [p.name for p in filed] == ["0-A-1.json", "1-A-2.json", "2-A-3.json"]
    assert json.loads(filed[1].read_text())["invoice"] == invoices[1]
    assert TaskRun.objects.get(run_id=run_id, task_id="done", item_index=None).output["value"] == "3 invoices filed"
    approve.refresh_from_db()
    assert approve.status == "succeeded" and approve.output["approved"] is True and approve.output["comment"] == "ok"

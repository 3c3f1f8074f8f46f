"""Approving a waiting flow.approval task from the admin run page in real headless Chromium, with a real Celery
worker carrying the run on afterwards (PostgreSQL + Redis)."""
from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User

from automation.testing import CHROMIUM, wait_for, wait_for_run
from runs import services
from runs.models import TaskRun
from runs.tests.test_admin_browser import browser_page  # noqa: F401
from workflows.services import workflow_save


pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]

APPROVAL = """
name: release
tasks:
  approve: {action: flow.approval, inputs: {message: "Ship version 2?"}}
  ship: {action: transform.jinja, depends_on: [approve], inputs: {value: "shipped ({{ steps.approve.output.by }})"}}
"""


def test_an_operator_approves_a_waiting_task_on_the_run_page_and_the_run_carries_on(
        live_server, browser_page, start_worker, screenshots_dir):
    from playwright.sync_api import expect

    operator = User.objects.create_user("operator", password="pw-operator", is_staff=True, is_superuser=True)
    start_worker("w1")
    run = services.run_create(workflow=workflow_save(source=APPROVAL, owner=operator))
    wait_for(lambda: TaskRun.objects.filter(run=run, task_id="approve", status="waiting").exists(), timeout=20,
             message="the approval to wait")
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/?next=/admin/runs/workflowrun/{run.id}/change/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw-operator")
    page.click("input[type=submit]")

    approval = page.locator("#ff-approvals .ff-approval[data-task=approve]")
    expect(approval).to_contain_text("Ship version 2?")
    page.screenshot(path=str(screenshots_dir / "run-page-approval.png"), full_page=True)
    approval.locator("button[value=approve]").click()

    expect(page.locator("ul.messagelist")).to_contain_text("Task approve approved.")
    assert wait_for_run(run.id, timeout=20).status == "succeeded"
    approve = TaskRun.objects.get(run=run, task_id="approve")
    assert approve.output == {"approved": True, "by": "operator"}
    assert TaskRun.objects.get(run=run, task_id="ship").output == {"value": "shipped (operator)"}
    expect(page.locator("#ff-run-status")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#ff-approvals")).to_have_count(0)

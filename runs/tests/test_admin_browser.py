"""The operator's path in real headless Chromium: log in, see the graph, Run now, watch the run page reach
`succeeded` without reloading (the test plays the worker by writing rows), open a task's logs."""
from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from automation.testing import CHROMIUM
from runs.models import TaskRun, WorkflowRun
from runs.tests.operator_fixtures import PIPELINE
from workflows.services import workflow_save


pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def browser_page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(10_000)
    yield page
    page.close()


def play_worker(run: WorkflowRun, statuses: dict[str, str], run_status: str) -> None:
    now = max(timezone.now(), run.created_at + timedelta(seconds=6))
    for index, (task_id, status) in enumerate(statuses.items()):
        done = status == "succeeded"
        TaskRun.objects.update_or_create(run=run, task_id=task_id, defaults={
            "status": status, "attempt": 1 if status != "pending" else 0,
            "started_at": now - timedelta(seconds=5 - index) if status != "pending" else None,
            "finished_at": now if done else None,
            "output": {"stdout": f"{task_id} ok\n", "exit_code": 0} if done else {},
            "logs": f"[{task_id}] hello from the worker\n" if status != "pending" else "",
        })
    WorkflowRun.objects.filter(id=run.id).update(
        status=run_status, started_at=now - timedelta(seconds=6), finished_at=now if run_status == "succeeded" else None)


def test_an_operator_runs_a_workflow_and_watches_it_succeed(live_server, browser_page, screenshots_dir):
    from playwright.sync_api import expect

    User.objects.create_user("operator", password="pw-operator", is_staff=True, is_superuser=True)
    workflow = workflow_save(source=PIPELINE)
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/?next=/admin/workflows/workflow/{workflow.id}/change/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw-operator")
    page.click("input[type=submit]")

    graph = page.locator("svg.ff-graph")
    expect(graph).to_be_visible()
    expect(graph.locator("g.ff-node")).to_have_count(4)
    expect(page.locator("#ff-webhook-url")).to_contain_text(f"{live_server.url}/hooks/")
    page.screenshot(path=str(screenshots_dir / "workflow-page.png"), full_page=True)

    page.click("a.ff-run-now")
    page.fill("#id_payload", '{"user_id": 7}')
    page.click("#ff-run-now-form input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/runs/workflowrun/\d+/change/$"))
    run = WorkflowRun.objects.get(workflow=workflow)
    assert run.trigger["body"] == {"user_id": 7}
    expect(page.locator("#ff-run-status")).to_have_text("running")  # started as it was created
    page.evaluate("window.__notReloaded = true")

    play_worker(run, {"task_A": "succeeded", "task_B": "running", "task_D": "running", "task_E": "pending"},
                "running")
    expect(page.locator("#ff-run-status")).to_have_text("running")
    page.locator('[data-task="task_A"] summary', has_text="Logs").click()
    expect(page.locator('[data-task="task_A"] pre.ff-log')).to_contain_text("hello from the worker")

    play_worker(run, {task: "succeeded" for task in ("task_A", "task_B", "task_D", "task_E")}, "succeeded")
    expect(page.locator("#ff-run-status")).to_have_text("succeeded")
    assert page.evaluate("window.__notReloaded") is True
    # The logs opened while the run was going stay open across the live updates.
    expect(page.locator('[data-task="task_A"] pre.ff-log')).to_be_visible()
    expect(page.locator("svg.ff-graph g.ff-status-succeeded")).to_have_count(4)
    expect(page.locator("#ff-run-live")).to_have_attribute("data-final", "1")

    page.locator('[data-task="task_E"] summary', has_text="Logs").click()
    expect(page.locator('[data-task="task_E"] pre.ff-log')).to_contain_text("[task_E] hello from the worker")
    page.screenshot(path=str(screenshots_dir / "run-page.png"), full_page=True)

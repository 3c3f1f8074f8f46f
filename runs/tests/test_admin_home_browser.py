"""The admin home in headless Chromium: the dashboard spans the page with one-line headers, the DAG fits its
panel, and the Run-now banner follows the run instead of saying "queued" forever."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import PIPELINE, make_run
from runs.tests.test_admin_browser import CHROMIUM, browser_page, play_worker  # noqa: F401
from workflows.services import workflow_save

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="Debian's chromium is missing")]

WIDE = """
name: "Wide"
tasks:
  collect_the_numbers_from_all_the_regional_databases: {run: "echo a"}
  build: {run: "echo b", depends_on: [collect_the_numbers_from_all_the_regional_databases]}
  send: {run: "echo c", depends_on: [build]}
  notify_everyone_on_the_long_named_channel: {run: "echo d", depends_on: [send]}
  audit: {run: "echo e", depends_on: [collect_the_numbers_from_all_the_regional_databases,
                                     notify_everyone_on_the_long_named_channel]}
"""


def log_in(page, url: str, next_path: str) -> None:
    User.objects.create_user("operator", password="pw-operator", is_staff=True, is_superuser=True)
    page.goto(f"{url}/admin/login/?next={next_path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw-operator")
    page.click("input[type=submit]")


def test_the_dashboard_uses_the_page_width_and_its_headers_stay_on_one_line(live_server, browser_page):
    workflow = workflow_save(source=PIPELINE)
    make_run(workflow, "failed", {"task_A": "succeeded", "task_B": "failed"})
    page = browser_page
    log_in(page, live_server.url, "/admin/")
    dashboard = page.locator("#ff-dashboard").bounding_box()
    assert dashboard["width"] > 0.6 * 1280
    heights = page.locator("#ff-dashboard th").evaluate_all("cells => cells.map(c => c.getBoundingClientRect().height)")
    assert heights and max(heights) < 30, heights  # one line of text, not a letter per line
    page.screenshot(path="/tmp/w2adm_shots/browser-index.png", full_page=True)


def test_the_graph_of_a_wide_workflow_fits_its_panel(live_server, browser_page):
    workflow = workflow_save(source=WIDE)
    page = browser_page
    log_in(page, live_server.url, f"/admin/workflows/workflow/{workflow.id}/change/")
    svg = page.locator("svg.ff-graph").bounding_box()
    fieldset = page.locator("fieldset", has=page.locator("svg.ff-graph")).bounding_box()
    assert svg["x"] >= fieldset["x"] and svg["x"] + svg["width"] <= fieldset["x"] + fieldset["width"] + 1


def test_the_run_now_banner_follows_the_run_to_its_end(live_server, browser_page):
    from playwright.sync_api import expect

    workflow = workflow_save(source=PIPELINE)
    page = browser_page
    log_in(page, live_server.url, f"/admin/workflows/workflow/{workflow.id}/run/")
    page.click("#ff-run-now-form input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/runs/workflowrun/\d+/change/$"))
    run = WorkflowRun.objects.get(workflow=workflow)
    banner = page.locator(f".messagelist .ff-run-{run.id}")
    expect(banner).to_have_text(f"Run {run.id} running.")  # started as it was created
    play_worker(run, {task: "succeeded" for task in ("task_A", "task_B", "task_D", "task_E")}, "succeeded")
    expect(banner).to_have_text(f"Run {run.id} succeeded.")
    expect(banner).to_have_class(re.compile(r"\bsuccess\b"))

"""The builder in real headless Chromium against the live server, with a real Celery worker for the run."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from workflows.models import Workflow

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PIPELINE_EDGES = {("task_A", "task_B"), ("task_A", "task_D"), ("task_B", "task_C"), ("task_C", "task_E"),
                  ("task_D", "task_E")}
COMMANDS = {"task_A": "echo 'Fetching data'", "task_B": "echo 'Cleaning data'",
            "task_C": "echo 'Generating report'", "task_D": "echo 'Archiving raw data'", "task_E": "echo 'Finalizing'"}
# Where each task is dropped, in node widths (columns) and heights (rows) from task_B, the first one dropped: the
# canvas fits its view to the first node, then the test zooms out so that the whole graph stays in view.
GRID = {"task_B": (0, 0), "task_C": (1.4, 0), "task_A": (-1.4, 1.6), "task_D": (0, 3.2), "task_E": (1.4, 3.2),
        "check_health": (-1.4, 4.8)}
RUN_DEADLINE_MS = 30_000


def node(page: Page, task_id: str):
    return page.locator(f'.react-flow__node[data-id="{task_id}"]')


def drop_action(page: Page, action: str, task_id: str, at: tuple[float, float] | None = None) -> None:
    """Drag `action` from the library onto the canvas (at a page point, else its middle) and name the node `task_id`."""
    count = page.locator(".react-flow__node").count()
    canvas = page.get_by_test_id("canvas")
    box = canvas.bounding_box()
    x, y = at or (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_test_id(f"action-{action}").drag_to(canvas, target_position={"x": x - box["x"], "y": y - box["y"]})
    expect(page.locator(".react-flow__node")).to_have_count(count + 1)
    node_id = page.get_by_test_id("node-id")
    node_id.fill(task_id)
    node_id.press("Enter")
    expect(node(page, task_id)).to_be_visible()


def zoom_out_around(page: Page, task_id: str, below: float) -> None:
    """Wait for the canvas to centre the first node (fitView), then wheel-zoom out around it below `below`."""
    page.wait_for_function("""id => {
        const n = document.querySelector(`.react-flow__node[data-id="${id}"]`).getBoundingClientRect();
        const c = document.querySelector('[data-testid="canvas"]').getBoundingClientRect();
        return Math.abs(n.x + n.width / 2 - (c.x + c.width / 2)) < 2 && Math.abs(n.y + n.height / 2 - (c.y + c.height / 2)) < 2;
    }""", arg=task_id)
    page.mouse.move(*center(node(page, task_id)))
    scale = "parseFloat(/scale\\(([\\d.]+)\\)/.exec(document.querySelector('.react-flow__viewport').style.transform)[1])"
    for _ in range(20):
        page.mouse.wheel(0, 100)
        if page.evaluate(scale) < below:
            break
    page.wait_for_function(f"{scale} < {below}")


def center(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box, f"{locator} has no box"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def connect(page: Page, source: str, target: str) -> None:
    """Drag from the source handle (right) of `source` to the target handle (left) of `target`."""
    sx, sy = center(node(page, source).locator(".react-flow__handle.source"))
    tx, ty = center(node(page, target).locator(".react-flow__handle.target"))
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=5)
    page.mouse.move(tx, ty, steps=5)
    page.mouse.up()


def dom_edges(page: Page) -> set[tuple[str, str]]:
    labels = page.locator(".react-flow__edge").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
    return {tuple(re.fullmatch(r"Edge from (\w+) to (\w+)", label).groups()) for label in labels}


def dom_nodes(page: Page) -> set[str]:
    return set(page.locator(".react-flow__node").evaluate_all("els => els.map(e => e.dataset.id)"))


def saved_edges(definition: dict) -> set[tuple[str, str]]:
    return {(dep, task_id) for task_id, task in definition["tasks"].items() for dep in task.get("depends_on", [])}


def test_a_pipeline_built_by_hand_saves_reloads_refuses_a_cycle_and_runs_green(page, live_server, start_worker,
                                                                              screenshots_dir):
    start_worker("w1", concurrency=2)
    page.goto("/builder/")
    expect(page.get_by_test_id("action-shell.run")).to_be_visible()
    expect(page.get_by_test_id("save")).to_be_enabled()
    page.get_by_test_id("workflow-name").fill("Data Pipeline (builder)")

    # Five shell.run nodes dragged from the library, each given its id and command through the form.
    drop_action(page, "shell.run", "task_B")
    zoom_out_around(page, "task_B", below=0.8)
    first = node(page, "task_B").bounding_box()
    for task_id in ("task_C", "task_A", "task_D", "task_E"):
        column, row = GRID[task_id]
        drop_action(page, "shell.run", task_id, at=(first["x"] + first["width"] * (column + 0.5),
                                                    first["y"] + first["height"] * (row + 0.5)))
    for task_id, command in COMMANDS.items():
        node(page, task_id).click()
        page.get_by_test_id("field-command").fill(command)
    for source, target in sorted(PIPELINE_EDGES):
        connect(page, source, target)
    expect(page.locator(".react-flow__edge")).to_have_count(len(PIPELINE_EDGES))
    assert dom_edges(page) == PIPELINE_EDGES

    # The shell.run form: its execution settings too.
    node(page, "task_A").click()
    expect(page.get_by_test_id("node-id")).to_have_value("task_A")
    page.get_by_test_id("task-retries").fill("2")
    page.get_by_test_id("task-timeout").fill("60")

    # An http.request node, configured through the form generated from its schema, checking the server's health.
    column, row = GRID["check_health"]
    drop_action(page, "http.request", "check_health", at=(first["x"] + first["width"] * (column + 0.5),
                                                           first["y"] + first["height"] * (row + 0.5)))
    page.get_by_test_id("field-url").fill(f"{live_server.url}/healthz")
    page.get_by_test_id("field-method").select_option(label="GET")
    page.get_by_test_id("field-timeout").fill("10")
    page.get_by_test_id("field-expected_status").fill("200")
    connect(page, "task_E", "check_health")
    expect(page.locator(".react-flow__edge")).to_have_count(len(PIPELINE_EDGES) + 1)

    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "true")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "false")
    expect(page).to_have_url(re.compile(r"/builder/\d+/$"))

    workflow = Workflow.objects.get(name="Data Pipeline (builder)")
    tasks = workflow.definition["tasks"]
    all_edges = PIPELINE_EDGES | {("task_E", "check_health")}
    assert saved_edges(workflow.definition) == all_edges
    assert {task_id: tasks[task_id]["inputs"]["command"] for task_id in COMMANDS} == COMMANDS
    assert all(tasks[task_id]["action"] == "shell.run" for task_id in COMMANDS)
    assert (tasks["task_A"]["retries"], tasks["task_A"]["timeout"]) == (2, 60)
    assert tasks["check_health"]["action"] == "http.request"
    assert tasks["check_health"]["inputs"] == {"url": f"{live_server.url}/healthz", "method": "GET", "timeout": 10,
                                               "expected_status": 200}

    # Reloaded, the page shows the same graph, laid out again.
    page.reload()
    expect(page.locator(".react-flow__node")).to_have_count(len(COMMANDS) + 1)
    expect(page.locator(".react-flow__edge")).to_have_count(len(all_edges))
    assert dom_nodes(page) == set(COMMANDS) | {"check_health"}
    assert dom_edges(page) == all_edges
    node(page, "check_health").click()
    expect(page.get_by_test_id("field-url")).to_have_value(f"{live_server.url}/healthz")

    # task_E -> task_A would close the cycle task_A -> ... -> task_E -> task_A: refused, and said so.
    connect(page, "task_E", "task_A")
    expect(page.get_by_test_id("cycle-error")).to_be_visible()
    expect(page.get_by_test_id("cycle-error")).to_contain_text("cycle")
    expect(page.locator(".react-flow__edge")).to_have_count(len(all_edges))
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "false")
    page.screenshot(path=str(screenshots_dir / "builder-cycle.png"))

    # Run on the real worker: every node turns green.
    page.get_by_test_id("cycle-error").get_by_role("button", name="Dismiss").click()
    page.get_by_test_id("run").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "succeeded", timeout=RUN_DEADLINE_MS)
    for task_id in dom_nodes(page):
        expect(node(page, task_id)).to_have_attribute("data-status", "succeeded")
    node(page, "check_health").click()
    expect(page.get_by_test_id("task-run")).to_have_attribute("data-status", "succeeded")
    page.screenshot(path=str(screenshots_dir / "builder.png"))
    assert page.js_errors == []


def test_server_validation_errors_are_shown_on_the_offending_node(page):
    page.goto("/builder/")
    page.get_by_test_id("add-http.request").click()
    expect(node(page, "http_request")).to_be_visible()
    page.get_by_test_id("save").click()

    expect(page.get_by_test_id("errors")).to_contain_text("http_request")
    expect(page.get_by_test_id("node-error-http_request")).to_contain_text("url")
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "true")
    assert not Workflow.objects.exists()
    assert page.js_errors == []

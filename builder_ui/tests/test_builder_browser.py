"""The builder in real headless Chromium against the live server, with a real Celery worker for the run."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from connectors.models import ConnectedAccount
from connectors.secrets import secret_set
from workflows.models import Workflow
from workflows.services import workflow_save

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PIPELINE_EDGES = {("task_A", "task_B"), ("task_A", "task_D"), ("task_B", "task_C"), ("task_C", "task_E"),
                  ("task_D", "task_E")}
COMMANDS = {"task_A": "echo 'Fetching data'", "task_B": "echo 'Cleaning data'",
            "task_C": "echo 'Generating report'", "task_D": "echo 'Archiving raw data'", "task_E": "echo 'Finalizing'"}
# Where each task is dropped, in node widths (columns) and heights (rows) from task_B, the first one dropped (in the
# middle of the canvas); the test zooms out around it first so that the whole graph stays in view.
GRID = {"task_B": (0, 0), "task_C": (1.4, 0), "task_A": (-1.4, 1.6), "task_D": (0, 3.2), "task_E": (1.4, 3.2),
        "check_health": (-1.4, 4.8)}
RUN_DEADLINE_MS = 30_000
CYCLE_NOTICE_MS = 6_000  # src/notice.ts


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


SCALE = "parseFloat(/scale\\(([\\d.]+)\\)/.exec(document.querySelector('.react-flow__viewport').style.transform)[1])"


def zoom_out_around(page: Page, task_id: str, below: float) -> None:
    """Wheel-zoom the canvas out around a node until the zoom is below `below`."""
    expect(node(page, task_id)).to_be_visible()
    page.mouse.move(*center(node(page, task_id)))
    for _ in range(20):
        page.mouse.wheel(0, 100)
        if page.evaluate(SCALE) < below:
            break
    page.wait_for_function(f"{SCALE} < {below}")


def zoom_out_until_all_visible(page: Page) -> None:
    canvas = page.get_by_test_id("canvas").bounding_box()

    def all_visible() -> bool:
        boxes = [n.bounding_box() for n in page.locator(".react-flow__node").all()]
        return all(b["x"] >= canvas["x"] and b["x"] + b["width"] <= canvas["x"] + canvas["width"]
                   and b["y"] >= canvas["y"] + 50 and b["y"] + b["height"] <= canvas["y"] + canvas["height"] - 160
                   for b in boxes)  # clear of the notice (top) and the minimap (bottom)

    for _ in range(10):
        if all_visible():
            return
        if page.locator(".react-flow__controls-zoomout").is_disabled():
            break
        before = page.evaluate(SCALE)
        page.locator(".react-flow__controls-zoomout").click()
        page.wait_for_function(f"{SCALE} < {before}")
    assert all_visible(), (canvas, [n.bounding_box() for n in page.locator(".react-flow__node").all()])


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

    # Fitted to the view at a readable zoom: five ranks do not fit a 1440 px window at 0.7, so it shows the graph
    # from its start and the user zooms out to see the rest.
    assert page.evaluate(SCALE) >= 0.7
    canvas = page.get_by_test_id("canvas").bounding_box()
    assert canvas["x"] < center(node(page, "task_A"))[0] < canvas["x"] + canvas["width"] / 3
    zoom_out_until_all_visible(page)
    node(page, "check_health").click()
    expect(page.get_by_test_id("field-url")).to_have_value(f"{live_server.url}/healthz")

    # task_E -> task_A would close the cycle task_A -> ... -> task_E -> task_A: refused, and said so.
    connect(page, "task_E", "task_A")
    expect(page.get_by_test_id("cycle-error")).to_be_visible()
    expect(page.get_by_test_id("cycle-error")).to_contain_text("cycle")
    expect(page.locator(".react-flow__edge")).to_have_count(len(all_edges))
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "false")
    page.screenshot(path=str(screenshots_dir / "builder-cycle.png"))

    # The notice goes away by itself.
    expect(page.get_by_test_id("cycle-error")).to_be_hidden(timeout=CYCLE_NOTICE_MS + 4_000)

    # Run on the real worker: every node turns green.
    page.get_by_test_id("run").click()
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "succeeded", timeout=RUN_DEADLINE_MS)
    for task_id in dom_nodes(page):
        expect(node(page, task_id)).to_have_attribute("data-status", "succeeded")
    node(page, "check_health").click()
    expect(page.get_by_test_id("task-run")).to_have_attribute("data-status", "succeeded")
    page.screenshot(path=str(screenshots_dir / "builder.png"))

    # "Run #N" opens that run's page (the admin's, in a new tab).
    run = workflow.runs.get()
    link = page.get_by_test_id("run-link")
    expect(link).to_have_text(f"Run #{run.id}")
    with page.context.expect_page() as opened:
        link.click()
    run_page = opened.value
    run_page.wait_for_load_state()
    assert run_page.url == f"{live_server.url}/admin/runs/workflowrun/{run.id}/change/"
    expect(run_page.locator("body")).to_contain_text(f"Run {run.id} of Data Pipeline (builder)")
    expect(run_page.locator("body")).to_contain_text("check_health")
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


def test_a_node_dropped_from_the_library_lands_where_it_was_dropped(page):
    page.goto("/builder/")
    expect(page.get_by_test_id("save")).to_be_enabled()
    box = page.get_by_test_id("canvas").bounding_box()
    scale = page.evaluate(SCALE)

    # Off-centre on the empty canvas: the view neither fits nor moves to the new node.
    drop_at = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
    drop_action(page, "shell.run", "first", at=drop_at)
    assert_centred_on(node(page, "first"), drop_at)
    assert page.evaluate(SCALE) == scale

    # Zoomed out and panned, near a corner.
    zoom_out_around(page, "first", below=0.7)
    drop_at = (box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.2)
    drop_action(page, "http.request", "second", at=drop_at)
    assert_centred_on(node(page, "second"), drop_at)
    assert page.js_errors == []


def assert_centred_on(locator, point: tuple[float, float], tolerance: float = 3.0) -> None:
    x, y = center(locator)
    assert abs(x - point[0]) <= tolerance and abs(y - point[1]) <= tolerance, (x, y, point)


def test_template_completion_offers_upstream_outputs_and_secrets_in_fields_of_any_type(page, builder_user):
    secret_set(owner_id=builder_user.id, name="API_KEY", value="s3cret")
    workflow = workflow_save(owner=builder_user, source={"name": "Completion", "tasks": {
        "fetch": {"action": "http.request", "inputs": {"url": "https://example.com/"}},
        "shape": {"action": "transform.jinja", "inputs": {"value": ""}, "depends_on": ["fetch"]},
        "elsewhere": {"run": "echo unrelated"},
    }})
    page.goto(f"/builder/{workflow.id}/")
    node(page, "shape").click()
    value = page.get_by_test_id("field-value")  # transform.jinja's `value` has no type: "any"

    value.fill("{{ ste")
    expect(page.get_by_test_id("suggestion-steps.fetch.output")).to_be_visible()
    expect(page.get_by_test_id("suggestion-steps.fetch.status")).to_be_visible()
    expect(page.get_by_test_id("suggestions")).not_to_contain_text("elsewhere")
    page.get_by_test_id("suggestion-steps.fetch.output").click()
    expect(value).to_have_value("{{ steps.fetch.output }}")

    # The { } button opens the list at the caret; the caller's secrets are offered by name.
    value.press("End")
    value.press_sequentially(" ")
    page.locator(".ff-template:has([data-testid=field-value]) .ff-template-insert").click()
    value.press_sequentially("sec")
    expect(value).to_have_value(re.compile(r"\{\{ sec"))  # every key typed before the suggestion is taken
    page.get_by_test_id("suggestion-secrets.API_KEY").click()
    expect(value).to_have_value("{{ steps.fetch.output }} {{ secrets.API_KEY }}")

    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "false")
    workflow.refresh_from_db()
    assert workflow.definition["tasks"]["shape"]["inputs"]["value"] == "{{ steps.fetch.output }} {{ secrets.API_KEY }}"
    assert page.js_errors == []


def test_a_key_typed_right_after_taking_a_suggestion_lands_after_the_expression_even_in_a_slow_frame(
        page, builder_user):
    workflow = workflow_save(owner=builder_user, source={"name": "Caret", "tasks": {
        "fetch": {"action": "http.request", "inputs": {"url": "https://example.com/"}},
        "shape": {"action": "transform.jinja", "inputs": {"value": "A  B"}, "depends_on": ["fetch"]},
    }})
    page.goto(f"/builder/{workflow.id}/")
    node(page, "shape").click()
    value = page.get_by_test_id("field-value")
    value.click()
    for key in ("Home", "ArrowRight", "ArrowRight"):  # the caret between the two spaces
        value.press(key)
    value.press_sequentially("{{ ste")
    expect(page.get_by_test_id("suggestion-steps.fetch.output")).to_be_visible()

    page.evaluate("window.requestAnimationFrame = () => 0")  # a busy browser: the next frame comes late
    page.get_by_test_id("suggestion-steps.fetch.output").click()
    value.press_sequentially("!")
    expect(value).to_have_value("A {{ steps.fetch.output }}! B")

    page.locator(".ff-template:has([data-testid=field-value]) .ff-template-insert").click()
    value.press_sequentially("x")
    expect(value).to_have_value("A {{ steps.fetch.output }}!{{ x B")
    assert page.js_errors == []


def test_the_cycle_notice_goes_away_when_the_graph_changes(page, builder_user):
    workflow = workflow_save(owner=builder_user, source={"name": "Two", "tasks": {
        "a": {"run": "echo a"}, "b": {"run": "echo b", "depends_on": ["a"]}}})
    page.goto(f"/builder/{workflow.id}/")
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    connect(page, "b", "a")
    expect(page.get_by_test_id("cycle-error")).to_contain_text("cycle")

    page.get_by_test_id("add-shell.run").click()  # well before the notice's own timeout
    expect(node(page, "shell_run")).to_be_visible()
    expect(page.get_by_test_id("cycle-error")).to_be_hidden(timeout=CYCLE_NOTICE_MS // 3)
    assert page.js_errors == []


def test_a_connection_input_is_a_picker_of_the_owners_accounts_with_free_text(page, builder_user):
    for login in ("octocat", "hubot"):
        ConnectedAccount.objects.create(user=builder_user, provider="github", external_id=login, login=login,
                                        access_token="gho_test")
    page.goto("/builder/")
    page.get_by_test_id("add-github.create_issue").click()
    picker = page.get_by_test_id("field-connection")
    expect(picker.locator("option")).to_have_text(["Default account", "hubot (github)", "octocat (github)",
                                                   "Other (type it)…"])
    picker.select_option("hubot")

    page.get_by_test_id("add-http.request").click()
    picker = page.get_by_test_id("field-connection")
    expect(picker.locator("option", has_text="octocat (github)")).to_have_attribute("value", "github:octocat")
    picker.select_option(label="Other (type it)…")
    page.get_by_test_id("field-connection-other").fill("slack:acme")
    page.get_by_test_id("field-url").fill("https://example.com/")

    node(page, "github_create_issue").click()
    expect(page.get_by_test_id("field-connection")).to_have_value("hubot")
    page.get_by_test_id("field-repo").fill("octocat/hello-world")
    page.get_by_test_id("field-title").fill("From the builder")
    page.get_by_test_id("workflow-name").fill("Connections")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "false")
    tasks = Workflow.objects.get(name="Connections").definition["tasks"]
    assert tasks["github_create_issue"]["inputs"]["connection"] == "hubot"
    assert tasks["http_request"]["inputs"]["connection"] == "slack:acme"
    assert page.js_errors == []


def test_flow_actions_have_their_family_and_a_for_each_task_offers_item_and_index(page, builder_user):
    workflow = workflow_save(owner=builder_user, source={"name": "Mapped", "tasks": {
        "users": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.users }}"}},
        "approve": {"action": "flow.approval", "inputs": {"message": "Greet them?"}, "depends_on": ["users"]},
        "greet": {"action": "http.request", "inputs": {"url": "https://example.com/"}, "depends_on": ["approve"]},
    }})
    page.goto(f"/builder/{workflow.id}/")
    family = page.get_by_test_id("family-flow")
    expect(family).to_contain_text("flow")
    for action in ("flow.wait", "flow.approval", "flow.run_workflow", "flow.respond"):
        expect(family.get_by_test_id(f"action-{action}")).to_be_visible()

    node(page, "greet").click()
    url = page.get_by_test_id("field-url")
    url.fill("{{ ite")
    expect(page.get_by_test_id("suggestion-trigger.item")).to_be_visible()
    expect(page.get_by_test_id("suggestion-item")).to_have_count(0)  # no for_each yet
    url.fill("https://example.com/")
    page.get_by_test_id("task-for_each").fill("{{ steps.users.output.value }}")
    page.get_by_test_id("task-max_parallel").fill("3")
    url.fill("https://example.com/{{ ite")
    page.get_by_test_id("suggestion-item").click()
    expect(url).to_have_value("https://example.com/{{ item }}")
    # One fill, not key by key: on a loaded machine typed keys can race the completion popup's re-render.
    url.fill("https://example.com/{{ item }}?key={{ task.idem")
    # Taken with Enter once it is the active suggestion: a click can keep missing a list that re-renders under load.
    expect(page.get_by_test_id("suggestion-task.idempotency_key")).to_have_attribute("aria-selected", "true")
    url.press("Enter")
    node(page, "users").click()
    value = page.get_by_test_id("field-value")
    value.fill("{{ run.resume")
    expect(page.get_by_test_id("suggestion-run.resume_urls.approve")).to_be_visible()
    value.fill("{{ trigger.body.users }}")

    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("save-state")).to_have_attribute("data-dirty", "false")
    workflow.refresh_from_db()
    greet = workflow.definition["tasks"]["greet"]
    assert greet["for_each"] == "{{ steps.users.output.value }}" and greet["max_parallel"] == 3
    assert greet["inputs"]["url"] == "https://example.com/{{ item }}?key={{ task.idempotency_key }}"
    assert page.js_errors == []


def test_a_completion_list_reopened_just_after_leaving_its_field_stays_open(page, builder_user):
    workflow = workflow_save(owner=builder_user, source={"name": "Back", "tasks": {
        "users": {"action": "transform.jinja", "inputs": {"value": "[1, 2]"}},
        "fetch": {"action": "http.request", "inputs": {"url": "https://example.com/"}, "depends_on": ["users"]},
    }})
    page.clock.install()
    page.goto(f"/builder/{workflow.id}/")
    node(page, "fetch").click()
    url = page.get_by_test_id("field-url")
    url.click()
    page.clock.pause_at(page.evaluate("Date.now()") + 1_000)  # the field's close-after-blur delay waits for us
    page.get_by_test_id("task-for_each").click()  # leaving the URL field schedules its list to close
    url.fill("https://example.com/{{ steps.us")  # back before that delay: the list opens again
    page.clock.run_for(1_000)
    expect(page.get_by_test_id("suggestion-steps.users.output")).to_be_visible()
    assert page.js_errors == []


def test_a_waiting_task_is_coloured_as_waiting_while_the_run_goes_on(page, builder_user, start_worker):
    start_worker("w1", concurrency=2)
    workflow = workflow_save(owner=builder_user, source={"name": "Pause", "tasks": {
        "pause": {"action": "flow.wait", "inputs": {"seconds": 3}},
        "after": {"action": "transform.jinja", "inputs": {"value": "done"}, "depends_on": ["pause"]},
    }})
    page.goto(f"/builder/{workflow.id}/")
    page.get_by_test_id("run").click()
    expect(node(page, "pause")).to_have_attribute("data-status", "waiting", timeout=RUN_DEADLINE_MS)
    # --st-waiting, unlike running's blue; polled, as the border eases in over 0.15 s.
    expect(page.get_by_test_id("node-pause")).to_have_css("border-left-color", "rgb(168, 85, 247)")
    node(page, "pause").click()
    expect(page.get_by_test_id("task-run-waiting")).to_contain_text("until")
    expect(node(page, "after")).to_have_attribute("data-status", "pending")
    expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "succeeded", timeout=RUN_DEADLINE_MS)
    expect(node(page, "pause")).to_have_attribute("data-status", "succeeded")
    assert page.js_errors == []

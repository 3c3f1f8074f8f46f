"""SPEC §11 in the attempt executor: rendering counts against the timeout, and whatever an attempt returns can
be stored; unstorable inputs never reach the action, unstorable outputs fail the attempt once."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from connectors.base import Action, ActionConfig, ActionError
from connectors.registry import BUILTIN_ACTIONS, ActionRegistry
from runs import executor
from runs.executor import RecordingSecrets, execute_attempt, template_context
from runs.local import LocalRunner
from runs.states import RunStatus, TaskStatus
from workflows.definition import TaskSpec, compile_definition
from workflows.limits import MAX_OUTPUT_BYTES

CALLS: Counter = Counter()
BLOCKERS: dict[str, threading.Event] = {}  # kind -> the event an action of that kind waits for
THREADS: list[threading.Thread] = []  # the thread each call ran on


class Returns(Action):
    """Returns what `kind` names, counting its calls: the side effect a recording failure must not repeat."""

    name = "test.returns"
    input_schema = {"type": "object", "properties": {"kind": {"type": "string"}, "value": {}},
                    "additionalProperties": False}

    def execute(self, inputs, context):
        CALLS[context.task_id] += 1
        THREADS.append(threading.current_thread())  # kept, so no two threads share an id()
        context.log("line with a NUL \x00 in it")
        kind = inputs.get("kind")
        if kind == "nul":
            return {"status": 200, "body": "a\x00b"}
        if kind == "huge":
            return {"body": "x" * (MAX_OUTPUT_BYTES + 1)}
        if kind == "infinite":
            return {"value": float("inf")}
        if kind == "object":
            return {"value": object()}
        if kind in BLOCKERS:
            BLOCKERS[kind].wait(10)
        if kind == "fail-with-nul":
            raise ActionError("failed \x00 here", output={"body": "\x00"}, retryable=True)
        return {"value": inputs.get("value")}


REGISTRY = ActionRegistry({**BUILTIN_ACTIONS, "test.returns": "runs.tests.test_executor_limits:Returns"},
                          use_entry_points=False)


def attempt(task_id: str, inputs: dict, **task) -> object:
    spec = TaskSpec(id=task_id, action="test.returns", inputs=inputs, **task)
    context = template_context(trigger={"body": {"text": "with \x00 nul"}}, task_results={},
                               run={"id": 1, "workflow": "w"})
    return execute_attempt(spec, template_context=context, registry=REGISTRY, config=ActionConfig(), run_id=1)


@pytest.mark.parametrize("template, message", [
    ("{{ range(3) }}", "inputs.value: a range object is not JSON data"),
    ("{{ {'a': 1}.items() }}", "inputs.value: a dict_items object is not JSON data"),
    ("{{ 1e308 * 10 }}", "inputs.value: inf is not a finite number"),
    ("{{ trigger.body.text }}", "inputs.value: contains a NUL character"),
])
def test_inputs_that_cannot_be_stored_fail_the_attempt_before_the_action_runs(template, message):
    task_id = f"in_{abs(hash(template))}"
    result = attempt(task_id, {"value": template})
    assert result.status == TaskStatus.FAILED, result.error
    assert result.error.startswith(f"could not run: template error: {message}"), result.error
    assert result.could_not_run and not result.retryable and result.inputs == {}
    assert CALLS[task_id] == 0


@pytest.mark.parametrize("kind, message", [
    ("nul", "output.body: contains a NUL character"),
    ("infinite", "output.value: inf is not a finite number"),
    ("object", "output.value: a object object is not JSON data"),
    ("huge", f"output too large: more than {MAX_OUTPUT_BYTES:,} bytes"),
])
def test_an_output_that_cannot_be_stored_fails_the_attempt_once_and_is_not_retried(kind, message):
    task_id = f"out_{kind}"
    result = attempt(task_id, {"kind": kind}, retries=3)
    assert result.status == TaskStatus.FAILED and result.error.startswith(message), result.error
    assert not result.retryable and result.output == {}
    assert CALLS[task_id] == 1
    assert "\x00" not in result.logs and "\ufffd" in result.logs


def test_error_text_and_logs_are_cleaned_and_an_unstorable_failure_output_is_dropped():
    result = attempt("fail_nul", {"kind": "fail-with-nul"})
    assert result.status == TaskStatus.FAILED and result.retryable
    assert result.error == "failed \ufffd here (output not stored: output.body: contains a NUL character " \
                           "(\\u0000), which cannot be stored)"
    assert result.output == {}


def test_rendering_counts_against_the_timeout_and_the_render_thread_stops():
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    beats = []
    spec = TaskSpec(id="slow_render", action="test.returns", inputs={"value": loop}, timeout=2)
    context = template_context(trigger={}, task_results={}, run={"id": 1})
    started = time.monotonic()
    result = execute_attempt(spec, template_context=context, registry=REGISTRY, config=ActionConfig(), run_id=1,
                             heartbeat=lambda: beats.append(time.monotonic()), heartbeat_every=0.2)
    assert result.status == TaskStatus.FAILED and "timed out" in result.error
    assert 1.9 < time.monotonic() - started < 3
    assert len(beats) >= 5, "no heartbeat while the template rendered"
    assert CALLS["slow_render"] == 0

    deadline = time.monotonic() + 2
    while executor._action_threads.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executor._action_threads.busy == 0, "the render thread is still rendering"


def test_action_threads_are_reused_but_never_one_still_running_an_action_past_its_deadline():
    THREADS.clear()
    for _ in range(20):
        assert attempt("quick", {"value": 1}).status == TaskStatus.SUCCEEDED
    assert len({id(thread) for thread in THREADS}) == 1, "a thread started per attempt"

    release = threading.Event()
    stuck = TaskSpec(id="stuck", action="test.returns", inputs={"kind": "block"}, timeout=0.2)
    BLOCKERS["block"] = release
    try:
        result = execute_attempt(stuck, template_context=template_context(trigger={}, task_results={}, run={"id": 1}),
                                 registry=REGISTRY, config=ActionConfig(), run_id=1)
        assert result.error == "timed out after 0.2s"
        assert attempt("after", {"value": 2}).output == {"value": 2}, "the next attempt waited for the stuck thread"
        assert executor._action_threads.busy == 1
    finally:
        release.set()
    deadline = time.monotonic() + 2
    while executor._action_threads.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert executor._action_threads.busy == 0


def test_a_secret_is_looked_up_on_the_calling_thread_and_masked():
    threads = []

    def lookup(name):
        threads.append(threading.current_thread())
        return "s3cret" if name == "TOKEN" else None

    spec = TaskSpec(id="with_secret", action="test.returns", inputs={"value": "token {{ secrets.TOKEN }}"})
    context = template_context(trigger={}, task_results={}, run={"id": 1}, secrets=RecordingSecrets(lookup))
    result = execute_attempt(spec, template_context=context, registry=REGISTRY, config=ActionConfig(), run_id=1)
    assert result.status == TaskStatus.SUCCEEDED and result.output == {"value": "token ***"}
    assert threads == [threading.current_thread()]


class Reporter:
    def __init__(self):
        self.finished = {}

    def plan(self, levels):
        pass

    def task_started(self, task_id, attempt):
        pass

    def task_finished(self, task_id, result, will_retry):
        self.finished[task_id] = result

    def task_skipped(self, task_id, reason):
        pass


def test_the_cli_runner_reports_an_unstorable_output_as_a_failed_task():
    spec = compile_definition({"name": "cli", "tasks": {
        "cli_nul": {"action": "test.returns", "inputs": {"kind": "nul"}, "retries": 2},
        "after": {"action": "test.returns", "depends_on": ["cli_nul"]},
    }}, REGISTRY)
    reporter = Reporter()
    outcome = LocalRunner(spec, registry=REGISTRY, config=ActionConfig(), reporter=reporter).run()
    assert outcome.status == RunStatus.FAILED
    assert outcome.tasks["cli_nul"].status == TaskStatus.FAILED and outcome.tasks["after"].status == "skipped"
    assert reporter.finished["cli_nul"].error.startswith("output.body: contains a NUL character")
    assert CALLS["cli_nul"] == 1

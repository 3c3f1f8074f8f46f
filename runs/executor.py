"""Execute one attempt of one task: `when` → render inputs → check them → call the action, all within the
task's deadline → check the result can be stored.

The result names how an attempt failed (`FailureKind`): the action failed, it timed out, its output cannot be
stored, or it could not run at all (unknown action, template error, invalid inputs) and is never retried.

Plain Python, no Django: the Celery worker and the CLI runner both call `execute_attempt`. Rendering runs in the
deadline-governed thread, so it counts against the task's `timeout` and heartbeats keep flowing while it runs.
Whatever this returns can be stored: inputs that cannot be stored fail the attempt before the action runs (no
side effect); an output that cannot be stored, or is too large, fails it after (not retryable: the side effect
happened) instead of making the recording fail and the task run again.
"""
from __future__ import annotations

import contextvars
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema

from connectors.base import ActionConfig, ActionContext, ActionError, Pause
from connectors.registry import ActionRegistry, UnknownAction
from workflows.definition import TaskSpec, schema_error_message
from workflows.limits import MAX_OUTPUT_BYTES, LimitExceeded, check_storable, json_size
from workflows.templating import TemplateRenderError, is_truthy, render_value

from .states import FailureKind, TaskStatus

MASK = "***"


@dataclass
class AttemptResult:
    status: TaskStatus
    output: dict = field(default_factory=dict)
    error: str = ""
    logs: str = ""
    inputs: dict = field(default_factory=dict)
    retryable: bool = False
    duration: float = 0.0
    failure: FailureKind | None = None  # how a failed attempt failed; None unless status is FAILED
    pause: Pause | None = None  # set when status is WAITING: what the task waits for (the platform stores it)

    def __post_init__(self) -> None:
        if self.status == TaskStatus.FAILED and self.failure is None:
            self.failure = FailureKind.ACTION_FAILED

    @property
    def could_not_run(self) -> bool:
        return self.failure is not None and self.failure.could_not_run


def could_not_run(kind: FailureKind, detail: str, inputs: dict | None = None) -> AttemptResult:
    """An attempt whose action was never called: named as such in `error` and never retried."""
    return AttemptResult(TaskStatus.FAILED, error=kind.describe(detail), inputs=inputs or {}, failure=kind)


class RecordingSecrets(Mapping):
    """`secrets.NAME` in templates: looks values up lazily and remembers them so they can be masked."""

    path = "secrets"

    def __init__(self, lookup: Callable[[str], str | None]):
        self._lookup = lookup
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> str:
        value = self._lookup(name)
        if value is None:
            raise KeyError(name)
        self.used.add(value)
        return value

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


def mask_secrets(value: Any, secrets: Iterable[str]) -> Any:
    secrets = sorted((s for s in secrets if s), key=len, reverse=True)
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: mask_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, secrets) for v in value]
    return value


@lru_cache(maxsize=None)
def _validator(action_class: type) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(action_class.input_schema)


class _CallerThread:
    """Lets the deadline thread run a call on the waiting (worker) thread, e.g. a secret's database lookup, so
    it uses the worker's database connection; a call the worker no longer serves fails at the deadline."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.requests: queue.Queue = queue.Queue()

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        box: dict[str, Any] = {}
        done = threading.Event()
        self.requests.put((function, args, box, done))
        if not done.wait(max(self.deadline - time.monotonic(), 0)):
            raise ValueError("timed out: rendering passed the task's timeout")
        if "error" in box:
            raise box["error"]
        return box["result"]

    @staticmethod
    def serve(request: tuple) -> None:
        function, args, box, done = request
        try:
            box["result"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
            box["error"] = exc
        done.set()


class _SecretsFromCaller(Mapping):
    """`secrets` for a render in the deadline thread: each lookup runs on the worker thread."""

    path = "secrets"

    def __init__(self, secrets: Mapping, caller: _CallerThread):
        self._secrets, self._caller = secrets, caller

    def __getitem__(self, name: str) -> str:
        return self._caller.call(self._secrets.__getitem__, name)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


class _ActionThreads:
    """Threads that run actions, kept idle between attempts: starting a thread cost about as much as a small
    action (bench/engine.py). A thread is handed out again only once its call returned, so an action that
    outlived its deadline keeps its thread to itself; at most MAX_IDLE wait, the others end."""

    MAX_IDLE = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []
        self._pid = os.getpid()
        self.busy = 0  # threads running a call now

    def start(self, function: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked (a Celery pool child): the parent's threads did not come along
                self._idle, self._pid, self.busy = [], os.getpid(), 0
            inbox = self._idle.pop() if self._idle else None
            self.busy += 1
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), daemon=True, name="flowforge-action").start()
        inbox.put((function, args))

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            function, args = inbox.get()
            function(*args)
            with self._lock:
                self.busy -= 1
                if len(self._idle) >= self.MAX_IDLE or self._pid != os.getpid():
                    return
                self._idle.append(inbox)


_action_threads = _ActionThreads()


def _run_with_deadline(call: Callable[[], Any], timeout: float, heartbeat: Callable[[], None] | None,
                       heartbeat_every: float, caller: _CallerThread | None = None) -> Any:
    """Run `call` in a thread; beat the heartbeat and serve `caller` while waiting; give up after `timeout`."""
    box: dict[str, Any] = {}
    caller = caller or _CallerThread(time.monotonic() + timeout)
    finished = object()

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc
        finally:
            caller.requests.put(finished)

    # The action's thread logs with the same run and task ids as the worker thread.
    _action_threads.start(contextvars.copy_context().run, target)
    deadline = time.monotonic() + timeout
    next_beat = time.monotonic() + heartbeat_every
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ActionError(f"timed out after {timeout:g}s")
        try:
            request = caller.requests.get(timeout=min(remaining, max(next_beat - time.monotonic(), 0.001)))
        except queue.Empty:
            request = None
        if request is finished:
            break
        if request is not None:
            caller.serve(request)
        if heartbeat and time.monotonic() >= next_beat:
            heartbeat()
            next_beat = time.monotonic() + heartbeat_every
    if "error" in box:
        raise box["error"]
    return box["result"]


def clean_text(text: str) -> str:
    """Logs and error messages are text, not data: NULs and unpaired surrogates are replaced, never refused."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _storable_output(result: AttemptResult) -> AttemptResult:
    """The attempt as it can be stored: an output that cannot be, or is too large, fails it (not retryable)."""
    try:
        check_storable(result.output, "output")
        if json_size(result.output, stop_after=MAX_OUTPUT_BYTES) > MAX_OUTPUT_BYTES:
            raise LimitExceeded("output", f"output too large: more than {MAX_OUTPUT_BYTES:,} bytes")
    except LimitExceeded as exc:
        problem = exc.message if exc.message.startswith("output too large") else str(exc)
        error = f"{result.error} (output not stored: {problem})" if result.error else problem
        retryable = result.retryable and result.status == TaskStatus.FAILED  # a success's side effect happened
        return AttemptResult(TaskStatus.FAILED, error=error, inputs=result.inputs, retryable=retryable,
                             failure=FailureKind.OUTPUT_NOT_STORABLE)
    return result


def _render_failed(exc: TemplateRenderError, deadline: float) -> AttemptResult:
    if time.monotonic() >= deadline:  # the render was stopped by the task's timeout, not by the template
        return AttemptResult(TaskStatus.FAILED, error=str(exc), retryable=True, failure=FailureKind.TIMED_OUT)
    return could_not_run(FailureKind.TEMPLATE_ERROR, str(exc))


def _prepare_and_run(task: TaskSpec, action_class: type, template_context: Mapping[str, Any],
                     context: ActionContext, deadline: float, rendered: dict) -> AttemptResult:
    """Runs in the deadline thread: `when`, inputs, their checks, then the action."""
    if task.when is not None:
        try:
            condition = render_value(task.when, template_context, "when", deadline=deadline)
        except TemplateRenderError as exc:
            return _render_failed(exc, deadline)
        if not is_truthy(condition):
            context.log(f"skipped: `when` rendered {condition!r}")
            return AttemptResult(TaskStatus.SKIPPED, error=f"`when` rendered {condition!r}")
    try:
        quoted = getattr(action_class, "shell_quoted_inputs", ())
        inputs = {
            key: render_value(value, template_context, f"inputs.{key}", shell_quote=key in quoted, deadline=deadline)
            for key, value in task.inputs.items()
        }
    except TemplateRenderError as exc:
        return _render_failed(exc, deadline)
    try:
        check_storable(inputs, "inputs")
    except LimitExceeded as exc:
        return could_not_run(FailureKind.INVALID_INPUTS, str(exc))
    rendered.update(inputs)

    errors = sorted(_validator(action_class).iter_errors(inputs), key=str)
    if errors:
        where = ".".join(["inputs", *(str(p) for p in errors[0].absolute_path)])
        return could_not_run(FailureKind.INVALID_INPUTS, f"{where}: {schema_error_message(errors[0])}", inputs)
    try:
        output = action_class().execute(inputs, context)
    except ActionError as exc:
        return AttemptResult(TaskStatus.FAILED, output=exc.output, error=str(exc), inputs=inputs,
                             retryable=exc.retryable)
    except Exception as exc:  # noqa: BLE001 - an action bug must fail the task, not the worker
        context.log(traceback.format_exc())
        return AttemptResult(TaskStatus.FAILED, error=f"{type(exc).__name__}: {exc}", inputs=inputs,
                             retryable=True)
    if isinstance(output, Pause):
        return AttemptResult(TaskStatus.WAITING, output=dict(output.details), inputs=inputs, pause=output)
    if not isinstance(output, dict):
        output = {"value": output}
    return AttemptResult(TaskStatus.SUCCEEDED, output=output, inputs=inputs)


def execute_attempt(
    task: TaskSpec,
    *,
    template_context: Mapping[str, Any],
    registry: ActionRegistry,
    config: ActionConfig,
    run_id: Any,
    attempt: int = 1,
    workflow: str = "",
    owner_id: Any = None,
    heartbeat: Callable[[], None] | None = None,
    heartbeat_every: float = 5.0,
    on_log: Callable[[str], None] | None = None,
    idempotency_key: str = "",
    item_index: int | None = None,
) -> AttemptResult:
    started = time.monotonic()
    lines: list[str] = []
    secrets = template_context.get("secrets")
    used_secrets = secrets.used if isinstance(secrets, RecordingSecrets) else set()

    def log(line: str) -> None:
        lines.append(line)
        if on_log:
            on_log(mask_secrets(line, used_secrets))

    def finish(result: AttemptResult) -> AttemptResult:
        result = _storable_output(result)
        result.duration = time.monotonic() - started
        result.output = mask_secrets(result.output, used_secrets)
        result.error = clean_text(mask_secrets(result.error, used_secrets))
        result.logs = clean_text(mask_secrets("\n".join(lines), used_secrets))
        result.inputs = mask_secrets(result.inputs, used_secrets)
        return result

    try:
        action_class = registry.get_class(task.action)
    except UnknownAction:
        return finish(could_not_run(FailureKind.UNKNOWN_ACTION, repr(task.action)))

    context = ActionContext(
        run_id=run_id, task_id=task.id, attempt=attempt, timeout=task.timeout, config=config,
        workflow=workflow, owner_id=owner_id, log=log, idempotency_key=idempotency_key, item_index=item_index,
    )
    rendered: dict = {}  # the inputs, once rendered and checked, for a result that times out
    deadline = started + task.timeout
    caller = _CallerThread(deadline)
    if secrets is not None:
        template_context = {**template_context, "secrets": _SecretsFromCaller(secrets, caller)}
    try:
        result = _run_with_deadline(
            lambda: _prepare_and_run(task, action_class, template_context, context, deadline, rendered),
            task.timeout, heartbeat, heartbeat_every, caller)
    except ActionError as exc:  # the deadline passed
        return finish(AttemptResult(TaskStatus.FAILED, error=str(exc), inputs=rendered, retryable=exc.retryable,
                                    failure=FailureKind.TIMED_OUT))
    return finish(result)


_NO_ITEM = object()


def template_context(
    *, trigger: Mapping, task_results: Mapping[str, Mapping], run: Mapping, secrets: Mapping | None = None,
    item: Any = _NO_ITEM, index: int | None = None, task: Mapping | None = None,
) -> dict[str, Any]:
    """The run context of SPEC §2; `task_results` maps task id → {"output", "status"}.

    `item` and `index` exist only for an item of a for_each task (SPEC §9); `task` carries the task run's
    `idempotency_key` (SPEC §10).
    """
    steps = {task_id: {"output": r.get("output") or {}, "status": str(r.get("status"))}
             for task_id, r in task_results.items()}
    context = {"trigger": dict(trigger), "steps": steps, "tasks": steps, "run": dict(run),
               "secrets": secrets if secrets is not None else RecordingSecrets(lambda name: None),
               "task": dict(task or {})}
    if item is not _NO_ITEM:
        context["item"], context["index"] = item, index
    return context

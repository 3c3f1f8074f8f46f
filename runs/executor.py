"""Execute one attempt of one task: `when` → render inputs → check them → call the action with a deadline.

Plain Python, no Django: the Celery worker and the CLI runner both call `execute_attempt`.
"""
from __future__ import annotations

import contextvars
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema

from connectors.base import ActionConfig, ActionContext, ActionError
from connectors.registry import ActionRegistry, UnknownAction
from workflows.definition import TaskSpec, schema_error_message
from workflows.templating import TemplateRenderError, is_truthy, render_value

from .states import TaskStatus

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


def _run_with_deadline(call: Callable[[], dict], timeout: float, heartbeat: Callable[[], None] | None,
                       heartbeat_every: float) -> dict:
    """Run `call` in a thread; beat the heartbeat while waiting; give up after `timeout` seconds."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    # The action's thread logs with the same run and task ids as the worker thread.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True,
                              name="flowforge-action")
    thread.start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ActionError(f"timed out after {timeout:g}s")
        thread.join(min(remaining, heartbeat_every) if heartbeat else remaining)
        if not thread.is_alive():
            break
        if heartbeat:
            heartbeat()
    if "error" in box:
        raise box["error"]
    return box["result"]


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
        result.duration = time.monotonic() - started
        result.logs = "\n".join(lines)
        result.output = mask_secrets(result.output, used_secrets)
        result.error = mask_secrets(result.error, used_secrets)
        result.logs = mask_secrets(result.logs, used_secrets)
        result.inputs = mask_secrets(result.inputs, used_secrets)
        return result

    try:
        action_class = registry.get_class(task.action)
    except UnknownAction:
        return finish(AttemptResult(TaskStatus.FAILED, error=f"unknown action '{task.action}'"))

    if task.when is not None:
        try:
            condition = render_value(task.when, template_context, "when")
        except TemplateRenderError as exc:
            return finish(AttemptResult(TaskStatus.FAILED, error=str(exc)))
        if not is_truthy(condition):
            log(f"skipped: `when` rendered {condition!r}")
            return finish(AttemptResult(TaskStatus.SKIPPED))

    try:
        quoted = getattr(action_class, "shell_quoted_inputs", ())
        inputs = {
            key: render_value(value, template_context, f"inputs.{key}", shell_quote=key in quoted)
            for key, value in task.inputs.items()
        }
    except TemplateRenderError as exc:
        return finish(AttemptResult(TaskStatus.FAILED, error=str(exc)))

    errors = sorted(_validator(action_class).iter_errors(inputs), key=str)
    if errors:
        where = ".".join(["inputs", *(str(p) for p in errors[0].absolute_path)])
        message = f"{where}: {schema_error_message(errors[0])}"
        return finish(AttemptResult(TaskStatus.FAILED, error=message, inputs=inputs))

    context = ActionContext(
        run_id=run_id, task_id=task.id, attempt=attempt, timeout=task.timeout, config=config,
        workflow=workflow, owner_id=owner_id, log=log,
    )
    action = action_class()
    try:
        output = _run_with_deadline(lambda: action.execute(inputs, context), task.timeout, heartbeat,
                                    heartbeat_every)
    except ActionError as exc:
        return finish(AttemptResult(TaskStatus.FAILED, output=exc.output, error=str(exc), inputs=inputs,
                                    retryable=exc.retryable))
    except Exception as exc:  # noqa: BLE001 - an action bug must fail the task, not the worker
        log(traceback.format_exc())
        return finish(AttemptResult(TaskStatus.FAILED, error=f"{type(exc).__name__}: {exc}", inputs=inputs,
                                    retryable=True))
    if not isinstance(output, dict):
        output = {"value": output}
    return finish(AttemptResult(TaskStatus.SUCCEEDED, output=output, inputs=inputs))


def template_context(
    *, trigger: Mapping, task_results: Mapping[str, Mapping], run: Mapping, secrets: Mapping | None = None
) -> dict[str, Any]:
    """The run context of SPEC §2; `task_results` maps task id → {"output", "status"}."""
    steps = {task_id: {"output": r.get("output") or {}, "status": str(r.get("status"))}
             for task_id, r in task_results.items()}
    return {"trigger": dict(trigger), "steps": steps, "tasks": steps, "run": dict(run),
            "secrets": secrets if secrets is not None else RecordingSecrets(lambda name: None)}

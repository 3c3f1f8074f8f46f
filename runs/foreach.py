"""`for_each` (SPEC §9) as plain functions both runners share: the list of items, and the parent's outcome once
every item is final. No Django import.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workflows.definition import TaskSpec
from workflows.limits import MAX_OUTPUT_BYTES, json_size
from workflows.templating import TemplateRenderError, render_value

from .states import FailureKind, TaskStatus

# Actions that need the web app and workers (a resume URL, another run, a waiting HTTP caller): the CLI refuses them.
SERVER_ONLY_ACTIONS = frozenset({"flow.approval", "flow.run_workflow", "flow.respond"})


@dataclass
class Expansion:
    """What a for_each expression gave: the items, or why the task is skipped or failed instead."""

    items: list = field(default_factory=list)
    status: TaskStatus | None = None  # SKIPPED or FAILED when there are no items to run
    error: str = ""
    failure: FailureKind | None = None


@dataclass
class Outcome:
    """The parent row of a for_each task once every item is final."""

    status: TaskStatus
    output: list
    error: str = ""
    failure: FailureKind | None = None


def item_label(task_id: str, index: int | None) -> str:
    """`notify[3]`, as the CLI, the admin and the logs name an item."""
    return task_id if index is None else f"{task_id}[{index}]"


def expand(task: TaskSpec, context: Mapping[str, Any], *, max_items: int) -> Expansion:
    """Render the task's `for_each` within its timeout: a list of at most `max_items` items, else a reason."""
    try:
        value = render_value(task.for_each, context, "for_each", deadline=time.monotonic() + task.timeout)
    except TemplateRenderError as exc:
        return _failed(FailureKind.TEMPLATE_ERROR, str(exc))
    if not isinstance(value, list):
        return _failed(FailureKind.TEMPLATE_ERROR,
                       f"for_each: `{task.for_each}` gave {type(value).__name__} {_short(value)}, not a list")
    if not value:
        return Expansion(status=TaskStatus.SKIPPED, error="for_each: the list is empty")
    if len(value) > max_items:
        return _failed(FailureKind.INVALID_INPUTS,
                       f"for_each: `{task.for_each}` gave {len(value):,} items, more than the limit of {max_items:,}")
    return Expansion(items=value)


def _failed(kind: FailureKind, detail: str) -> Expansion:
    return Expansion(status=TaskStatus.FAILED, error=kind.describe(detail), failure=kind)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def outcome(items: Sequence[tuple[TaskStatus | str, Any, str]]) -> Outcome:
    """The parent's status, output (the items' outputs in item order) and error from (status, output, error) per
    item, in item order. Any failed item fails the task, naming the first failed index."""
    output = [item_output for _, item_output, _ in items]
    failed = [(index, error) for index, (status, _, error) in enumerate(items) if status == TaskStatus.FAILED]
    if json_size(output, stop_after=MAX_OUTPUT_BYTES) > MAX_OUTPUT_BYTES:
        return too_large()
    if failed:
        index, error = failed[0]
        more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
        return Outcome(TaskStatus.FAILED, output, f"item {index} failed: {error}{more}")
    if any(status == TaskStatus.CANCELLED for status, _, _ in items):
        return Outcome(TaskStatus.CANCELLED, output, "an item was cancelled")
    return Outcome(TaskStatus.SUCCEEDED, output)


def reads_steps(task: TaskSpec) -> bool:
    """Whether the task's templates may read other tasks' results (`steps` or its alias `tasks`): when not, an
    item runs without loading them. A mention anywhere in the text counts, so a doubt loads them."""
    text = json.dumps([task.when, task.inputs], default=str)
    return "steps" in text or "tasks" in text


def too_large() -> Outcome:
    return Outcome(TaskStatus.FAILED, [], f"output too large: the items' outputs are more than {MAX_OUTPUT_BYTES:,} "
                                          "bytes together", FailureKind.OUTPUT_NOT_STORABLE)

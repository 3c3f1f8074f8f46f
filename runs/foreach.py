"""`for_each` (SPEC §9) as plain functions both runners share: the list of items, and the parent's outcome once
every item is final. No Django import.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import Environment, TemplateSyntaxError, nodes

from workflows.definition import TaskSpec
from workflows.limits import MAX_OUTPUT_BYTES, json_size
from workflows.templating import TemplateRenderError, render_value

from .states import FailureKind, TaskStatus

_PARSER = Environment()  # parsing only: which names the templates read, never rendering

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


_STEP_NAMES = frozenset({"steps", "tasks"})


def named_steps(task: TaskSpec) -> frozenset[str] | None:
    """The tasks whose results the task's templates name statically (`steps.fetch`, `tasks['fetch']`), so only
    those rows are read; None when a template reads `steps`/`tasks` any other way (a loop, a computed key)."""
    return _named_steps(json.dumps([task.when, task.inputs, task.for_each], sort_keys=True, default=str))


@lru_cache(maxsize=2048)
def _named_steps(text: str) -> frozenset[str] | None:
    if "steps" not in text and "tasks" not in text:
        return frozenset()
    names: set[str] = set()
    for template in _strings(json.loads(text)):
        if "steps" not in template and "tasks" not in template:
            continue
        try:
            tree = _PARSER.parse(template)
        except (TemplateSyntaxError, RecursionError):
            return None
        found = _static_names(tree)
        if found is None:
            return None
        names |= found
    return frozenset(names)


def _static_names(tree: nodes.Node) -> set[str] | None:
    uses = [n for n in tree.find_all(nodes.Name) if n.name in _STEP_NAMES]
    keys = [n.attr for n in tree.find_all(nodes.Getattr) if _is_step_name(n.node)]
    keys += [n.arg.value for n in tree.find_all(nodes.Getitem)
             if _is_step_name(n.node) and isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, str)]
    return set(keys) if len(keys) == len(uses) else None


def _is_step_name(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name in _STEP_NAMES and node.ctx == "load"


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def too_large() -> Outcome:
    return Outcome(TaskStatus.FAILED, [], f"output too large: the items' outputs are more than {MAX_OUTPUT_BYTES:,} "
                                          "bytes together", FailureKind.OUTPUT_NOT_STORABLE)

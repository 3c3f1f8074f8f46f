"""Run and task-run states (SPEC §3), how an attempt failed, and the trigger-rule state machine. No Django import.

These enums are the one spelling of each closed set: the engine compares against them, the models take their
choices from `choices()`, and the API schema names them (ENUM_NAME_OVERRIDES in automation/settings.py).
`TriggerKind` and `TriggerRule` live in `workflows.kinds` (the parser below needs them) and are re-exported here.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from workflows.kinds import TriggerKind, TriggerRule  # noqa: F401 - TriggerKind re-exported for runs.models


class TaskStatus(str, Enum):
    PENDING = "pending"  # waiting for its upstream tasks
    QUEUED = "queued"  # ready; a message is (or will be) on the broker
    RUNNING = "running"  # claimed by a worker, which beats its heartbeat
    WAITING = "waiting"  # paused (flow.wait, flow.approval, flow.run_workflow, a for_each parent): holds no worker
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # after its retries; `TaskRun.failure` says how (a FailureKind)
    SKIPPED = "skipped"  # its trigger rule can never be met, or `when` rendered false
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class RunStatus(str, Enum):
    QUEUED = "queued"  # stored, waiting to start (or for the workflow's concurrency)
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every task succeeded or was skipped
    FAILED = "failed"  # some task failed, even when a `one_failed` task handled it
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class FailureKind(str, Enum):
    """How an attempt failed. "Could not run" kinds mean the action was never called: nothing to retry."""

    ACTION_FAILED = "action_failed"  # the action ran and reported an error (or raised)
    UNKNOWN_ACTION = "unknown_action"  # could not run: no action of that name is installed
    TEMPLATE_ERROR = "template_error"  # could not run: `when` or an input did not render
    INVALID_INPUTS = "invalid_inputs"  # could not run: the rendered inputs break the action's schema or limits
    TIMED_OUT = "timed_out"  # the task's `timeout` passed while rendering or running
    OUTPUT_NOT_STORABLE = "output_not_storable"  # the action ran but its output cannot be stored
    WORKER_LOST = "worker_lost"  # the worker stopped beating too many times

    def __str__(self) -> str:
        return self.value

    @property
    def could_not_run(self) -> bool:
        return self in _COULD_NOT_RUN

    @property
    def label(self) -> str:
        """As the run page shows it: `action failed`, `could not run: template error`."""
        return ("could not run: " if self.could_not_run else "") + self.value.replace("_", " ")

    def describe(self, detail: str) -> str:
        """The task's error as users read it: `could not run: template error: inputs.url: ... is undefined`."""
        return f"{self.label}: {detail}" if self.could_not_run else detail


_COULD_NOT_RUN = frozenset({FailureKind.UNKNOWN_ACTION, FailureKind.TEMPLATE_ERROR, FailureKind.INVALID_INPUTS})


def idempotency_key(run_id: Any, task_id: str, item_index: int | None = None) -> str:
    """The key of one logical call (SPEC §10): the same for every attempt of a task run or for_each item, and
    different for every other task run (a retry or re-run of the run is a new run, so a new logical call)."""
    item = "" if item_index is None else f"[{item_index}]"
    return hashlib.sha256(f"flowforge:{run_id}:{task_id}{item}".encode()).hexdigest()[:32]


def choices(enum: type[Enum]) -> list[tuple[str, str]]:
    """An enum as Django `choices` (label = stored value), so the models spell no state twice."""
    return [(member.value, member.value) for member in enum]


FINAL_TASK = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})
FINAL_RUN = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

RUN, SKIP, WAIT = "run", "skip", "wait"


def rule_decision(rule: str, upstream: list[str]) -> str:
    """Whether a pending task can run now, can never run (skip), or must wait for its upstream tasks."""
    if not upstream:
        return RUN
    final = all(s in FINAL_TASK for s in upstream)
    if rule == TriggerRule.ALL_DONE:
        return RUN if final else WAIT
    if rule == TriggerRule.ONE_FAILED:
        if TaskStatus.FAILED in upstream:
            return RUN
        return SKIP if final else WAIT
    if rule == TriggerRule.ONE_SUCCESS:
        if TaskStatus.SUCCEEDED in upstream:
            return RUN
        return SKIP if final else WAIT
    # TriggerRule.ALL_SUCCESS
    if any(s in (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED) for s in upstream):
        return SKIP
    return RUN if all(s == TaskStatus.SUCCEEDED for s in upstream) else WAIT


def count_decision(rule: str, total: int, left: int, succeeded: int, failed: int) -> str:
    """`rule_decision` from counts of the task's distinct upstream tasks: `total`, how many are not final yet
    (`left`), succeeded, failed; the rest (total - left - succeeded - failed) were skipped or cancelled. A
    completion then decides its downstream tasks from one counter row each, whatever the size of the run."""
    if total == 0:
        return RUN
    final = left == 0
    if rule == TriggerRule.ALL_DONE:
        return RUN if final else WAIT
    if rule == TriggerRule.ONE_FAILED:
        return RUN if failed else (SKIP if final else WAIT)
    if rule == TriggerRule.ONE_SUCCESS:
        return RUN if succeeded else (SKIP if final else WAIT)
    # TriggerRule.ALL_SUCCESS
    if failed or total - left - succeeded - failed:
        return SKIP
    return RUN if succeeded == total else WAIT


@dataclass
class Advance:
    to_queue: list[str]
    to_skip: list[str]
    # Why each task in `to_skip` can never run, for the operator ("upstream task_B failed").
    skip_reasons: dict[str, str] = field(default_factory=dict)


def skip_reason(rule: str, upstream: Mapping[str, str]) -> str:
    """Why a task whose trigger rule decided SKIP can never run, naming the upstream task that settled it."""
    if rule == TriggerRule.ONE_FAILED:
        return "no upstream task failed"
    if rule == TriggerRule.ONE_SUCCESS:
        return "no upstream task succeeded"
    for task, status in upstream.items():
        if status in (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED):
            return f"upstream {task} {TaskStatus(status).value}"
    return "upstream tasks did not all succeed"


def advance(
    depends_on: Mapping[str, tuple[str, ...]], rules: Mapping[str, str], statuses: Mapping[str, str]
) -> Advance:
    """Decide, for every pending task, whether to queue or skip it; skips propagate downstream."""
    current = {task: TaskStatus(s) for task, s in statuses.items()}
    to_queue: list[str] = []
    to_skip: list[str] = []
    reasons: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for task, deps in depends_on.items():
            if current.get(task) != TaskStatus.PENDING:
                continue
            rule = rules.get(task, TriggerRule.ALL_SUCCESS)
            decision = rule_decision(rule, [current[d] for d in deps])
            if decision == RUN:
                current[task] = TaskStatus.QUEUED
                to_queue.append(task)
            elif decision == SKIP:
                current[task] = TaskStatus.SKIPPED
                to_skip.append(task)
                reasons[task] = skip_reason(rule, {d: current[d] for d in deps})
                changed = True
    return Advance(to_queue=to_queue, to_skip=to_skip, skip_reasons=reasons)


def run_outcome(statuses: Mapping[str, str]) -> RunStatus | None:
    """The run's final state once every task is final, else None (SPEC §3)."""
    values = [TaskStatus(s) for s in statuses.values()]
    if not all(s in FINAL_TASK for s in values):
        return None
    if TaskStatus.FAILED in values:
        return RunStatus.FAILED
    if TaskStatus.CANCELLED in values:
        return RunStatus.CANCELLED
    return RunStatus.SUCCEEDED


def retry_delay(base: float, attempt: int) -> float:
    """Exponential backoff before attempt `attempt + 1`: base, 2·base, 4·base... capped at an hour."""
    return min(base * (2 ** (attempt - 1)), 3600.0)

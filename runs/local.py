"""Run a whole workflow in this process, independent tasks in parallel threads: the CLI's engine.

Uses the same state machine (`states.advance`) and attempt executor as the Celery workers. A `for_each` task runs
its items on a pool of `max_parallel` threads; `flow.wait` sleeps here (SPEC §9); actions that need the server
(`SERVER_ONLY_ACTIONS`) are refused.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from connectors.base import ActionConfig, PauseReason
from connectors.registry import ActionRegistry
from workflows.definition import TaskSpec, WorkflowSpec

from . import foreach
from .executor import AttemptResult, RecordingSecrets, clean_text, execute_attempt, template_context
from .states import FailureKind, RunStatus, TaskStatus, advance, idempotency_key, retry_delay, run_outcome

DEFAULT_MAX_ITEMS = 1000  # the CLI command passes settings.AUTOMATION_MAX_ITEMS


class Reporter(Protocol):
    def plan(self, levels: list[list[str]]) -> None: ...
    def task_started(self, task_id: str, attempt: int) -> None: ...
    def task_finished(self, task_id: str, result: AttemptResult, will_retry: bool) -> None: ...
    def task_skipped(self, task_id: str, reason: str) -> None: ...


@dataclass
class TaskRecord:
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    output: dict | list = field(default_factory=dict)
    error: str = ""
    logs: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    items: list[TaskRecord] = field(default_factory=list)  # a for_each task's items, in item order


def server_only_tasks(spec: WorkflowSpec) -> dict[str, str]:
    """Task id → action, for the tasks whose action needs the server: this runner refuses them."""
    return {t: task.action for t, task in spec.tasks.items() if task.action in foreach.SERVER_ONLY_ACTIONS}


def needs_server_message(action: str) -> str:
    return (f"{action} needs the server (the web app and a worker); "
            "start this workflow through the API or the admin instead of runworkflow")


@dataclass
class LocalRunResult:
    status: RunStatus
    tasks: dict[str, TaskRecord]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalRunner:
    def __init__(self, spec: WorkflowSpec, *, registry: ActionRegistry, config: ActionConfig,
                 reporter: Reporter, trigger: dict | None = None, run_id: Any = "local",
                 secrets: RecordingSecrets | None = None, max_workers: int = 8,
                 max_items: int = DEFAULT_MAX_ITEMS):
        self.spec = spec
        self.registry = registry
        self.config = config
        self.reporter = reporter
        self.trigger = trigger or {}
        self.run_id = run_id
        self.secrets = secrets if secrets is not None else RecordingSecrets(lambda name: None)  # empty is falsy
        self.max_workers = max_workers
        self.max_items = max_items
        self.records = {task_id: TaskRecord() for task_id in spec.tasks}
        self.started_at = _now()

    def run(self) -> LocalRunResult:
        self.reporter.plan(self.spec.levels())
        rules = {t: task.trigger_rule for t, task in self.spec.tasks.items()}
        running: dict[Future, str] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="flowforge-task") as pool:
            while True:
                decided = advance(self.spec.depends_on, rules, {t: r.status for t, r in self.records.items()})
                for task_id in decided.to_skip:
                    self.records[task_id].status = TaskStatus.SKIPPED
                    self.reporter.task_skipped(task_id, "upstream tasks did not satisfy its trigger rule")
                for task_id in decided.to_queue:
                    self.records[task_id].status = TaskStatus.RUNNING
                    running[pool.submit(self._run_task, task_id)] = task_id
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    future.result()
        statuses = {t: r.status for t, r in self.records.items()}
        return LocalRunResult(status=run_outcome(statuses) or RunStatus.FAILED, tasks=self.records)

    def _context(self, task_id: str, **item) -> dict:
        results = {t: {"output": r.output, "status": r.status} for t, r in self.records.items()
                   if r.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED)}
        run = {"id": self.run_id, "workflow": self.spec.name, "started_at": self.started_at.isoformat()}
        key = idempotency_key(self.run_id, task_id, item.get("index"))
        return template_context(trigger=self.trigger, task_results=results, run=run, secrets=self.secrets,
                                task={"idempotency_key": key}, **item)

    def _run_task(self, task_id: str) -> None:
        task = self.spec.tasks[task_id]
        record = self.records[task_id]
        record.started_at = _now()
        if task.action in foreach.SERVER_ONLY_ACTIONS:
            result = AttemptResult(TaskStatus.FAILED, error=needs_server_message(task.action),
                                   failure=FailureKind.UNKNOWN_ACTION)
            self.reporter.task_finished(task_id, result, False)
            record.error, record.status, record.finished_at = result.error, result.status, _now()
        elif task.for_each is not None:
            self._run_for_each(task, record)
        else:
            self._attempts(task, record, self._context(task.id))
        record.finished_at = _now()

    def _attempts(self, task: TaskSpec, record: TaskRecord, context: dict, index: int | None = None) -> None:
        """Every attempt of one task run (a task, or one item of a for_each task) until it is final."""
        label = foreach.item_label(task.id, index)
        record.started_at = record.started_at or _now()
        while True:
            record.attempt += 1
            self.reporter.task_started(label, record.attempt)
            try:
                result = execute_attempt(task, template_context=context, registry=self.registry,
                                         config=self.config, run_id=self.run_id, attempt=record.attempt,
                                         workflow=self.spec.name, item_index=index,
                                         idempotency_key=context["task"]["idempotency_key"])
                result = self._resume(result)
            except Exception as exc:  # noqa: BLE001 - reported as the task's failure, never a traceback
                result = AttemptResult(TaskStatus.FAILED, error=clean_text(f"{type(exc).__name__}: {exc}"))
            will_retry = (result.status == TaskStatus.FAILED and result.retryable and not result.could_not_run
                          and record.attempt <= task.retries)
            record.output, record.error, record.logs = result.output, result.error, result.logs
            self.reporter.task_finished(label, result, will_retry)
            if not will_retry:
                break
            time.sleep(retry_delay(task.retry_delay, record.attempt))
        record.finished_at = _now()
        record.status = result.status

    @staticmethod
    def _resume(result: AttemptResult) -> AttemptResult:
        """A paused attempt in this process: `flow.wait` sleeps until its time; other pauses need the server."""
        if result.status != TaskStatus.WAITING or result.pause is None:
            return result
        pause = result.pause
        if pause.reason != PauseReason.TIME or pause.until is None:
            return AttemptResult(TaskStatus.FAILED, error=f"waiting for {pause.reason} needs the server",
                                 inputs=result.inputs, logs=result.logs, failure=FailureKind.UNKNOWN_ACTION)
        time.sleep(max((pause.until - _now()).total_seconds(), 0))
        return AttemptResult(TaskStatus.SUCCEEDED, output={"waited_until": pause.until.isoformat()},
                             inputs=result.inputs, logs=result.logs)

    def _run_for_each(self, task: TaskSpec, record: TaskRecord) -> None:
        """The items on a pool of `max_parallel` threads; the task's output is their outputs in item order."""
        record.attempt = 1
        self.reporter.task_started(task.id, 1)
        expansion = foreach.expand(task, self._context(task.id), max_items=self.max_items)
        if expansion.status is not None:
            record.status, record.error = expansion.status, expansion.error
            if expansion.status == TaskStatus.SKIPPED:
                self.reporter.task_skipped(task.id, expansion.error)
            else:
                self.reporter.task_finished(task.id, AttemptResult(expansion.status, error=expansion.error,
                                                                   failure=expansion.failure), False)
            return
        record.items = [TaskRecord() for _ in expansion.items]
        with ThreadPoolExecutor(max_workers=task.max_parallel, thread_name_prefix=f"flowforge-{task.id}") as pool:
            futures = [pool.submit(self._attempts, task, item_record, self._context(task.id, item=item, index=index),
                                   index)
                       for index, (item, item_record) in enumerate(zip(expansion.items, record.items))]
            for future in futures:
                future.result()
        result = foreach.outcome([(r.status, r.output, r.error) for r in record.items])
        record.status, record.output, record.error = result.status, result.output, result.error
        self.reporter.task_finished(task.id, AttemptResult(result.status, error=result.error,
                                                           failure=result.failure), False)

"""Run a whole workflow in this process, independent tasks in parallel threads: the CLI's engine.

Uses the same state machine (`states.advance`) and attempt executor as the Celery workers.
"""
from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from connectors.base import ActionConfig
from connectors.registry import ActionRegistry
from workflows.definition import WorkflowSpec

from .executor import AttemptResult, RecordingSecrets, clean_text, execute_attempt, template_context
from .states import RunStatus, TaskStatus, advance, retry_delay, run_outcome


class Reporter(Protocol):
    def plan(self, levels: list[list[str]]) -> None: ...
    def task_started(self, task_id: str, attempt: int) -> None: ...
    def task_finished(self, task_id: str, result: AttemptResult, will_retry: bool) -> None: ...
    def task_skipped(self, task_id: str, reason: str) -> None: ...


@dataclass
class TaskRecord:
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = 0
    output: dict = field(default_factory=dict)
    error: str = ""
    logs: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class LocalRunResult:
    status: RunStatus
    tasks: dict[str, TaskRecord]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class LocalRunner:
    def __init__(self, spec: WorkflowSpec, *, registry: ActionRegistry, config: ActionConfig,
                 reporter: Reporter, trigger: dict | None = None, run_id: Any = "local",
                 secrets: RecordingSecrets | None = None, max_workers: int = 8):
        self.spec = spec
        self.registry = registry
        self.config = config
        self.reporter = reporter
        self.trigger = trigger or {}
        self.run_id = run_id
        self.secrets = secrets if secrets is not None else RecordingSecrets(lambda name: None)  # empty is falsy
        self.max_workers = max_workers
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

    def _context(self) -> dict:
        results = {t: {"output": r.output, "status": r.status} for t, r in self.records.items()
                   if r.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED)}
        run = {"id": self.run_id, "workflow": self.spec.name, "started_at": self.started_at.isoformat()}
        return template_context(trigger=self.trigger, task_results=results, run=run, secrets=self.secrets)

    def _run_task(self, task_id: str) -> None:
        task = self.spec.tasks[task_id]
        record = self.records[task_id]
        record.started_at = _now()
        while True:
            record.attempt += 1
            self.reporter.task_started(task_id, record.attempt)
            try:
                result = execute_attempt(task, template_context=self._context(), registry=self.registry,
                                         config=self.config, run_id=self.run_id, attempt=record.attempt,
                                         workflow=self.spec.name)
            except Exception as exc:  # noqa: BLE001 - reported as the task's failure, never a traceback
                result = AttemptResult(TaskStatus.FAILED, error=clean_text(f"{type(exc).__name__}: {exc}"))
            will_retry = (result.status == TaskStatus.FAILED and result.retryable and not result.could_not_run
                          and record.attempt <= task.retries)
            record.output, record.error, record.logs = result.output, result.error, result.logs
            self.reporter.task_finished(task_id, result, will_retry)
            if not will_retry:
                break
            time.sleep(retry_delay(task.retry_delay, record.attempt))
        record.finished_at = _now()
        record.status = result.status

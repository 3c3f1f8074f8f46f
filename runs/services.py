"""Run execution on the database: start, claim, execute, finish, advance, retry, cancel, re-run, sweep.

PostgreSQL is the source of truth. Every state change is a conditional UPDATE (`filter(status=old).update()`)
whose row count tells whether this worker won, so a duplicate Celery delivery is harmless. Advancing a run
after a task ends happens under a row lock on the run, so siblings finishing at once never lose the join.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
from datetime import timedelta
from functools import cache, lru_cache
from typing import Any, Callable, TypeVar

from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, connection, connections, models, router, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum, TextField
from django.db.models.functions import Cast, Length
from django.utils import timezone
from django.utils.crypto import salted_hmac

from automation.logging import bind_log_context
from connectors.base import PauseReason
from connectors.flow.actions import FlowApproval, FlowWait
from connectors.platform import action_config
from connectors.registry import default_registry
from connectors.secrets import secret_value
from workflows.definition import InvalidDefinition, TaskSpec, WorkflowSpec
from workflows.graph import downstream_of
from workflows.limits import MAX_OUTPUT_BYTES, LimitExceeded, check_storable
from workflows.models import Workflow, WorkflowVersion
from workflows.services import spec_for_version
from workflows.templating import has_template

from . import broker, children, foreach, recovery, statements, workers
from .executor import AttemptResult, RecordingSecrets, clean_text, execute_attempt, template_context
from .models import TaskRun, TriggerKind, WorkerHeartbeat, WorkflowRun
from .states import (
    FINAL_RUN, FINAL_TASK, RUN, SKIP, FailureKind, RunStatus, TaskStatus, advance, count_decision,
    idempotency_key, retry_delay, run_outcome, skip_reason,
)
from .wakeups import run_finished_announce

log = logging.getLogger(__name__)
T = TypeVar("T")


def worker_name() -> str:
    """`host:pid` of this process, recorded on the task runs it claims; a prefork child reports its own pid."""
    return _worker_name(os.getpid())


@cache
def _worker_name(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


class RunError(ValueError):
    """A run cannot be started, retried or re-run as asked (the API answers 400 with this message)."""


class WorkflowChanged(RunError):
    """The workflow no longer holds what the caller read of it (`run_create_with_companion`'s `workflow_holds`)."""


class RunStateConflict(RunError):
    """The run is not in a state that allows what was asked, e.g. retrying a queued run (the API answers 409)."""


# --- enqueueing (the only place that talks to the broker) ----------------------------------------------------


def _send(task_name: str, args: tuple, **options: Any) -> None:
    # By name (runs.tasks registers it): the tasks module imports this one, not the reverse, and a web process
    # that never imported runs.tasks can still send. Outside a worker it fails fast (runs.broker).
    try:
        broker.publish(f"runs.{task_name}", args, **options)
    except broker.BrokerUnavailable:  # the failure that opened the breaker was logged already
        log.info("broker unavailable: %s%s left for the recovery sweep", task_name, args)
    except Exception:  # noqa: BLE001 - the database row is kept; the sweeper sends it again later
        log.warning("broker unavailable: %s%s left for the recovery sweep", task_name, args, exc_info=True)


def enqueue_run_start(run_id: int) -> None:
    _send("start_run", (run_id,))


def enqueue_task_run(task_run_id: int, queue: str, countdown: float = 0) -> None:
    _send("execute_task", (task_run_id,), queue=queue, countdown=countdown or None)


def enqueue_task_runs(task_runs: list[tuple[int, str]]) -> None:
    """Send (task run id, queue) pairs at once: one broker round trip for a fan-out's siblings on Redis."""
    if len(task_runs) == 1:
        enqueue_task_run(*task_runs[0])
    elif task_runs:
        _send_many("execute_task", [((task_run_id,), queue) for task_run_id, queue in task_runs])


def _send_many(task_name: str, calls: list[tuple[tuple, str]]) -> None:
    # `_send` for (args, queue) pairs of one task, in as few broker round trips as the broker allows.
    try:
        broker.publish_many(f"runs.{task_name}", calls)
    except broker.BrokerUnavailable:
        log.info("broker unavailable: %s %s messages left for the recovery sweep", len(calls), task_name)
    except Exception:  # noqa: BLE001 - the database rows are kept; the sweeper sends them again later
        log.warning("broker unavailable: %s %s messages left for the recovery sweep", len(calls), task_name,
                    exc_info=True)


# --- creating and starting runs ------------------------------------------------------------------------------


def run_create(*, workflow: Workflow, trigger: dict | None = None, trigger_kind: str = TriggerKind.MANUAL,
               version: WorkflowVersion | None = None, parent: WorkflowRun | None = None,
               reuse_tasks: list[str] | None = None, parent_run: WorkflowRun | None = None,
               parent_task_run_id: int | None = None, depth: int = 0) -> WorkflowRun:
    """Store a run. Of a workflow without a `concurrency` limit it starts at once: its task runs are created in
    the same transaction and its first tasks sent when it commits (no `start_run` message and worker hop per run).
    A limited one is stored queued and its start enqueued once the transaction commits (`run_start`).

    `parent` is the run a retry or re-run comes from; `parent_run`, `parent_task_run_id` and `depth` link a child
    run to the flow.run_workflow task that started it (SPEC §9).
    """
    version_id = version.id if version else workflow.current_version_id
    if version_id is None:
        raise RunError(f"workflow '{workflow.name}' has no definition version")
    try:
        spec = spec_for_version(version_id)
    except InvalidDefinition as exc:  # stored before a rule that now refuses it (e.g. an empty secret)
        raise RunError(f"workflow '{workflow.name}': its definition is no longer valid ({exc}); save it again "
                       f"to run it") from None
    now = timezone.now()
    with transaction.atomic():
        run = WorkflowRun.objects.create(
            workflow=workflow, workflow_version_id=version_id, trigger=trigger or {}, trigger_kind=trigger_kind,
            parent=parent, reuse_tasks=reuse_tasks or [], parent_run=parent_run,
            parent_task_run_id=parent_task_run_id, depth=depth,
            **({} if spec.concurrency else {"status": RunStatus.RUNNING, "started_at": now}),
        )
        if spec.concurrency:
            transaction.on_commit(lambda: enqueue_run_start(run.id))
        else:
            _start_tasks(run, spec, now)
    return run


def run_create_with_companion(*, workflow: Workflow, trigger: dict, trigger_kind: str, companion: models.Model,
                              run_field: str = "run", workflow_holds: dict[str, Any] | None = None) -> int:
    """Store a run of the workflow's current version and `companion`, an unsaved row of the layer above whose
    `run_field` foreign key points at the run (a webhook delivery), atomically; returns the run id.

    A workflow without a `concurrency` limit starts at once: its task runs are inserted with the run and its
    first tasks sent once they are committed (no `start_run` message and worker hop per run); a limited one is
    stored queued and its start enqueued. On PostgreSQL the run, the companion and the task runs are ONE
    statement (`runs.statements.insert_run_with`), which outside a transaction commits on its own: no BEGIN and
    COMMIT round trips. A unique violation raises IntegrityError with nothing stored; inside an outer transaction
    the statement runs in a savepoint, so it does not abort the outer one.

    `workflow_holds` (Workflow attnames → values) makes the store conditional on the workflow's row still holding
    them when it is written (checked in the same statement on PostgreSQL): a caller that decided on a copy it
    read earlier, or cached, learns with WorkflowChanged, and nothing stored, that the copy is out of date.
    """
    if workflow.current_version_id is None:
        raise RunError(f"workflow '{workflow.name}' has no definition version")
    spec = spec_for_version(workflow.current_version_id)
    start_now = not spec.concurrency
    run = WorkflowRun(workflow_id=workflow.id, workflow_version_id=workflow.current_version_id, trigger=trigger,
                      trigger_kind=trigger_kind)
    if start_now:
        run.status, run.started_at = RunStatus.RUNNING, timezone.now()
    connection = connections[router.db_for_write(WorkflowRun)]
    guard = tuple(workflow_holds or ())
    if connection.vendor != "postgresql":
        # SQLite (the embedded default) has no INSERT inside WITH: separate inserts in one transaction.
        with transaction.atomic(using=connection.alias):
            workflows = Workflow.objects.using(connection.alias)
            if guard and not workflows.filter(id=workflow.id, **workflow_holds).exists():
                raise WorkflowChanged(f"workflow '{workflow.name}' changed while the run was being stored")
            run.save(using=connection.alias)
            setattr(companion, f"{run_field}_id", run.id)
            companion.save(using=connection.alias)
            if start_now:
                _create_task_runs(run.id, spec, run.started_at, using=connection.alias)
    else:
        sql = _run_with_sql(run.workflow_version_id, type(companion), run_field, connection.alias, guard)
        holds = [workflow_holds[name] for name in guard]
        if connection.in_atomic_block:
            with transaction.atomic(using=connection.alias):
                stored = statements.insert_run_with(sql, run, companion, run_field, holds, using=connection.alias)
        else:
            stored = statements.insert_run_with(sql, run, companion, run_field, holds, using=connection.alias)
        if stored is None:
            raise WorkflowChanged(f"workflow '{workflow.name}' changed while the run was being stored")
        run.id, queued = stored
        if start_now:
            transaction.on_commit(lambda: enqueue_task_runs(queued), using=connection.alias)
    run_id = run.id
    if not start_now:
        transaction.on_commit(lambda: enqueue_run_start(run_id), using=connection.alias)
    return run_id


@lru_cache(maxsize=64)
def _run_with_sql(version_id: int, companion_model: type[models.Model], run_field: str, alias: str,
                  workflow_guard: tuple[str, ...]) -> str:
    """`run_create_with_companion`'s statement for runs of one version: its task runs are the same every time."""
    spec = spec_for_version(version_id)
    tasks = [] if spec.concurrency else _initial_task_runs(spec, statements.RUN_STARTED)
    return statements.run_with_sql(companion_model, run_field, tasks, alias, workflow_guard)


def run_start(*, run_id: int) -> None:
    """Create the task runs and queue the first ready tasks; respects the workflow's `concurrency`."""
    with bind_log_context(run_id=run_id), transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(id=run_id, status=RunStatus.QUEUED).first()
        if run is None:
            return
        spec = spec_for_version(run.workflow_version_id)
        if spec.concurrency and not _has_capacity(run, spec.concurrency):
            return
        now = timezone.now()
        run.status, run.started_at = RunStatus.RUNNING, now
        run.save(update_fields=["status", "started_at"])
        _start_tasks(run, spec, now)


def _start_tasks(run: WorkflowRun, spec: WorkflowSpec, now) -> None:
    """Of a run just made running: create its task runs, queue the first ones, and end it when nothing is left to
    run (every task reused from the run it re-runs)."""
    statuses = _create_task_runs(run.id, spec, now, reused=_reused_task_runs(run, spec))
    outcome = run_outcome(statuses)
    if outcome is not None:
        _finish_run(run, outcome, spec)


def _create_task_runs(run_id: int, spec: WorkflowSpec, now, *, reused: dict[str, TaskRun] | None = None,
                      using: str | None = None) -> dict[str, str]:
    """Insert the run's task runs (reused outputs copied, never-runnable ones skipped, ready ones queued), send
    the queued ones once the transaction commits, and return every task's initial status."""
    reused = reused or {}
    rows = _initial_task_runs(spec, now, reused)
    for row in rows:
        row.run_id = run_id
        if row.task_id in reused:
            origin = reused[row.task_id]
            row.output, row.inputs, row.attempt = origin.output, origin.inputs, origin.attempt
            row.logs = f"[reused the output of run {origin.run_id}]"
            row.started_at, row.finished_at = origin.started_at, origin.finished_at
    created = TaskRun.objects.using(using).bulk_create(rows)
    to_send = [(row.id, row.queue) for row in created if row.status == TaskStatus.QUEUED]
    transaction.on_commit(lambda: enqueue_task_runs(to_send), using=using)
    return {row.task_id: row.status for row in rows}


def _initial_task_runs(spec: WorkflowSpec, now, reused: dict[str, TaskRun] | None = None) -> list[TaskRun]:
    """A new run's task runs, unsaved and without run: reused ones succeeded, those that can never run skipped
    (with why, finished `now`), the ready ones queued (`now`), the rest pending with their upstream counters."""
    reused = reused or {}
    statuses = {task_id: (TaskStatus.SUCCEEDED if task_id in reused else TaskStatus.PENDING)
                for task_id in spec.tasks}
    decided = advance(spec.depends_on, _rules(spec), statuses)
    statuses.update({t: TaskStatus.SKIPPED for t in decided.to_skip})
    statuses.update({t: TaskStatus.QUEUED for t in decided.to_queue})
    rows = []
    for task_id, task in spec.tasks.items():
        row = TaskRun(task_id=task_id, status=statuses[task_id], queue=task.queue, **_initial_counters(task, statuses))
        if row.status == TaskStatus.QUEUED:
            row.queued_at = now
        elif row.status == TaskStatus.SKIPPED:
            row.finished_at, row.error = now, decided.skip_reasons.get(task_id, "")
        rows.append(row)
    return rows


def _initial_counters(task: TaskSpec, statuses: dict[str, str]) -> dict[str, int]:
    """The upstream counters of a new task run: a reused upstream counts as succeeded, a skipped one as skipped."""
    upstream = [statuses[dep] for dep in set(task.depends_on)]
    return {"upstream_left": sum(1 for status in upstream if status not in FINAL_TASK),
            "upstream_succeeded": upstream.count(TaskStatus.SUCCEEDED),
            "upstream_failed": upstream.count(TaskStatus.FAILED)}


def _has_capacity(run: WorkflowRun, limit: int) -> bool:
    Workflow.objects.select_for_update().filter(id=run.workflow_id).first()  # serialise starts per workflow
    running = WorkflowRun.objects.filter(workflow_id=run.workflow_id, status=RunStatus.RUNNING).count()
    if running >= limit:
        return False
    older = WorkflowRun.objects.filter(workflow_id=run.workflow_id, status=RunStatus.QUEUED, id__lt=run.id)
    return not older.exists() or running + 1 < limit


def _reused_task_runs(run: WorkflowRun, spec: WorkflowSpec) -> dict[str, TaskRun]:
    if not run.parent_id or not run.reuse_tasks:
        return {}
    wanted = [t for t in run.reuse_tasks if t in spec.tasks]
    origins = TaskRun.objects.filter(run_id=run.parent_id, task_id__in=wanted, status=TaskStatus.SUCCEEDED,
                                     item_index__isnull=True)
    return {origin.task_id: origin for origin in origins}


def _rules(spec: WorkflowSpec) -> dict[str, str]:
    return {task_id: task.trigger_rule for task_id, task in spec.tasks.items()}


# --- executing one task run ----------------------------------------------------------------------------------


def task_execute(*, task_run_id: int, queue: str | None = None) -> None:
    """Execute the task run, then keep going with a downstream task it made ready on the same `queue`.

    Running the next task here (Airflow's "mini scheduler") saves a broker round trip, a claim and a read per
    step of a chain: the next task run is marked running, with a fresh heartbeat, in the same transaction
    that makes it ready, so if this process dies the sweeper recovers it like any other running task.
    """
    task_run = _claim(task_run_id)
    while task_run is not None:
        with bind_log_context(run_id=task_run.run_id, task_id=task_run.task_id, task_run_id=task_run.id,
                              attempt=task_run.attempt):
            task_run = _execute_claimed(task_run, keep_local_queue=queue)


def _once_more_on_lost_connection(work: Callable[[], T]) -> T:
    """Run `work`; if the database dropped the connection (server restart, killed backend), reconnect and run
    it once more. Only for work guarded by conditional updates, which cannot apply twice."""
    try:
        return work()
    except (OperationalError, InterfaceError):
        connection.close()
        log.warning("database connection lost; reconnecting and trying once more")
        return work()


def _claim(task_run_id: int) -> TaskRun | None:
    """Claim the task run (queued → running); None when another delivery or worker already has it."""
    return _once_more_on_lost_connection(lambda: _claim_once(task_run_id))


def _claim_once(task_run_id: int) -> TaskRun | None:
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _claim_returning(task_run_id, now)
    claimed = (
        TaskRun.objects.filter(id=task_run_id, status=TaskStatus.QUEUED)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now + timedelta(seconds=1)))
        .update(status=TaskStatus.RUNNING, attempt=F("attempt") + 1, started_at=now, heartbeat_at=now,
                worker=worker_name())
    )
    if not claimed:
        return None
    return (TaskRun.objects.select_related("run", "run__workflow")
            .only(*_TASK_RUN_FIELDS, *_RUN_FIELDS, "run__workflow__name", "run__workflow__owner_id")
            .get(id=task_run_id))


def _claim_returning(task_run_id: int, now) -> TaskRun | None:
    """The claim and the read of what the executor needs in ONE round trip (`UPDATE ... FROM ... RETURNING`)."""
    with statements.cursor() as cursor:
        cursor.execute(_claim_sql(), [TaskStatus.RUNNING.value, now, now, worker_name(), task_run_id,
                                      TaskStatus.QUEUED.value, now + timedelta(seconds=1)])
        row = cursor.fetchone()
    if row is None:
        return None
    task_fields, run_fields = len(_CLAIM_TASK_RUN), len(_CLAIM_RUN)
    task_run = _loaded(TaskRun, dict(zip(_CLAIM_TASK_RUN, row[:task_fields])))
    run = _loaded(WorkflowRun, {"id": task_run.run_id, **dict(zip(_CLAIM_RUN, row[task_fields:][:run_fields]))})
    run.workflow = _loaded(Workflow, {"id": run.workflow_id, **dict(zip(("name", "owner_id"), row[-2:]))})
    task_run.run = run
    return task_run


_CLAIM_TASK_RUN = ("id", "run_id", "task_id", "item_index", "attempt", "queue", "logs", "attempts", "started_at",
                   "worker")
_CLAIM_RUN = ("trigger", "trigger_kind", "started_at", "workflow_version_id", "workflow_id")


@cache
def _claim_sql() -> str:
    qn = connection.ops.quote_name
    returned = ", ".join([*(f"t.{qn(c)}" for c in _CLAIM_TASK_RUN), *(f"r.{qn(c)}" for c in _CLAIM_RUN),
                          "w.name", "w.owner_id"])
    return statements.prepared(
        f"UPDATE {qn(TaskRun._meta.db_table)} AS t SET status = %s, attempt = t.attempt + 1, started_at = %s,"
        f" heartbeat_at = %s, worker = %s FROM {qn(WorkflowRun._meta.db_table)} AS r,"
        f" {qn(Workflow._meta.db_table)} AS w WHERE t.id = %s AND t.status = %s"
        f" AND (t.not_before IS NULL OR t.not_before <= %s) AND r.id = t.run_id AND w.id = r.workflow_id"
        f" RETURNING {returned}")


def _loaded(model: type[models.Model], values: dict[str, Any]) -> models.Model:
    """An instance as the ORM would load it with `.only(*values)`: JSON decoded, the other fields deferred."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    prepared = [model._meta.get_field(name).from_db_value(values[name], None, connection)
                if isinstance(model._meta.get_field(name), models.JSONField) and isinstance(values[name], str)
                else values[name] for name in names]
    return model.from_db(connection.alias, names, prepared)


def _execute_claimed(task_run: TaskRun, *, keep_local_queue: str | None) -> TaskRun | None:
    """Execute one attempt of a claimed task run and record it; returns the next task run claimed here."""
    run = task_run.run
    # The reads before the action are safe to repeat; a connection dropped here must not leave the claimed task
    # run `running` under a live worker, which no sweep recovers.
    spec = _once_more_on_lost_connection(lambda: spec_for_version(run.workflow_version_id))
    task = spec.tasks[task_run.task_id]
    secrets = RecordingSecrets(lambda name: secret_value(name, owner_id=run.workflow.owner_id))
    expanding = task.for_each is not None and task_run.item_index is None
    context = _once_more_on_lost_connection(lambda: template_context(
        trigger=run.trigger,
        task_results=_upstream_results(run.id, task) if expanding or _item_reads_steps(task_run, task) else {},
        run={"id": run.id, "workflow": run.workflow.name,
             "started_at": run.started_at.isoformat() if run.started_at else None,
             "resume_urls": _resume_urls(run.id, spec)},
        secrets=secrets,
        task={"idempotency_key": idempotency_key(run.id, task_run.task_id, task_run.item_index)},
        **_item_context(task_run),
    ))
    if expanding:
        next_task_run = _for_each_start(task_run, task, spec, context, keep_local_queue=keep_local_queue)
        if next_task_run is not None:
            next_task_run.run = run  # same run: its trigger and workflow are already loaded
        return next_task_run
    allow_shell = settings.AUTOMATION_ALLOW_SHELL or run.trigger_kind == TriggerKind.CLI
    result = execute_attempt(
        task, template_context=context, registry=default_registry(), config=action_config(allow_shell=allow_shell),
        run_id=run.id, attempt=task_run.attempt, workflow=run.workflow.name, owner_id=run.workflow.owner_id,
        heartbeat=lambda: _heartbeat(task_run), heartbeat_every=settings.AUTOMATION_HEARTBEAT_SECONDS,
        idempotency_key=idempotency_key(run.id, task_run.task_id, task_run.item_index),
        item_index=task_run.item_index,
    )
    next_task_run = task_finish(task_run=task_run, result=result, spec=spec, keep_local_queue=keep_local_queue)
    if next_task_run is not None:
        next_task_run.run = run  # same run: its trigger and workflow are already loaded
    return next_task_run


_TASK_RUN_FIELDS = ("id", "run_id", "task_id", "item_index", "attempt", "queue", "logs", "attempts", "started_at",
                    "worker")
_RUN_FIELDS = ("run__id", "run__trigger", "run__trigger_kind", "run__started_at", "run__workflow_version_id",
               "run__workflow_id")


def _uses_templates(task) -> bool:
    return has_template(task.when) or any(has_template(v) or isinstance(v, (dict, list)) for v in task.inputs.values())


def _upstream_results(run_id: int, task: TaskSpec) -> dict[str, dict]:
    """The results the task's templates can read: only the tasks they name when that is known statically, so a
    templated task reads a few rows, not one per finished task of the run."""
    names = foreach.named_steps(task)
    if names is not None and not names:
        return {}
    rows = TaskRun.objects.filter(
        run_id=run_id, item_index__isnull=True, status__in=[TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED]
    )
    if names is not None:
        rows = rows.filter(task_id__in=sorted(names))
    return {row["task_id"]: row for row in rows.values("task_id", "status", "output")}


def _heartbeat(task_run: TaskRun) -> None:
    try:
        TaskRun.objects.filter(id=task_run.id, status=TaskStatus.RUNNING, attempt=task_run.attempt).update(
            heartbeat_at=timezone.now())
    except (OperationalError, InterfaceError):
        # The database dropped us: skip this beat; the next query reconnects. A lease outlasts several beats.
        connection.close()
        log.warning("heartbeat of task run %s skipped: database connection lost", task_run.id)


def _attempt_entry(task_run: TaskRun, status: str, error: str, now, *, failure: str = "") -> dict:
    return {"attempt": task_run.attempt, "status": status, "error": error[:2000], "failure": failure,
            "worker": task_run.worker,
            "started_at": task_run.started_at.isoformat() if task_run.started_at else None,
            "finished_at": now.isoformat()}


def _joined_logs(task_run: TaskRun, new_logs: str) -> str:
    logs = new_logs
    if task_run.attempt > 1 or task_run.logs:
        logs = (task_run.logs + "\n" if task_run.logs else "") + f"--- attempt {task_run.attempt} ---\n" + new_logs
    return logs[-settings.AUTOMATION_LOG_LIMIT:]


def task_finish(*, task_run: TaskRun, result: AttemptResult, spec: WorkflowSpec,
                keep_local_queue: str | None = None) -> TaskRun | None:
    """Record an attempt; then retry it, or advance the run to the next ready tasks.

    Returns one newly ready task run on `keep_local_queue`, already claimed for this worker and not sent to
    the broker, because the caller will execute it next. A connection lost while recording is re-opened and the
    recording tried once more (it is guarded by status and attempt, so it cannot apply twice); otherwise the
    finished attempt would be lost and the sweeper would execute the task again.
    """
    return _once_more_on_lost_connection(lambda: _record_attempt(task_run, result, spec, keep_local_queue))


def _record_attempt(task_run: TaskRun, result: AttemptResult, spec: WorkflowSpec,
                    keep_local_queue: str | None) -> TaskRun | None:
    try:
        return _record_attempt_once(task_run, result, spec, keep_local_queue)
    except DataError as exc:
        # The database refused what the attempt produced (the executor's checks should have caught it). Record
        # the attempt as failed with that error instead, through the same guarded update, so the task never
        # stays `running` for the sweeper to execute its side effect again.
        log.warning("task run %s: result refused by the database: %s", task_run.id, exc)
        refused = AttemptResult(TaskStatus.FAILED, error=clean_text(f"the result could not be stored: {exc}"),
                                duration=result.duration, failure=FailureKind.OUTPUT_NOT_STORABLE)
        return _record_attempt_once(task_run, refused, spec, keep_local_queue)


def _record_attempt_once(task_run: TaskRun, result: AttemptResult, spec: WorkflowSpec,
                         keep_local_queue: str | None) -> TaskRun | None:
    task = spec.tasks[task_run.task_id]
    now = timezone.now()
    failure = str(result.failure) if result.failure else ""
    common = {
        "output": result.output, "error": result.error, "inputs": result.inputs, "failure": failure,
        "logs": _joined_logs(task_run, result.logs),
        "attempts": task_run.attempts + [_attempt_entry(task_run, str(result.status), result.error, now,
                                                        failure=failure)],
    }
    mine = {"id": task_run.id, "status": TaskStatus.RUNNING, "attempt": task_run.attempt}
    with transaction.atomic():
        if result.status != TaskStatus.WAITING and connection.features.has_select_for_update:
            # The usual case in one statement: the run still running, the attempt recorded and the run row locked.
            values = _attempt_values(task_run, result, task, common, now, cancelled=False)
            counting = _counts_downstream(task_run, spec, values["status"])
            then = (_count_final_statement(task_run.run_id, counting, values["status"], after_change=True)
                    if counting else None)
            recorded = statements.update_in_running_run(TaskRun, values, run_id=task_run.run_id, then=then, **mine)
            if recorded is not None:
                run = WorkflowRun(id=task_run.run_id, status=RunStatus.RUNNING, workflow_id=recorded[0])
                if counting:  # final, and its downstream counted in the same statement
                    return _advance_run(run, spec, task_run.task_id, str(values["status"]),
                                        keep_local_queue=keep_local_queue, counted=recorded[1])
                return _after_attempt(run, spec, task_run, values, keep_local_queue)
        run = statements.lock_run(task_run.run_id)
        cancelled = run.status != RunStatus.RUNNING
        if result.status == TaskStatus.WAITING and not cancelled:
            _record_pause(task_run, result, TaskRun.objects.filter(**mine), common, now)
            if result.pause is not None and result.pause.reason == PauseReason.CHILD_RUN:
                _child_start(task_run, result.pause.details)
            return None
        values = _attempt_values(task_run, result, task, common, now, cancelled=cancelled)
        if statements.update_where(TaskRun, values, **mine) and not cancelled:
            return _after_attempt(run, spec, task_run, values, keep_local_queue)
    return None


def _attempt_values(task_run: TaskRun, result: AttemptResult, task: TaskSpec, common: dict, now, *,
                    cancelled: bool) -> dict:
    """The columns an ended attempt sets: queued again for a retry, or final."""
    # A task that could not run (unknown action, template error, invalid inputs) ran nothing to retry.
    retry = (result.status == TaskStatus.FAILED and result.retryable and not result.could_not_run
             and not cancelled and task_run.attempt <= task.retries)
    if retry:
        delay = retry_delay(task.retry_delay, task_run.attempt)
        return {"status": TaskStatus.QUEUED, "queued_at": now, "not_before": now + timedelta(seconds=delay), **common}
    return {"status": TaskStatus.CANCELLED if cancelled else str(result.status), "finished_at": now, **common}


def _after_attempt(run: WorkflowRun, spec: WorkflowSpec, task_run: TaskRun, values: dict,
                   keep_local_queue: str | None) -> TaskRun | None:
    """With the run row locked and the attempt recorded as `values`: send a retry, or advance the run."""
    if values["status"] == TaskStatus.QUEUED:
        delay = (values["not_before"] - values["queued_at"]).total_seconds()
        transaction.on_commit(lambda: enqueue_task_run(task_run.id, task_run.queue, countdown=delay))
        return None
    return _after_final(run, spec, task_run, values["status"], keep_local_queue=keep_local_queue)


def _advance_run(run: WorkflowRun, spec: WorkflowSpec, task_id: str, status: str,
                 keep_local_queue: str | None = None, counted: list[tuple] | None = None) -> TaskRun | None:
    """With the run row locked, once top-level task `task_id` became final as `status`: skip what can no longer
    run, queue what is ready, finish the run when nothing is left. Only the task's direct downstream rows (and
    those of tasks skipped in turn) are read and written, so a completion costs the same in a run of any size.

    One ready task on `keep_local_queue` is claimed for this worker instead of queued, and returned. `counted`: the
    rows `_count_final` returned when the caller already counted `task_id` in its downstream.
    """
    now = timezone.now()
    ready, waits = _decide_downstream(run.id, spec, task_id, str(status), now, counted=counted)
    kept = next((candidate for candidate in ready if candidate[2] == keep_local_queue), None)
    to_send = [(task_run_id, queue) for task_run_id, _, queue in ready if kept is None or task_run_id != kept[0]]
    if to_send:
        statements.update_where(TaskRun, {"status": TaskStatus.QUEUED, "queued_at": now},
                                id=[task_run_id for task_run_id, _ in to_send], status=TaskStatus.PENDING)
        transaction.on_commit(lambda: enqueue_task_runs(to_send))
    if kept:
        # A pending task run has never been attempted, so this claim makes it attempt 1.
        statements.update_where(TaskRun, {"status": TaskStatus.RUNNING, "attempt": 1, "queued_at": now,
                                          "started_at": now, "heartbeat_at": now, "worker": worker_name()},
                                id=kept[0], status=TaskStatus.PENDING)
    if not ready and not waits:
        _finish_run_if_done(run, spec)
    if kept is None:
        return None
    task_run_id, kept_task_id, queue = kept
    return TaskRun(id=task_run_id, run_id=run.id, task_id=kept_task_id, attempt=1, queue=queue, logs="",
                   attempts=[], status=TaskStatus.RUNNING, started_at=now, worker=worker_name())


def _decide_downstream(run_id: int, spec: WorkflowSpec, task_id: str, status: str, now,
                       counted: list[tuple] | None = None) -> tuple[list[tuple[int, str, str]], bool]:
    """Count `task_id` final in its pending direct downstream rows and decide each from its counters; a row
    skipped here is counted final in its own downstream rows in turn (a worklist: a long chain of skips needs no
    recursion). Returns the rows to start, (id, task_id, queue) in creation order, and whether a row still waits.
    """
    decided: dict[int, tuple[str, str, str]] = {}  # row id -> (decision, task_id, queue); the first RUN/SKIP holds
    finished = [(task_id, status)]
    while finished:
        done_id, done_status = finished.pop()
        downstream = spec.downstream.get(done_id)
        if not downstream:
            continue
        skipped: dict[str, list[int]] = {}  # reason -> row ids
        if counted is not None and done_id == task_id:
            rows, counted = counted, None
        else:
            rows = _count_final(run_id, downstream, done_status)
        for row_id, row_task, queue, left, succeeded, failed in rows:
            if decided.get(row_id, (None,))[0] == RUN:
                continue  # a one_failed/one_success task already started by an earlier upstream in this worklist
            task = spec.tasks[row_task]
            decision = count_decision(task.trigger_rule, len(set(task.depends_on)), left, succeeded, failed)
            decided[row_id] = (decision, row_task, queue)
            if decision == SKIP:
                skipped.setdefault(skip_reason(task.trigger_rule, {done_id: done_status}), []).append(row_id)
                finished.append((row_task, TaskStatus.SKIPPED.value))
        for reason, row_ids in skipped.items():
            statements.update_where(TaskRun, {"status": TaskStatus.SKIPPED, "finished_at": now, "error": reason},
                                    id=row_ids, status=TaskStatus.PENDING)
    ready = sorted((row_id, row_task, queue) for row_id, (decision, row_task, queue) in decided.items()
                   if decision == RUN)
    return ready, any(decision not in (RUN, SKIP) for decision, _, _ in decided.values())


def _count_final(run_id: int, task_ids: tuple[str, ...], status: str) -> list[tuple]:
    """One UPDATE: count an upstream final as `status` in the still-pending top-level rows of `task_ids`; returns
    (id, task_id, queue, upstream_left, upstream_succeeded, upstream_failed) of each row it changed."""
    with statements.cursor() as cursor:
        cursor.execute(*_count_final_statement(run_id, task_ids, status))
        return cursor.fetchall()


def _counts_downstream(task_run: TaskRun, spec: WorkflowSpec, status: str) -> tuple[str, ...]:
    """The tasks whose rows count `task_run` final as `status`: its direct downstream, when it is a top-level row
    ending now (not queued again for a retry)."""
    if task_run.item_index is not None or status == TaskStatus.QUEUED:
        return ()
    return spec.downstream.get(task_run.task_id) or ()


def _count_final_statement(run_id: int, task_ids: tuple[str, ...], status: str, *,
                           after_change: bool = False) -> tuple[str, list]:
    """`_count_final`'s UPDATE and its parameters; `after_change`: as the `then` of update_in_running_run."""
    params = [int(status == TaskStatus.SUCCEEDED), int(status == TaskStatus.FAILED), run_id, TaskStatus.PENDING.value,
              *task_ids]
    return _count_final_sql(len(task_ids), after_change), params


@cache
def _count_final_sql(downstream: int, after_change: bool) -> str:
    placeholders = ", ".join(["%s"] * downstream)
    sql = (f"UPDATE {TaskRun._meta.db_table} SET upstream_left = upstream_left - 1,"
           f" upstream_succeeded = upstream_succeeded + %s, upstream_failed = upstream_failed + %s"
           f" WHERE run_id = %s AND item_index IS NULL AND status = %s AND task_id IN ({placeholders})"
           f"{statements.AFTER_CHANGE if after_change else ''}"
           f" RETURNING id, task_id, queue, upstream_left, upstream_succeeded, upstream_failed")
    return statements.prepared(sql) if downstream == 1 else sql


def _finish_run_if_done(run: WorkflowRun, spec: WorkflowSpec) -> None:
    """With the run row locked: once no top-level task run is unfinished (one index probe, the partial index
    `taskrun_unfinished`), end the run with the outcome of SPEC §3, read in the same statement."""
    ended = statements.top_level_outcome(run.id)
    if ended is None:
        return
    outcome = (RunStatus.FAILED if TaskStatus.FAILED in ended
               else RunStatus.CANCELLED if TaskStatus.CANCELLED in ended else RunStatus.SUCCEEDED)
    _finish_run(run, outcome, spec)


def _finish_run(run: WorkflowRun, outcome: RunStatus, spec: WorkflowSpec) -> None:
    ended, parent_task_run_id = statements.finish_run(run.id, str(outcome), timezone.now())
    if ended:
        transaction.on_commit(lambda: run_finished_announce(run.id))
        if parent_task_run_id is not None or outcome == RunStatus.FAILED:  # else it has nothing to do
            transaction.on_commit(lambda: run_finished_follow_up(run_id=run.id))
    if spec.concurrency:
        transaction.on_commit(lambda: _start_next_queued(run.workflow_id))


def _start_next_queued(workflow_id: int) -> None:
    next_id = (WorkflowRun.objects.filter(workflow_id=workflow_id, status=RunStatus.QUEUED)
               .order_by("id").values_list("id", flat=True).first())
    if next_id:
        enqueue_run_start(next_id)


# --- child runs and on_failure handlers (SPEC §9) -------------------------------------------------------------


def _child_start(task_run: TaskRun, details: dict) -> None:
    """With the parent run locked and its flow.run_workflow task just paused: start the child run, or fail the
    task. The child is stored in the transaction that makes the task wait, so neither exists without the other."""
    paused = TaskRun.objects.filter(id=task_run.id, status=TaskStatus.WAITING, attempt=task_run.attempt,
                                    child_runs__isnull=True)
    if not paused.exists():
        return  # this attempt was not recorded as waiting (cancelled, or recorded by an earlier try)
    parent = (WorkflowRun.objects.select_related("workflow").only("id", "depth", "workflow__owner_id")
              .get(id=task_run.run_id))
    name = str(details.get("workflow", ""))
    try:
        target = children.workflow_of_owner(owner_id=parent.workflow.owner_id, name=name)
        depth = children.child_depth(parent_depth=parent.depth, name=name)
    except children.ChildRunRefused as exc:
        task_resume(task_run_id=task_run.id, status=TaskStatus.FAILED, output={}, error=str(exc))
        return
    trigger = children.child_trigger(payload=details.get("payload"), parent_run_id=parent.id,
                                     task_id=task_run.task_id)
    try:
        child = run_create(workflow=target, trigger=trigger, trigger_kind=TriggerKind.CHILD, parent_run=parent,
                           parent_task_run_id=task_run.id, depth=depth)
    except RunError as exc:
        task_resume(task_run_id=task_run.id, status=TaskStatus.FAILED, output={}, error=str(exc))
        return
    if details.get("wait", True):
        paused.update(output={"run_id": child.id, "workflow": target.name})
    else:
        task_resume(task_run_id=task_run.id, status=TaskStatus.SUCCEEDED, output={"run_id": child.id},
                    note=f"started run {child.id} of {target.name!r}")


def run_finished_follow_up(*, run_id: int) -> None:
    """Once a run's final status is committed: end the parent task that waits for it, and start its workflow's
    `on_failure` handler. Each step is guarded, so a repeated call (a duplicate finish, the sweep) does it once."""
    run = WorkflowRun.objects.filter(id=run_id).values("status", "parent_task_run_id", "failure_handled").first()
    if run is None or run["status"] not in FINAL_RUN:
        return
    if run["parent_task_run_id"] is not None:
        child_run_resume_parent(child_run_id=run_id)
    if run["status"] == RunStatus.FAILED and not run["failure_handled"]:
        run_failure_handle(run_id=run_id)


def child_run_resume_parent(*, child_run_id: int) -> TaskRun | None:
    """The child run ended: its parent's waiting flow.run_workflow task ends with the child's result."""
    child = WorkflowRun.objects.select_related("workflow").get(id=child_run_id)
    if child.status not in FINAL_RUN or child.parent_task_run_id is None:
        return None
    if not TaskRun.objects.filter(id=child.parent_task_run_id, status=TaskStatus.WAITING).exists():
        return None  # ended already, cancelled, or the child was started without `wait`
    status, output, error = children.child_result(child)
    return task_resume(task_run_id=child.parent_task_run_id, status=status, output=output, error=error,
                       note=f"child run {child.id} {child.status}")


def run_failure_handle(*, run_id: int) -> WorkflowRun | None:
    """Start the failed run's `on_failure` workflow exactly once: the guard flag and the handler's run commit
    together. A handler's own failure starts no handler (no loop); a name no workflow of the owner has is logged.
    """
    with bind_log_context(run_id=run_id), transaction.atomic():
        if not WorkflowRun.objects.filter(id=run_id, status=RunStatus.FAILED, failure_handled=False).update(
                failure_handled=True):
            return None
        run = WorkflowRun.objects.select_related("workflow").get(id=run_id)
        on_failure = spec_for_version(run.workflow_version_id).on_failure
        if not on_failure or run.trigger_kind == TriggerKind.FAILURE_HANDLER:
            return None
        try:
            target = children.workflow_of_owner(owner_id=run.workflow.owner_id, name=on_failure)
        except children.ChildRunRefused as exc:
            log.warning("run %s failed; its on_failure handler was not started: %s", run.id, exc)
            return None
        trigger = {"body": children.failure_report(run), "kind": str(TriggerKind.FAILURE_HANDLER)}
        try:
            return run_create(workflow=target, trigger=trigger, trigger_kind=TriggerKind.FAILURE_HANDLER)
        except RunError as exc:
            log.warning("run %s failed; its on_failure handler was not started: %s", run.id, exc)
            return None


def _sweep_children_and_failures(now) -> dict[str, int]:
    """What a lost on-commit follow-up left: parents still waiting for ended children, unhandled failed runs."""
    ended = sum(1 for child_id in children.ended_children_waited_for()[:500]
                if child_run_resume_parent(child_run_id=child_id) is not None)
    handled = sum(1 for run_id in children.failed_runs_unhandled(now=now)[:500]
                  if run_failure_handle(run_id=run_id) is not None)
    return {"children_ended": ended, "failure_handlers": handled}


# --- operator actions: cancel, retry, re-run ----------------------------------------------------------------


def run_cancel(*, run_id: int) -> WorkflowRun:
    """Cancel the run: queued and pending tasks at once, running ones when they return."""
    now = timezone.now()
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(id=run_id)
        if run.status in FINAL_RUN:
            return run
        waited_for = children.children_waited_for(run_id=run.id)
        unfinished = [TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.WAITING]
        TaskRun.objects.filter(run_id=run.id, status__in=unfinished).update(
            status=TaskStatus.CANCELLED, finished_at=now)
        run.status, run.finished_at = RunStatus.CANCELLED, now
        run.save(update_fields=["status", "finished_at"])
        transaction.on_commit(lambda: run_finished_announce(run.id))
        transaction.on_commit(lambda: run_finished_follow_up(run_id=run.id))
        for child_id in waited_for:  # and so on down the chain of children (SPEC §9)
            run_cancel(run_id=child_id)
    return run


def run_retry(*, run_id: int) -> WorkflowRun:
    """A new run of the same definition version that re-executes only the failed, skipped and cancelled tasks."""
    origin = WorkflowRun.objects.select_related("workflow").get(id=run_id)
    if origin.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise RunStateConflict(f"only failed or cancelled runs can be retried; run {origin.id} is {origin.status}")
    succeeded = list(TaskRun.objects.filter(run=origin, status=TaskStatus.SUCCEEDED).values_list("task_id", flat=True))
    return run_create(workflow=origin.workflow, trigger=origin.trigger, trigger_kind=TriggerKind.RETRY,
                      version=origin.workflow_version, parent=origin, reuse_tasks=succeeded)


def run_rerun(*, run_id: int, from_task: str, version: str = "original", trigger: dict | None = None) -> WorkflowRun:
    """A new run that executes `from_task` and everything downstream of it, reusing the other outputs."""
    origin = WorkflowRun.objects.select_related("workflow", "workflow_version").get(id=run_id)
    if origin.status not in FINAL_RUN:
        raise RunStateConflict(f"run {origin.id} is still {origin.status}; cancel it or wait for it to finish")
    if version not in ("original", "current"):
        raise RunError("version must be 'original' or 'current'")
    target = origin.workflow_version if version == "original" else origin.workflow.current_version
    spec = spec_for_version(target.id)
    if from_task not in spec.tasks:
        raise RunError(f"unknown task '{from_task}' in version {target.version}")
    rerun = downstream_of(spec.depends_on, {from_task})
    succeeded = TaskRun.objects.filter(run=origin, status=TaskStatus.SUCCEEDED).values_list("task_id", flat=True)
    reuse = [t for t in succeeded if t in spec.tasks and t not in rerun]
    return run_create(workflow=origin.workflow, trigger=origin.trigger if trigger is None else trigger,
                      trigger_kind=TriggerKind.RERUN, version=target, parent=origin, reuse_tasks=reuse)


# --- recovery ------------------------------------------------------------------------------------------------


def sweep(*, now=None) -> dict[str, int]:
    """Recover work the broker or a worker lost: task runs of dead workers (zombies), lost task messages, unstarted
    runs. Liveness comes from the workers' heartbeat rows (runs.workers), what the broker still holds from
    runs.recovery; every re-send is guarded, so a message sent twice only costs a refused claim."""
    now = now or timezone.now()
    counts = {"zombies": 0, "requeued": 0, "restarted": 0,
              "resumed": _resume_overdue(now), "hinted": _hint_upcoming(now)}
    for task_run in _zombies(now).select_related("run")[:500]:
        counts["zombies"] += _recover_zombie(task_run, now)
    queued = TaskRun.objects.filter(status=TaskStatus.QUEUED)
    unstarted = WorkflowRun.objects.filter(status=RunStatus.QUEUED)
    if recovery.broker_lost_everything(queued.values_list("queue", flat=True).distinct()):
        counts["requeued"] += _resend_task_runs(queued.filter(queued_at__lt=now), now, limit=10_000)
        counts["restarted"] += _resend_run_starts(unstarted.filter(created_at__lt=now), limit=10_000)
    else:
        counts["requeued"] += _resend_task_runs(_queued_long_ago(now), now) + _resend_lost_messages(now)
        counts["restarted"] += _resend_lost_run_starts(now)
    counts.update(_sweep_children_and_failures(now))
    if recovery.due("forget-dead-workers", 600):
        workers.forget_dead(now)
    return counts


def _zombies(now) -> models.QuerySet:
    """Running task runs whose worker is dead; or, for a worker that keeps no heartbeat row (an older worker), whose
    own heartbeat is older than the lease. A live worker's quiet task (a long shell.run) is never one."""
    lease = timedelta(seconds=settings.AUTOMATION_TASK_LEASE_SECONDS)
    beating = WorkerHeartbeat.objects.filter(name=OuterRef("worker"))
    return TaskRun.objects.filter(status=TaskStatus.RUNNING).filter(
        Q(worker__in=workers.dead_workers(now)) | (Q(heartbeat_at__lt=now - lease) & ~Exists(beating)))


def _queued_long_ago(now) -> models.QuerySet:
    """Queued task runs still unclaimed AUTOMATION_REQUEUE_AFTER_SECONDS after they were (re)sent: the fallback
    for brokers whose messages cannot be looked at."""
    before = now - timedelta(seconds=settings.AUTOMATION_REQUEUE_AFTER_SECONDS)
    return (TaskRun.objects.filter(status=TaskStatus.QUEUED, queued_at__lt=before)
            .filter(Q(not_before__isnull=True) | Q(not_before__lt=before)))


def _resend_task_runs(stale: models.QuerySet, now, *, limit: int = 1000) -> int:
    """Send `stale` queued task runs again (a retry keeps what is left of its delay); returns how many."""
    sent = 0
    for task_run_id, queue, not_before in stale.order_by("id").values_list("id", "queue", "not_before")[:limit]:
        if TaskRun.objects.filter(id=task_run_id, status=TaskStatus.QUEUED).update(queued_at=now):
            enqueue_task_run(task_run_id, queue, countdown=max((not_before - now).total_seconds(), 0)
                             if not_before else 0)
            sent += 1
    return sent


def _resend_lost_messages(now) -> int:
    """Queued task runs whose message the broker no longer holds (a failed publish, a lost message), found
    AUTOMATION_LOST_MESSAGE_SECONDS after they were sent instead of the fixed re-send delay."""
    quiet = now - timedelta(seconds=settings.AUTOMATION_LOST_MESSAGE_SECONDS)
    candidates = (TaskRun.objects.filter(status=TaskStatus.QUEUED, queued_at__lt=quiet)
                  .filter(Q(not_before__isnull=True) | Q(not_before__lt=quiet)).order_by("id")
                  .values_list("id", "queue")[:recovery.SMALL_QUEUE])
    missing = recovery.missing_messages([("runs.execute_task", task_run_id, queue)
                                         for task_run_id, queue in candidates])
    return _resend_task_runs(TaskRun.objects.filter(id__in=[task_run_id for _, task_run_id, _ in missing],
                                                    queued_at__lt=quiet), now)


def _resend_run_starts(unstarted: models.QuerySet, *, limit: int = 1000) -> int:
    run_ids = list(unstarted.order_by("id").values_list("id", flat=True)[:limit])
    for run_id in run_ids:
        enqueue_run_start(run_id)
    return len(run_ids)


def _resend_lost_run_starts(now) -> int:
    """Queued runs whose start message is lost: checked a few times once they are AUTOMATION_LOST_MESSAGE_SECONDS
    old; all of them again every AUTOMATION_REQUEUE_AFTER_SECONDS (a run waiting for its workflow's `concurrency`
    is queued without a message, so it is not sent on every sweep)."""
    unstarted = WorkflowRun.objects.filter(status=RunStatus.QUEUED)
    if recovery.due("run-starts", settings.AUTOMATION_REQUEUE_AFTER_SECONDS):
        before = now - timedelta(seconds=settings.AUTOMATION_REQUEUE_AFTER_SECONDS)
        return _resend_run_starts(unstarted.filter(created_at__lt=before))
    quiet = now - timedelta(seconds=settings.AUTOMATION_LOST_MESSAGE_SECONDS)
    recent = unstarted.filter(created_at__lt=quiet,
                              created_at__gte=quiet - timedelta(seconds=3 * settings.AUTOMATION_SWEEP_SECONDS))
    calls = [("runs.start_run", run_id, settings.CELERY_TASK_DEFAULT_QUEUE)
             for run_id in recent.order_by("id").values_list("id", flat=True)[:recovery.SMALL_QUEUE]]
    return _resend_run_starts(WorkflowRun.objects.filter(
        id__in=[run_id for _, run_id, _ in recovery.missing_messages(calls)], status=RunStatus.QUEUED))


def _recover_zombie(task_run: TaskRun, now) -> int:
    """A running task run whose worker stopped beating: record the lost attempt, then re-queue or fail it."""
    spec = spec_for_version(task_run.run.workflow_version_id)
    lost = sum(1 for a in task_run.attempts if a.get("status") == "lost") + 1
    error = f"worker {task_run.worker or '?'} lost (no heartbeat since {task_run.heartbeat_at:%H:%M:%S})"
    entry = _attempt_entry(task_run, "lost", error, now)
    logs = _joined_logs(task_run, f"[{error}]")
    with transaction.atomic():
        run = statements.lock_run(task_run.run_id)
        mine = TaskRun.objects.filter(id=task_run.id, status=TaskStatus.RUNNING, attempt=task_run.attempt,
                                      heartbeat_at=task_run.heartbeat_at)
        if run.status == RunStatus.RUNNING and lost < settings.AUTOMATION_MAX_LOST_ATTEMPTS:
            if mine.update(status=TaskStatus.QUEUED, queued_at=now, not_before=None, logs=logs,
                           attempts=task_run.attempts + [entry]):
                transaction.on_commit(lambda: enqueue_task_run(task_run.id, task_run.queue))
                return 1
            return 0
        final = TaskStatus.FAILED if run.status == RunStatus.RUNNING else TaskStatus.CANCELLED
        message = f"{error}; gave up after {lost} lost attempts" if final == TaskStatus.FAILED else error
        failure = FailureKind.WORKER_LOST.value if final == TaskStatus.FAILED else ""
        if mine.update(status=final, finished_at=now, error=message, failure=failure, logs=logs,
                       attempts=task_run.attempts + [entry]):
            if final == TaskStatus.FAILED:
                _after_final(run, spec, task_run, final)
            return 1
    return 0


# --- pauses: flow.wait and flow.approval (SPEC §9) -----------------------------------------------------------
# A paused task run is `waiting` with `resume_at` in the database and holds no worker. A Celery message with an
# ETA (runs.resume_due) is only a hint that wakes it on time; the recovery sweep resumes anything overdue, so a
# worker restart or a broker flush loses nothing. Every resumption is a guarded `waiting → final` update.

RESUME_TOKEN_SALT = "flowforge.runs.resume-url"


class ResumeTokenUnknown(LookupError):
    """No waiting-capable task run has this resume token (the view answers 404)."""


class ReplyInvalid(RunError):
    """An approval reply the task cannot take (the view answers 400 naming `path`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


def resume_token(task_run_id: int) -> str:
    """The secret in a task run's resume URL: derivable from its id with SECRET_KEY (so every task of the run can
    be shown the URL before the approval task pauses), unguessable without it, and good for that task run only."""
    return salted_hmac(RESUME_TOKEN_SALT, str(task_run_id), algorithm="sha256").hexdigest()


def resume_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def resume_url(task_run_id: int) -> str:
    return f"{settings.PUBLIC_URL}/resume/{resume_token(task_run_id)}"


def _resume_urls(run_id: int, spec: WorkflowSpec) -> dict[str, str]:
    """`run.resume_urls`: the resume URL of every flow.approval task of the run, by task id."""
    approvals = spec.task_ids_by_action.get(FlowApproval.name)
    if not approvals:
        return {}
    rows = TaskRun.objects.filter(run_id=run_id, task_id__in=approvals, item_index__isnull=True)
    return {task_id: resume_url(task_run_id) for task_id, task_run_id in rows.values_list("task_id", "id")}


def _record_pause(task_run: TaskRun, result: AttemptResult, mine: models.QuerySet, common: dict, now) -> None:
    """Record an attempt that paused: `waiting`, no worker, its wake-up time stored, a wake-up hint sent."""
    pause = result.pause
    until = pause.until if pause else None
    approval = pause is not None and pause.reason == PauseReason.APPROVAL
    token_hash = resume_token_hash(resume_token(task_run.id)) if approval else None
    if mine.update(status=TaskStatus.WAITING, resume_at=until, resume_token_hash=token_hash, worker="",
                   heartbeat_at=None, **common) and until is not None:
        transaction.on_commit(lambda: _hint_resume(task_run.id, task_run.queue, until))


def _hint_resume(task_run_id: int, queue: str, until) -> None:
    """Ask a worker to resume the task run at `until`; only within the broker's redelivery horizon (a longer ETA
    would be delivered again every visibility timeout), later ones are hinted by the sweep as they come near."""
    delay = (until - timezone.now()).total_seconds()
    if delay <= _hint_horizon_seconds():
        _send("resume_due", (task_run_id,), queue=queue, eta=until if delay > 0 else None)


def _hint_horizon_seconds() -> float:
    # Half the Redis visibility timeout: an unacknowledged ETA message is redelivered after it.
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return float(options.get("visibility_timeout", 3600)) / 2


def task_resume(*, task_run_id: int, status: TaskStatus, output: dict, error: str = "", note: str = "",
                now=None) -> TaskRun | None:
    """Finish a waiting task run as `status` and advance its run. None when it is not waiting (any more): another
    resumption, a cancel or a duplicate message won. A run that is no longer running gets the task cancelled."""
    now = now or timezone.now()
    run_id = TaskRun.objects.filter(id=task_run_id).values_list("run_id", flat=True).first()
    if run_id is None:
        return None
    with transaction.atomic():
        run = statements.lock_run(run_id)
        row = TaskRun.objects.select_for_update().filter(id=task_run_id, status=TaskStatus.WAITING).first()
        if row is None:
            return None
        running = run.status == RunStatus.RUNNING
        row.status = str(status) if running else TaskStatus.CANCELLED.value
        row.output, row.error, row.finished_at = output, error, now
        row.failure = FailureKind.ACTION_FAILED.value if row.status == TaskStatus.FAILED else ""
        row.logs = _joined_logs_line(row.logs, note or error or f"resumed: {row.status}")
        row.save(update_fields=["status", "output", "error", "finished_at", "failure", "logs"])
        if running:
            version_id = WorkflowRun.objects.values_list("workflow_version_id", flat=True).get(id=run.id)
            _after_final(run, spec_for_version(version_id), row)
    return row


def _joined_logs_line(logs: str, line: str) -> str:
    return ((logs + "\n" if logs else "") + f"[{line}]")[-settings.AUTOMATION_LOG_LIMIT:]


def task_resume_due(*, task_run_id: int, now=None) -> TaskRun | None:
    """The wake-up of a waiting flow.wait or flow.approval task run: a wait succeeds, an approval times out."""
    now = now or timezone.now()
    row = (TaskRun.objects.filter(id=task_run_id, status=TaskStatus.WAITING, resume_at__isnull=False)
           .select_related("run").only("id", "task_id", "queue", "resume_at", "output", "run__workflow_version_id")
           .first())
    if row is None:
        return None
    if row.resume_at > now:  # an early hint (clock skew, or the sweep's look-ahead): ask again for the right time
        _hint_resume(row.id, row.queue, row.resume_at)
        return None
    action = spec_for_version(row.run.workflow_version_id).tasks[row.task_id].action
    if action == FlowWait.name:
        return task_resume(task_run_id=row.id, status=TaskStatus.SUCCEEDED, now=now,
                           output={"waited_until": row.resume_at.isoformat()}, note="waited until "
                           + row.resume_at.isoformat())
    if action == FlowApproval.name:
        return task_resume(task_run_id=row.id, status=TaskStatus.FAILED, output=row.output, now=now,
                           error="approval timed out")
    return None


def approval_answer(*, task_run_id: int, reply: dict, by: str) -> TaskRun:
    """Answer a waiting approval: `approved: true` succeeds the task with the reply plus `by`, false fails it
    ("rejected"). Raises RunError for a reply without a boolean `approved`, RunStateConflict when it no longer
    waits."""
    approved = reply.get("approved")
    if not isinstance(approved, bool):
        raise ReplyInvalid("approved", "required: true or false")
    output = {**reply, "by": by}
    try:
        check_storable(output, "")
    except LimitExceeded as exc:
        raise ReplyInvalid(exc.path, exc.message) from None
    row = (TaskRun.objects.filter(id=task_run_id)
           .only("id", "task_id", "run_id", "status", "resume_token_hash").first())
    if row is None:
        raise ResumeTokenUnknown(task_run_id)
    # Only a paused flow.approval has a token hash: a waiting flow.wait or child run is not answered here.
    if row.status == TaskStatus.WAITING and row.resume_token_hash:
        status = TaskStatus.SUCCEEDED if approved else TaskStatus.FAILED
        done = task_resume(task_run_id=row.id, status=status, output=output, error="" if approved else "rejected",
                           note=f"{'approved' if approved else 'rejected'} by {by}")
        if done is not None:
            return done
    raise RunStateConflict(f"task {row.task_id} of run {row.run_id} is not waiting for approval")


def task_run_for_resume_token(*, token: str) -> int:
    """The id of the task run whose resume URL carries `token`; ResumeTokenUnknown if none does."""
    task_run_id = (TaskRun.objects.filter(resume_token_hash=resume_token_hash(token))
                   .values_list("id", flat=True).first())
    if task_run_id is None:
        raise ResumeTokenUnknown("unknown resume token")
    return task_run_id


def _resume_overdue(now) -> int:
    """Sweep: resume every waiting task run whose time has come (its hint was lost, or never sent)."""
    overdue = TaskRun.objects.filter(status=TaskStatus.WAITING, resume_at__lte=now).order_by("resume_at")
    return sum(1 for task_run_id in overdue.values_list("id", flat=True)[:1000]
               if task_resume_due(task_run_id=task_run_id, now=now))


def _hint_upcoming(now) -> int:
    """Sweep: hint the waits too far off to be hinted when they paused, once they come within two sweeps."""
    horizon = timedelta(seconds=_hint_horizon_seconds())
    soon = (TaskRun.objects.filter(status=TaskStatus.WAITING, resume_at__gt=now,
                                   resume_at__lte=now + timedelta(seconds=2 * settings.AUTOMATION_SWEEP_SECONDS))
            .filter(resume_at__gt=F("started_at") + horizon))
    rows = list(soon.values_list("id", "queue", "resume_at")[:1000])
    for task_run_id, queue, until in rows:
        _hint_resume(task_run_id, queue, until)
    return len(rows)


# --- for_each: one task run per item (SPEC §9) ----------------------------------------------------------------
# The task's own row (item_index NULL) is claimed like any task: its worker renders `for_each` and, under the run
# lock, creates the item rows (pending) and turns the parent `waiting`. At most `max_parallel` items are queued or
# running at once: each final item queues the next pending one under the same lock, and the last one finishes
# the parent, after which the run advances as for any task. The run-level advance never reads the items.

_IN_FLIGHT = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING)


# The parent's rendered list never changes once its items exist, so a worker reads it once per for_each task and
# keeps it for that task's following items (the mini scheduler runs them here one after another).
_ITEM_LISTS: dict[tuple, list] = {}
_ITEM_LISTS_KEPT = 4


def _item_reads_steps(task_run: TaskRun, task: TaskSpec) -> bool:
    """Whether the task run's templates need the upstream results; an item's only if they name `steps`/`tasks`."""
    if not _uses_templates(task):
        return False
    return task_run.item_index is None or foreach.reads_steps(task)


def _item_context(task_run: TaskRun) -> dict:
    """`item` and `index` for an item's templates: its value comes from the parent row's rendered list."""
    if task_run.item_index is None:
        return {}
    key = (task_run.run_id, task_run.task_id, task_run.run.started_at)  # a test database may reuse ids
    values = _ITEM_LISTS.get(key)
    if values is None:
        inputs = (TaskRun.objects.filter(run_id=task_run.run_id, task_id=task_run.task_id, item_index__isnull=True)
                  .values_list("inputs", flat=True).first()) or {}
        values = inputs.get("for_each") or []
        while len(_ITEM_LISTS) >= _ITEM_LISTS_KEPT:
            _ITEM_LISTS.pop(next(iter(_ITEM_LISTS)))
        _ITEM_LISTS[key] = values
    value = values[task_run.item_index] if task_run.item_index < len(values) else None
    return {"item": value, "index": task_run.item_index}


def _after_final(run: WorkflowRun, spec: WorkflowSpec, task_run: TaskRun, status: str | None = None,
                 keep_local_queue: str | None = None) -> TaskRun | None:
    """With the run row locked, once `task_run` is final as `status` (by default its `status`): an item moves
    its for_each task on; any other task run advances the run."""
    if task_run.item_index is not None:
        return _for_each_item_done(run, spec, task_run.task_id, task_run.item_index, keep_local_queue=keep_local_queue)
    return _advance_run(run, spec, task_run.task_id, status or task_run.status, keep_local_queue=keep_local_queue)


def _for_each_start(task_run: TaskRun, task: TaskSpec, spec: WorkflowSpec, context: dict, *,
                    keep_local_queue: str | None) -> TaskRun | None:
    """The claimed parent row of a for_each task: create its items, or skip/fail it when the list says so."""
    expansion = foreach.expand(task, context, max_items=settings.AUTOMATION_MAX_ITEMS)
    now = timezone.now()
    with transaction.atomic():
        run = statements.lock_run(task_run.run_id)
        mine = TaskRun.objects.filter(id=task_run.id, status=TaskStatus.RUNNING, attempt=task_run.attempt)
        if run.status != RunStatus.RUNNING:
            mine.update(status=TaskStatus.CANCELLED, finished_at=now)
            return None
        if expansion.status is not None:
            failure = str(expansion.failure) if expansion.failure else ""
            if mine.update(status=str(expansion.status), error=expansion.error, failure=failure, finished_at=now,
                           logs=_joined_logs(task_run, f"[{expansion.error}]")):
                return _advance_run(run, spec, task.id, str(expansion.status), keep_local_queue=keep_local_queue)
            return None
        if not mine.update(status=TaskStatus.WAITING, inputs={"for_each": expansion.items}, worker="",
                           heartbeat_at=None, logs=_joined_logs(task_run, f"[{len(expansion.items)} items]")):
            return None
        TaskRun.objects.bulk_create(
            [TaskRun(run_id=run.id, task_id=task.id, item_index=index, queue=task_run.queue)
             for index in range(len(expansion.items))], batch_size=500)
        return _for_each_queue_items(run, task, keep_local_queue=keep_local_queue)


def _for_each_queue_items(run: WorkflowRun, task: TaskSpec, *, keep_local_queue: str | None) -> TaskRun | None:
    """With the run row locked: queue pending items, lowest index first, until `max_parallel` are in flight. One
    on `keep_local_queue` is claimed for this worker instead (the mini scheduler) and returned."""
    items = TaskRun.objects.filter(run_id=run.id, task_id=task.id, item_index__isnull=False)
    free = task.max_parallel - items.filter(status__in=_IN_FLIGHT).count()
    if free <= 0:
        return None
    chosen = list(items.filter(status=TaskStatus.PENDING).order_by("item_index")
                  .values_list("id", "item_index", "queue")[:free])
    if not chosen:
        return None
    now = timezone.now()
    kept = chosen[0] if chosen[0][2] == keep_local_queue else None
    to_send = [(task_run_id, queue) for task_run_id, _, queue in chosen[1 if kept else 0:]]
    if to_send:
        TaskRun.objects.filter(id__in=[task_run_id for task_run_id, _ in to_send], status=TaskStatus.PENDING).update(
            status=TaskStatus.QUEUED, queued_at=now)
        transaction.on_commit(lambda: enqueue_task_runs(to_send))
    if kept is None:
        return None
    task_run_id, item_index, queue = kept
    if not TaskRun.objects.filter(id=task_run_id, status=TaskStatus.PENDING).update(
            status=TaskStatus.RUNNING, attempt=1, queued_at=now, started_at=now, heartbeat_at=now,
            worker=worker_name()):
        return None
    return TaskRun(id=task_run_id, run_id=run.id, task_id=task.id, item_index=item_index, attempt=1, queue=queue,
                   logs="", attempts=[], status=TaskStatus.RUNNING, started_at=now, worker=worker_name())


def _for_each_item_done(run: WorkflowRun, spec: WorkflowSpec, task_id: str, done_index: int, *,
                        keep_local_queue: str | None) -> TaskRun | None:
    """With the run row locked, after item `done_index` became final: start the next pending item in its place,
    or finish the parent row once every item is final and advance the run.

    Items start in index order and only here or at the expansion, so the pending ones are a tail of indexes above
    `done_index`; one final item frees exactly one of the `max_parallel` places. Finding the next item is one
    indexed UPDATE whatever the number of items; all items are read once, when the last one is final."""
    task = spec.tasks[task_id]
    started, kept = _for_each_start_next(run, task, done_index, keep_local_queue=keep_local_queue)
    if started:
        return kept
    items = TaskRun.objects.filter(run_id=run.id, task_id=task_id, item_index__isnull=False)
    if items.exclude(status__in=[str(s) for s in FINAL_TASK]).exists():
        return None
    if (items.aggregate(size=Sum(Length(Cast("output", TextField()))))["size"] or 0) > MAX_OUTPUT_BYTES:
        result = foreach.too_large()
    else:
        result = foreach.outcome(list(items.order_by("item_index").values_list("status", "output", "error")))
    failure = str(result.failure or (FailureKind.ACTION_FAILED if result.status == TaskStatus.FAILED else ""))
    parent = TaskRun.objects.filter(run_id=run.id, task_id=task_id, item_index__isnull=True,
                                    status=TaskStatus.WAITING)
    if not parent.update(status=str(result.status), output=result.output, error=result.error, failure=failure,
                         finished_at=timezone.now()):
        return None
    return _advance_run(run, spec, task_id, str(result.status), keep_local_queue=keep_local_queue)


def _for_each_start_next(run: WorkflowRun, task: TaskSpec, after_index: int, *,
                         keep_local_queue: str | None) -> tuple[bool, TaskRun | None]:
    """With the run row locked: the lowest pending item above `after_index` becomes running here (its queue is
    `keep_local_queue`) or queued for the broker, in one UPDATE. (started?, the item claimed here)."""
    now = timezone.now()
    table = TaskRun._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = CASE WHEN queue = %s THEN %s ELSE %s END, queued_at = %s,"
            f" attempt = CASE WHEN queue = %s THEN 1 ELSE attempt END,"
            f" started_at = CASE WHEN queue = %s THEN %s ELSE started_at END,"
            f" heartbeat_at = CASE WHEN queue = %s THEN %s ELSE heartbeat_at END,"
            f" worker = CASE WHEN queue = %s THEN %s ELSE worker END"
            f" WHERE id = (SELECT id FROM {table} WHERE run_id = %s AND task_id = %s AND item_index > %s"
            f" AND status = %s ORDER BY item_index LIMIT 1) AND status = %s"
            f" RETURNING id, item_index, queue, status",
            [keep_local_queue, TaskStatus.RUNNING.value, TaskStatus.QUEUED.value, now,
             keep_local_queue, keep_local_queue, now, keep_local_queue, now, keep_local_queue, worker_name(),
             run.id, task.id, after_index, TaskStatus.PENDING.value, TaskStatus.PENDING.value])
        row = cursor.fetchone()
    if row is None:
        return False, None
    task_run_id, item_index, queue, status = row
    if status != TaskStatus.RUNNING:
        transaction.on_commit(lambda: enqueue_task_run(task_run_id, queue))
        return True, None
    return True, TaskRun(id=task_run_id, run_id=run.id, task_id=task.id, item_index=item_index, attempt=1,
                         queue=queue, logs="", attempts=[], status=TaskStatus.RUNNING, started_at=now,
                         worker=worker_name())

"""The engine's per-task statements, written out once per shape instead of built by the ORM on every call.

A step of a chain sends two (record the attempt with the run locked and count it downstream, in one statement;
claim the next task) and a commit; building each through `filter().update()` cost the worker about as much CPU as
the database spent executing it (bench/engine.py). These take the same guards and adapt values the same way
(`get_db_prep_save`), so JSON, datetimes and enums are stored exactly as the ORM would store them.

On PostgreSQL the fixed-shape ones are also prepared once per connection: planning cost the server about as much
as executing them (0.15 ms of 0.35 ms for a counter update). DATABASE_PREPARED_STATEMENTS=0 turns that off for a
transaction-pooling PgBouncer older than 1.21, which cannot keep a session's prepared statements.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from functools import cache
from typing import Any, Iterator, Sequence

from django.db import connections, models

from .models import TaskRun, WorkflowRun
from .states import RunStatus, TaskStatus


class Prepared(str):
    """SQL that `cursor` prepares on PostgreSQL: a fixed shape sent again and again. The mark travels with the
    text (no registry to grow): a statement built from it by concatenation or formatting is a plain str again."""


def prepared(sql: str) -> str:
    """Mark `sql` as one `cursor` prepares on PostgreSQL (only fixed-shape statements sent again and again)."""
    return Prepared(sql)


@contextmanager
def cursor(using: str = "default") -> Iterator[Any]:
    """A cursor that prepares the statements marked by `prepared` (PostgreSQL), else the usual Django cursor. It is
    still a Django cursor wrapper: errors are Django's and execute wrappers see every statement. While queries are
    logged (DEBUG, a test capturing them) it is the usual cursor: psycopg keeps no text of a prepared execution."""
    connection = connections[using]
    if (connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("prepare_threshold") is None
            or connection.queries_logged):
        with connection.cursor() as django_cursor:
            yield django_cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = _preparing_cursor_class()(connection.connection)
    with connection.make_cursor(raw) as django_cursor:
        yield django_cursor


@cache
def _preparing_cursor_class() -> type:
    import psycopg

    class PreparingCursor(psycopg.Cursor):
        """Server-side binding; a statement marked by `prepared` is prepared on its first use in the session."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=prepare or isinstance(query, Prepared), binary=binary)

    return PreparingCursor


Guard = Any  # a value (equality), None (IS NULL), or a list/tuple of values (IN)
_EQUAL, _NULL = -1, -2  # how a guard compares, beside an IN list's length


def update_where(model: type[models.Model], values: dict[str, Any], *, using: str = "default",
                 **where: Guard) -> int:
    """`UPDATE model SET values WHERE where`, one statement; returns the number of rows changed."""
    sql, params = _update(model, values, where, using)
    with cursor(using) as django_cursor:
        django_cursor.execute(sql, params)
        return django_cursor.rowcount


def update_in_running_run(model: type[models.Model], values: dict[str, Any], *, run_id: int,
                          using: str = "default", then: tuple[str, list] | None = None,
                          **where: Guard) -> tuple[int, list[tuple]] | None:
    """`update_where`, applied only while run `run_id` is running, whose row the same statement locks as
    `lock_run` would (PostgreSQL); returns the run's workflow id and the rows of `then`, or None when no row
    changed. `then` is (SQL, params) of an `UPDATE … RETURNING` the same statement runs only when a row changed:
    its WHERE ends with AFTER_CHANGE where that condition goes."""
    sql, params = _update(model, values, where, using, joined="locked_run")
    statement = _in_running_sql(using, sql, then[0] if then else "")
    with cursor(using) as django_cursor:
        django_cursor.execute(statement, [run_id, RunStatus.RUNNING.value, *params, *(then[1] if then else ())])
        rows = django_cursor.fetchall()
    if not rows:
        return None
    return rows[0][0], [row[1:] for row in rows if row[1] is not None] if then else []


AFTER_CHANGE = "{after_change}"  # in `update_in_running_run`'s `then`: where "and the update changed a row" goes


@cache
def _in_running_sql(using: str, update_sql: str, then_sql: str) -> str:
    qn = connections[using].ops.quote_name
    locked = (f"WITH locked_run AS MATERIALIZED (SELECT {qn('workflow_id')} FROM {qn(WorkflowRun._meta.db_table)}"
              f" WHERE {qn('id')} = %s AND {qn('status')} = %s FOR UPDATE)")
    if not then_sql:
        return prepared(f"{locked} {update_sql} RETURNING locked_run.workflow_id")
    worth_preparing = isinstance(update_sql, Prepared) and isinstance(then_sql, Prepared)
    then_sql = then_sql.replace(AFTER_CHANGE, " AND EXISTS (SELECT 1 FROM changed)")
    sql = (f"{locked}, changed AS ({update_sql} RETURNING locked_run.workflow_id), followed AS ({then_sql})"
           " SELECT changed.workflow_id, followed.* FROM changed LEFT JOIN followed ON TRUE")
    return prepared(sql) if worth_preparing else sql


def _update(model: type[models.Model], values: dict[str, Any], where: dict[str, Guard], using: str,
            joined: str = "") -> tuple[str, list]:
    connection = connections[using]
    meta = model._meta
    shape = tuple((name, len(value) if isinstance(value, (list, tuple)) else _NULL if value is None else _EQUAL)
                  for name, value in where.items())
    params = [meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]
    for name, value in where.items():
        field = meta.get_field(name)
        if isinstance(value, (list, tuple)):
            params.extend(field.get_db_prep_value(item, connection) for item in value)
        elif value is not None:
            params.append(field.get_db_prep_value(value, connection))
    return _update_sql(model, tuple(values), shape, using, joined), params


@cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], shape: tuple[tuple[str, int], ...],
                using: str, joined: str) -> str:
    qn = connections[using].ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{qn(meta.get_field(name).column)} = %s" for name in names)
    conditions = []
    for name, size in shape:
        column = qn(meta.get_field(name).column)
        if size == _NULL:
            conditions.append(f"{column} IS NULL")
        elif size == _EQUAL:
            conditions.append(f"{column} = %s")
        elif size:
            conditions.append(f"{column} IN ({', '.join(['%s'] * size)})")
        else:
            conditions.append("FALSE")  # IN an empty list
    table = qn(meta.db_table)
    conditions = [f"{table}.{condition}" if condition != "FALSE" else condition for condition in conditions]
    joins = f" FROM {joined}" if joined else ""
    sql = f"UPDATE {table} SET {assignments}{joins} WHERE {' AND '.join(conditions) or 'TRUE'}"
    return prepared(sql) if all(size < 2 for _, size in shape) else sql  # IN lists of many lengths: not worth it


def lock_run(run_id: int, *, using: str = "default") -> WorkflowRun:
    """The run's id, status and workflow, its row locked until the transaction ends (SQLite locks on write):
    every change to a run's task states happens under this lock."""
    with cursor(using) as django_cursor:
        django_cursor.execute(_lock_run_sql(using), [run_id])
        row = django_cursor.fetchone()
    if row is None:
        raise WorkflowRun.DoesNotExist(f"run {run_id} does not exist")
    values = {"id": run_id, "status": row[0], "workflow_id": row[1]}
    names = [f.attname for f in WorkflowRun._meta.concrete_fields if f.attname in values]  # from_db's order
    return WorkflowRun.from_db(using, names, [values[name] for name in names])


@cache
def _lock_run_sql(using: str) -> str:
    connection = connections[using]
    qn = connection.ops.quote_name
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return prepared(f"SELECT {qn('status')}, {qn('workflow_id')} FROM {qn(WorkflowRun._meta.db_table)}"
                    f" WHERE {qn('id')} = %s{lock}")


def finish_run(run_id: int, status: str, finished_at: datetime, *,
               using: str = "default") -> tuple[bool, int | None]:
    """End running run `run_id` as `status`; returns (whether it was running, so ended now, its parent task run)."""
    with cursor(using) as django_cursor:
        django_cursor.execute(_finish_run_sql(using), [status, finished_at, run_id, RunStatus.RUNNING.value])
        row = django_cursor.fetchone()
    return (False, None) if row is None else (True, row[0])


@cache
def _finish_run_sql(using: str) -> str:
    qn = connections[using].ops.quote_name
    return prepared(f"UPDATE {qn(WorkflowRun._meta.db_table)} SET {qn('status')} = %s, {qn('finished_at')} = %s"
                    f" WHERE {qn('id')} = %s AND {qn('status')} = %s RETURNING {qn('parent_task_run_id')}")


def top_level_outcome(run_id: int, *, using: str = "default") -> list[str] | None:
    """None while a top-level task run of `run_id` is unfinished (one probe of the partial index
    `taskrun_unfinished`), else the distinct failed/cancelled statuses among them: one statement, and the second
    read only when the first finds nothing."""
    with cursor(using) as django_cursor:
        django_cursor.execute(_top_level_outcome_sql(using), [run_id, *UNFINISHED, run_id,
                                                              TaskStatus.FAILED.value, TaskStatus.CANCELLED.value])
        outcome = django_cursor.fetchone()[0]
    if outcome is None:
        return None
    return outcome if isinstance(outcome, list) else [status for status in outcome.split(",") if status]


UNFINISHED = (TaskStatus.PENDING.value, TaskStatus.QUEUED.value, TaskStatus.RUNNING.value, TaskStatus.WAITING.value)


@cache
def _top_level_outcome_sql(using: str) -> str:
    connection = connections[using]
    qn = connection.ops.quote_name
    table, top = qn(TaskRun._meta.db_table), f"{qn('run_id')} = %s AND {qn('item_index')} IS NULL"
    unfinished = ", ".join(["%s"] * len(UNFINISHED))
    ended = f"SELECT DISTINCT {qn('status')} AS s FROM {table} WHERE {top} AND {qn('status')} IN (%s, %s)"
    listed = (f"ARRAY(SELECT s FROM ({ended}) AS e)" if connection.vendor == "postgresql"
              else f"(SELECT COALESCE(GROUP_CONCAT(s), '') FROM ({ended}) AS e)")
    return prepared(f"SELECT CASE WHEN EXISTS (SELECT 1 FROM {table} WHERE {top} AND {qn('status')} IN "
                    f"({unfinished})) THEN NULL ELSE {listed} END")


# A task run's time that `run_with_sql` fills with its run's `started_at` (a marker, never stored).
RUN_STARTED = datetime(1, 1, 1, tzinfo=timezone.utc)


def insert_run_with(sql: str, run: WorkflowRun, companion: models.Model, run_field: str,
                    workflow_holds: Sequence[Any] = (), *,
                    using: str = "default") -> tuple[int, list[tuple[int, str]]] | None:
    """Send `run_with_sql`'s statement for these unsaved rows; returns the run's id and the (id, queue) of its
    queued task runs, or None when the run's workflow no longer holds `workflow_holds` (the values of the
    statement's `workflow_guard` columns): then nothing is stored. Outside a transaction the statement is one on
    its own."""
    connection = connections[using]
    params = _insert_params(run, connection)
    if workflow_holds:
        params += [run.workflow_id, *workflow_holds]
    params += _insert_params(companion, connection, skip=run_field)
    with cursor(using) as django_cursor:
        django_cursor.execute(sql, params)
        rows = django_cursor.fetchall()
    if not rows:
        return None
    return rows[0][0], [(task_run_id, queue) for _, task_run_id, queue in rows if task_run_id is not None]


def run_with_sql(companion_model: type[models.Model], run_field: str, tasks: Sequence[TaskRun], using: str,
                 workflow_guard: Sequence[str] = ()) -> str:
    """ONE statement inserting a run (its values as parameters), `companion` (a row whose `run_field` points at
    the run; its values as parameters) and the run's task runs `tasks`, whose values are written into the
    statement: they are the same for every run of a version, so the statement is built and prepared once per
    version (planning it cost the server more than executing it). A task run's time set to RUN_STARTED becomes
    the run's `started_at`. With a `workflow_guard` (Workflow attnames) the run is inserted only while its
    workflow's row holds the values given for them (parameters after the run's), else nothing is. Answers one
    row per queued task run (run id, task run id, queue), or the run id alone; no row when the guard failed."""
    connection = connections[using]
    qn = connection.ops.quote_name
    run_fields = _insert_fields(WorkflowRun)
    companion_fields = _insert_fields(companion_model, skip=run_field)
    run_pk, started = qn(WorkflowRun._meta.pk.column), qn(WorkflowRun._meta.get_field("started_at").column)
    values = ", ".join(["%s"] * len(run_fields))
    if workflow_guard:
        workflow = WorkflowRun._meta.get_field("workflow").related_model._meta
        held = " AND ".join(f"{qn(workflow.get_field(name).column)} IS NOT DISTINCT FROM %s"
                            for name in workflow_guard)
        source = f"SELECT {values} FROM {qn(workflow.db_table)} WHERE {qn(workflow.pk.column)} = %s AND {held}"
    else:
        source = f"VALUES ({values})"
    parts = [
        f"WITH new_run AS (INSERT INTO {qn(WorkflowRun._meta.db_table)} ({_columns(run_fields, qn)}) {source} "
        f"RETURNING {run_pk}, {started})",
        f"companion AS (INSERT INTO {qn(companion_model._meta.db_table)} "
        f"({_columns(companion_fields, qn)}, {qn(companion_model._meta.get_field(run_field).column)}) "
        f"SELECT {'%s, ' * len(companion_fields)}new_run.{run_pk} FROM new_run)",
    ]
    if not tasks:
        return prepared(", ".join(parts) + f" SELECT new_run.{run_pk}, NULL, NULL FROM new_run")
    task_fields = _insert_fields(TaskRun)
    expressions, listed = [], [[str(n)] for n in range(len(tasks))]
    literal = _literal_renderer(connection)
    for field in task_fields:
        if field.attname == "run_id":
            expressions.append(f"new_run.{run_pk}")
            continue
        raw = [getattr(task, field.attname) for task in tasks]
        column = f"t.c{len(listed[0])}"
        if any(value is RUN_STARTED for value in raw):
            expressions.append(f"CASE WHEN {column} THEN new_run.{started} END")
            values = ["TRUE" if value is RUN_STARTED else "FALSE" for value in raw]
        else:
            values = [literal(field.get_db_prep_save(field.pre_save(task, add=True), connection)) for task in tasks]
            if len(set(values)) == 1:
                expressions.append(values[0])
                continue
            expressions.append(column)
        for row, value in zip(listed, values):
            row.append(value)
    names = ", ".join(["n", *(f"c{i}" for i in range(1, len(listed[0])))])
    rows = ", ".join(f"({', '.join(row)})" for row in listed)
    pk = qn(TaskRun._meta.pk.column)
    parts.append(
        f"task_runs AS (INSERT INTO {qn(TaskRun._meta.db_table)} ({_columns(task_fields, qn)}) "
        f"SELECT {', '.join(expressions)} FROM new_run, (VALUES {rows}) AS t({names}) ORDER BY t.n "
        f"RETURNING {pk}, {qn('status')}, {qn('queue')})")
    return prepared(", ".join(parts) + f" SELECT new_run.{run_pk}, task_runs.{pk}, task_runs.{qn('queue')} FROM new_run"
                    f" LEFT JOIN task_runs ON task_runs.{qn('status')} = '{TaskStatus.QUEUED.value}'"
                    f" ORDER BY task_runs.{pk}")


def _literal_renderer(connection):
    from psycopg import sql

    connection.ensure_connection()
    raw = connection.connection
    # psycopg reads %s in the statement's text, quoted or not: a literal's % must be doubled.
    return lambda value: sql.Literal(value).as_string(raw).strip().replace("%", "%%")


def _columns(fields: list[models.Field], qn) -> str:
    return ", ".join(qn(f.column) for f in fields)


@cache
def _insert_fields(model: type[models.Model], skip: str | None = None) -> list[models.Field]:
    """The columns an INSERT of `model` writes: every concrete field but the primary key (and `skip`)."""
    return [f for f in model._meta.local_concrete_fields if not f.primary_key and f.name != skip]


def _insert_params(obj: models.Model, connection, skip: str | None = None) -> list:
    # pre_save fills auto_now_add; get_db_prep_save adapts JSON and bytes as Model.save would.
    return [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in _insert_fields(type(obj), skip)]

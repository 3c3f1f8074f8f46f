"""Run one query on PostgreSQL (psycopg) or MySQL/MariaDB (PyMySQL), connected to an address already vetted.

Both drivers get the same treatment:

* the connection goes to the vetted IP address; the name is kept for TLS (libpq's `host` next to `hostaddr`);
* one statement per call (psycopg's extended protocol, PyMySQL without CLIENT.MULTI_STATEMENTS), so a
  `...; COMMIT; DROP ...` cannot leave the read-only transaction;
* read-only means a read-only transaction: psycopg's `read_only`, or MariaDB's `SET SESSION TRANSACTION READ
  ONLY` + `START TRANSACTION READ ONLY` (the session setting too, because DDL commits implicitly and would
  otherwise run in a fresh read-write transaction);
* the statement timeout is set on the server (`statement_timeout`; `max_statement_time` on MariaDB,
  `max_execution_time` on MySQL), the socket has a timeout as a backstop;
* rows are read as a stream and reading stops at `max_rows` + 1 or past `max_bytes` of JSON, so a huge result
  never sits in the worker's memory (MySQL sends no more than `max_rows` + 1 rows: `sql_select_limit`). A
  read-write statement is still read to its end, so it completes;
* nothing from the environment or home directory of the worker is used (no ~/.pgpass, no PGPASSWORD, no
  LOCAL INFILE).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql
import pymysql.cursors

from connectors.base import ActionError
from connectors.net import IPAddress
from workflows.limits import json_size

from .dsn import DatabaseURL, Dialect
from .values import column_names, json_safe

PG_STREAM_CHUNK = 100
# psycopg's stream() says so, after the statement ran, when it returned no rows (INSERT without RETURNING, SET).
PG_NO_RESULT = "didn't produce a result"
# PyMySQL's codes for "could not reach the server" (as opposed to a refusal by the server).
MYSQL_UNREACHABLE = {2003, 2006, 2013}


@dataclass(frozen=True)
class Query:
    sql: str
    params: dict[str, Any] | None
    max_rows: int
    read_only: bool
    timeout: float
    max_bytes: int


@dataclass(frozen=True)
class QueryResult:
    rows: list[dict[str, Any]]
    truncated: bool


class _Unreachable(Exception):
    """Connecting to one address failed before the server said anything: the next address may be tried."""


def _clean(message: str, target: DatabaseURL) -> str:
    message = " ".join(str(message).split())
    if target.password:
        message = message.replace(target.password, "***")
    return message


def _collect(raw_rows: Iterable[Sequence], columns: Callable[[], list[str]], query: Query) -> QueryResult:
    """The first `max_rows` rows as JSON-safe dicts; truncated when another row exists or the size passed."""
    rows: list[dict[str, Any]] = []
    size = 2
    names: list[str] | None = None
    for raw in raw_rows:
        if len(rows) >= query.max_rows:
            return QueryResult(rows, True)
        if names is None:
            names = columns()
        row = dict(zip(names, (json_safe(value) for value in raw)))
        size += json_size(row, stop_after=query.max_bytes) + 1
        if size > query.max_bytes:
            return QueryResult(rows, True)
        rows.append(row)
    return QueryResult(rows, False)


def _connect_any(addresses: list[IPAddress], connect: Callable[[IPAddress], Any], describe: str) -> Any:
    last = ""
    for address in addresses:
        try:
            return connect(address)
        except _Unreachable as exc:
            last = str(exc)
    raise ActionError(f"could not connect to the {describe}: {last}", retryable=True)


# PostgreSQL


def _pg_connect(target: DatabaseURL, query: Query) -> Callable[[IPAddress], psycopg.Connection]:
    def connect(address: IPAddress) -> psycopg.Connection:
        try:
            return psycopg.connect(
                host=target.host, hostaddr=str(address), port=target.port, dbname=target.dbname,
                # Empty strings, not None: libpq would fill a missing user/password from PGUSER/PGPASSWORD.
                user=target.user, password=target.password, passfile=os.devnull,
                sslmode=target.sslmode or "prefer", connect_timeout=max(2, math.ceil(query.timeout)),
                application_name="flowforge sql.query", autocommit=False)
        except psycopg.OperationalError as exc:
            message = _clean(exc, target)
            if "authentication failed" in message or "does not exist" in message:
                raise ActionError(f"could not connect to the {target.describe()}: {message}",
                                  retryable=False) from None
            raise _Unreachable(message) from None

    return connect


def _pg_rows(cursor: psycopg.Cursor, query: Query) -> Iterator[Sequence]:
    size = PG_STREAM_CHUNK if psycopg.capabilities.has_stream_chunked() else 1
    try:
        yield from cursor.stream(query.sql, query.params, size=size)
    except psycopg.ProgrammingError as exc:
        if exc.sqlstate is None and PG_NO_RESULT in str(exc):
            return
        raise


def _pg_run(target: DatabaseURL, addresses: list[IPAddress], query: Query) -> QueryResult:
    connection = _connect_any(addresses, _pg_connect(target, query), target.describe())
    try:
        connection.read_only = query.read_only
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)",
                           [str(max(1, int(query.timeout * 1000)))])
            rows = _pg_rows(cursor, query)
            result = _collect(rows, lambda: column_names([c.name for c in cursor.description]), query)
            if not query.read_only:
                for _ in rows:  # the statement completes even when its rows are not all kept
                    pass
            rows.close()  # a read-only stream stopped early is cancelled on the server here
        if query.read_only:
            connection.rollback()
        else:
            connection.commit()
        return result
    except psycopg.Error as exc:
        raise ActionError(f"query failed on the {target.describe()}: {_clean(_pg_message(exc), target)}",
                          retryable=isinstance(exc, psycopg.OperationalError)
                          and not isinstance(exc, psycopg.errors.QueryCanceled)) from None
    finally:
        connection.close()


def _pg_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    if diag.message_primary:
        code = f" ({diag.sqlstate})" if diag.sqlstate else ""
        return f"{diag.message_primary}{code}"
    return str(exc)


# MySQL and MariaDB


def _mysql_connect(target: DatabaseURL, query: Query) -> Callable[[IPAddress], pymysql.Connection]:
    def connect(address: IPAddress) -> pymysql.Connection:
        try:
            return pymysql.connect(
                host=str(address), port=target.port, user=target.user, password=target.password,
                database=target.dbname or None, charset="utf8mb4", autocommit=False, local_infile=False,
                connect_timeout=max(1, math.ceil(query.timeout)), read_timeout=math.ceil(query.timeout) + 5,
                write_timeout=math.ceil(query.timeout) + 5, cursorclass=pymysql.cursors.SSCursor)
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else None
            if code in MYSQL_UNREACHABLE:
                raise _Unreachable(_clean(_mysql_message(exc), target)) from None
            raise ActionError(f"could not connect to the {target.describe()}: "
                              f"{_clean(_mysql_message(exc), target)}", retryable=False) from None

    return connect


def _mysql_message(exc: pymysql.err.MySQLError) -> str:
    if len(exc.args) == 2:
        return f"{exc.args[1]} ({exc.args[0]})"
    return str(exc)


def _mysql_prepare(connection: pymysql.Connection, cursor: pymysql.cursors.SSCursor, query: Query) -> None:
    if "mariadb" in connection.get_server_info().lower():
        cursor.execute("SET SESSION max_statement_time = %s", (query.timeout,))
    else:  # MySQL: milliseconds, and only for SELECT
        cursor.execute("SET SESSION max_execution_time = %s", (max(1, int(query.timeout * 1000)),))
    # The server sends at most one row more than kept (a top-level SELECT's result only; INSERT ... SELECT and
    # subqueries are not limited by it).
    cursor.execute("SET SESSION sql_select_limit = %s", (query.max_rows + 1,))
    if query.read_only:
        cursor.execute("SET SESSION TRANSACTION READ ONLY")
        cursor.execute("START TRANSACTION READ ONLY")
    else:
        cursor.execute("START TRANSACTION")


def _mysql_run(target: DatabaseURL, addresses: list[IPAddress], query: Query) -> QueryResult:
    connection = _connect_any(addresses, _mysql_connect(target, query), target.describe())
    try:
        cursor = connection.cursor()
        _mysql_prepare(connection, cursor, query)
        cursor.execute(query.sql, query.params)
        result = _collect(iter(cursor.fetchone, None),
                          lambda: column_names([c[0] for c in cursor.description]), query)
        # The protocol has no way to stop a result early: what is left (at most sql_select_limit rows, within
        # the statement timeout) is read and dropped, and a read-write statement completes.
        cursor.close()
        if query.read_only:
            connection.rollback()
        else:
            connection.commit()
        return result
    except pymysql.err.MySQLError as exc:
        retryable = isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in MYSQL_UNREACHABLE
        raise ActionError(f"query failed on the {target.describe()}: {_clean(_mysql_message(exc), target)}",
                          retryable=bool(retryable)) from None
    finally:
        if connection.open:  # a lost connection is already closed
            connection.close()


def query_run(*, target: DatabaseURL, addresses: list[IPAddress], query: Query) -> QueryResult:
    """Run `query` on `target`, connecting to one of `addresses` (vetted by connectors.net.resolve_checked)."""
    runner = _pg_run if target.dialect is Dialect.POSTGRES else _mysql_run
    return runner(target, addresses, query)

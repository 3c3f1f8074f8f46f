"""sql.query: one parameterised query, read-only by default, against a database named by a vault secret.

Importable without Django set up (the definition validator reads the schema); the vault is read in `execute`.
"""
from __future__ import annotations

import re

from connectors.base import Action, ActionContext, ActionError
from connectors.net import resolve_checked
from workflows.limits import KIB, MAX_OUTPUT_BYTES

from .drivers import Query, query_run
from .dsn import database_url_parse

# The rows may fill a task's stored output, less room for the rest of the output object.
MAX_ROWS_BYTES = MAX_OUTPUT_BYTES - KIB
MAX_ROWS_LIMIT = 100_000
PLACEHOLDER = re.compile(r"%\(([^)]*)\)s")
POSITIONAL = re.compile(r"%[sbt]")

_SCALAR = {"type": ["string", "number", "boolean", "null"]}


def _placeholder_problem(sql: str, params: dict) -> tuple[str, str] | None:
    """(path, message) when the query's placeholders do not match `params`, else None."""
    text = sql.replace("%%", "")
    names = PLACEHOLDER.findall(text)
    if not params:
        if names:
            return "params", f"the query uses %({names[0]})s but params is empty"
        return None
    for name in names:
        if name not in params:
            return f"params.{name}", f"the query uses %({name})s but params has no {name!r}"
    if POSITIONAL.search(PLACEHOLDER.sub("", text)):
        return "query", "use %(name)s placeholders with params (and %% for a literal %)"
    return None


def _database_url(secret: str, context: ActionContext) -> str:
    # Imported here so the schema stays readable without Django set up (the vault is a Django model).
    from connectors.secrets import secret_value

    url = secret_value(secret, owner_id=context.owner_id)
    if not url:
        raise ActionError(
            f"the workflow's owner has no secret '{secret}': add it in the secrets vault (a postgres:// or "
            "mysql:// URL), or fix `database`", retryable=False)
    return url


class SqlQuery(Action):
    name = "sql.query"
    title = "SQL query"
    description = (
        "Runs one query on a PostgreSQL or MySQL/MariaDB database and returns its rows as JSON (dates and times "
        "ISO 8601, decimals as strings, bytes as base64). The database is the name of a secret of the workflow's "
        "owner holding a postgres:// or mysql:// URL. Values go in params and are bound by the driver. Read-only "
        "unless read_only is false. The database host obeys the same private-address rules as http.request."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "database": {
                "type": "string",
                "title": "Database",
                "description": "The name of a secret holding postgres://user:password@host:port/db or mysql://...",
                "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
                "maxLength": 100,
            },
            "query": {
                "type": "string",
                "title": "Query",
                "description": "One SQL statement; values as %(name)s placeholders (then %% for a literal %).",
                "minLength": 1,
            },
            "params": {
                "type": "object",
                "title": "Parameters",
                "description": "Values for the %(name)s placeholders; a list binds a PostgreSQL array or a MySQL "
                               "IN (...) list.",
                "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
                "default": {},
            },
            "max_rows": {
                "type": "integer",
                "title": "Maximum rows",
                "minimum": 1,
                "maximum": MAX_ROWS_LIMIT,
                "default": 1000,
                "description": "Rows kept in the output; `truncated` says whether there were more.",
            },
            "read_only": {
                "type": "boolean",
                "title": "Read-only",
                "default": True,
                "description": "Run in a read-only transaction (writes are refused by the database).",
            },
            "timeout": {
                "type": "number",
                "title": "Timeout",
                "exclusiveMinimum": 0,
                "maximum": 3600,
                "default": 30,
                "description": "Seconds for connecting and for the statement (capped by the task timeout).",
            },
        },
        "required": ["database", "query"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {
            "rows": {"type": "array", "items": {"type": "object"}},
            "row_count": {"type": "integer", "description": "The number of rows in `rows`"},
            "truncated": {"type": "boolean", "description": "True when the query had more rows than were kept"},
        },
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        params = inputs.get("params") or {}
        problem = _placeholder_problem(inputs["query"], params)
        if problem:
            raise ActionError(f"{problem[0]}: {problem[1]}", retryable=False)
        secret = inputs["database"]
        target = database_url_parse(_database_url(secret, context), secret=secret)
        addresses = resolve_checked(target.host, target.port, allow_private=context.config.http_allow_private,
                                    allowed_networks=context.config.http_allowed_networks)
        query = Query(sql=inputs["query"], params=params or None, max_rows=int(inputs.get("max_rows", 1000)),
                      read_only=bool(inputs.get("read_only", True)), max_bytes=MAX_ROWS_BYTES,
                      timeout=min(float(inputs.get("timeout", 30)), float(context.timeout)))
        mode = "read-only" if query.read_only else "read-write"
        context.log(f"{target.describe()}: running a {mode} query")
        result = query_run(target=target, addresses=addresses, query=query)
        more = " (truncated: there were more)" if result.truncated else ""
        context.log(f"{len(result.rows)} row(s){more}")
        return {"rows": result.rows, "row_count": len(result.rows), "truncated": result.truncated}

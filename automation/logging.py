"""Structured logs: one JSON object per line, carrying the run and task ids of the work being done.

Enable with `LOG_FORMAT=json` (the production profile's default). Code that works on a run wraps it in
`bind_log_context(run_id=..., task_id=...)`; every record logged inside, by any logger, carries those ids.
Context variables do not follow work into new threads: start them with `contextvars.copy_context().run`.
"""
from __future__ import annotations

import copy
import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Iterator

CONTEXT_FIELDS = ("run_id", "task_id", "task_run_id", "attempt", "workflow")
_context: ContextVar[dict[str, Any]] = ContextVar("flowforge_log_context", default={})


@contextmanager
def bind_log_context(**ids: Any) -> Iterator[None]:
    """Attach `ids` (e.g. run_id=3, task_id="fetch") to every record logged inside the block; nests."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def log_context() -> dict[str, Any]:
    return dict(_context.get())


class LogContextFilter(logging.Filter):
    """Copies the bound ids onto each record (an explicit `extra=` on the call wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """timestamp (UTC, ISO 8601), level, logger, message, the bound ids, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        bound = _context.get()
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, bound.get(key))
            if value is not None:
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def json_logging(config: dict) -> dict:
    """A copy of a `LOGGING` dict whose handlers write JSON lines with the bound ids."""
    config = copy.deepcopy(config)
    config.setdefault("formatters", {})["json"] = {"()": "automation.logging.JsonFormatter"}
    config.setdefault("filters", {})["log_context"] = {"()": "automation.logging.LogContextFilter"}
    for handler in config.get("handlers", {}).values():
        handler["formatter"] = "json"
        filters = handler.setdefault("filters", [])
        if "log_context" not in filters:
            filters.append("log_context")
    return config

"""Every size, depth and count bound of SPEC §11 in one place, with the checks the entry points share.

The parser, the template renderer, the executor's recorder, the webhook gateway and the API all import their
bounds from here, so an input is bounded where it enters and the numbers are said once. No Django import.
"""
from __future__ import annotations

import math
from typing import Any

KIB = 1024
MIB = 1024 * KIB

MAX_DEFINITION_BYTES = 256 * KIB  # a definition's source text, or its JSON encoding when sent as an object
MAX_TASKS = 1000  # tasks per workflow, in every shape (`tasks:` and `steps:`)
MAX_DEPTH = 64  # nesting of mappings/lists in definitions, payloads and inputs
MAX_RENDERED_BYTES = 1 * MIB  # one rendered template value (text, or the JSON size of a native value)
MAX_OUTPUT_BYTES = 4 * MIB  # what one task run stores as output ("output too large" fails it)
MAX_WEBHOOK_BODY_BYTES = 1 * MIB  # a webhook request body (413 above)
MAX_REFUSED_BODY_BYTES = 4 * KIB  # what a refused webhook delivery keeps of its body


class LimitExceeded(ValueError):
    """An input is over one of the bounds above, or cannot be stored; `path` names where."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else None
        if children is None:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return False


def check_depth(value: Any, path: str = "", *, limit: int = MAX_DEPTH) -> None:
    """Raise LimitExceeded when mappings/lists nest deeper than `limit` (iterative: no RecursionError)."""
    if not _deeper_than(value, limit):
        return  # the common case, without building a path for every node
    stack = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, (list, tuple)):
            items = enumerate(node)
        else:
            continue
        if depth >= limit:
            raise LimitExceeded(where, f"nested more than {limit} levels deep")
        stack.extend((child, _join(where, key), depth + 1) for key, child in items)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate character, which cannot be stored"
    return None


def check_storable(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH) -> None:
    """Raise LimitExceeded unless `value` is plain JSON that PostgreSQL's jsonb can hold.

    Refused: NUL characters and lone surrogates (in keys too), NaN and infinities, non-string keys, any object
    that is not None/bool/int/float/str/list/dict (a range, a dict view, a function), and nesting deeper than
    `max_depth`. The message names the first offending place: `output.body: contains a NUL character ...`.
    """
    stack = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if node is None or isinstance(node, (bool, int)):
            continue
        if isinstance(node, float):
            if not math.isfinite(node):
                raise LimitExceeded(where, f"{node!r} is not a finite number, which cannot be stored")
            continue
        if isinstance(node, str):
            problem = _text_problem(node)
            if problem:
                raise LimitExceeded(where, problem)
            continue
        if isinstance(node, (dict, list, tuple)) and depth >= max_depth:
            raise LimitExceeded(where, f"nested more than {max_depth} levels deep")
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise LimitExceeded(where, f"key {key!r} is not a string, which cannot be stored")
                problem = _text_problem(key)
                if problem:
                    raise LimitExceeded(where, f"a key {problem}")
                stack.append((child, _join(where, key), depth + 1))
        elif isinstance(node, (list, tuple)):
            stack.extend((child, _join(where, index), depth + 1) for index, child in enumerate(node))
        else:
            raise LimitExceeded(where, f"a {type(node).__name__} object is not JSON data and cannot be stored")


def json_size(value: Any, *, stop_after: int | None = None) -> int:
    """Approximate size in bytes of `value` encoded as JSON, counted without building the text.

    With `stop_after`, counting ends as soon as the size passes it (the result is then > stop_after), so a
    huge value costs no more than the limit it is checked against.
    """
    total = 0
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            total += len(node) + 2
        elif isinstance(node, dict):
            total += 2 + len(node)
            for key, child in node.items():
                total += len(str(key)) + 3
                stack.append(child)
        elif isinstance(node, (list, tuple)):
            total += 2 + len(node)
            stack.extend(node)
        else:
            total += len(repr(node)) if isinstance(node, (int, float)) and not isinstance(node, bool) else 5
        if stop_after is not None and total > stop_after:
            return total
    return total


def check_size(value: Any, path: str, limit: int, what: str) -> None:
    """Raise LimitExceeded(`path`, "<what> larger than N bytes") when `value`'s JSON size passes `limit`."""
    if json_size(value, stop_after=limit) > limit:
        raise LimitExceeded(path, f"{what} larger than {limit:,} bytes")


MAX_SECRET_NAME_LENGTH = 100  # a vault secret's name, [A-Za-z_][A-Za-z0-9_]*
MAX_SECRET_VALUE_BYTES = 64 * KIB  # a vault secret's value, UTF-8 encoded
MAX_RESPOND_TIMEOUT = 30  # seconds a webhook with `respond: on_finish` may hold its caller (SPEC §9)

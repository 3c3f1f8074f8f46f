"""The `type: webhook` trigger's own keys: accepted methods and the secret reference. Pure, no Django.

Shared by the definition validator (which refuses what the gateway could not honour) and the gateway (which
reads the same keys at request time), so the rules are said once.
"""
from __future__ import annotations

import re
from typing import Any

from .templating import has_template

# The methods a webhook may accept. POST is the only one with a body; a signature covers the raw body, so a
# workflow with a `secret` accepts POST only.
WEBHOOK_METHODS = ("POST", "GET")
DEFAULT_METHODS = ("POST",)
# `{{ secrets.NAME }}` exactly: the gateway looks NAME up in the vault and never renders a template per request.
_SECRET_REFERENCE = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def secret_reference(secret: str) -> str | None:
    """NAME for a secret written as `{{ secrets.NAME }}`, else None (a literal, or some other template)."""
    match = _SECRET_REFERENCE.fullmatch(secret.strip())
    return match.group(1) if match else None


def webhook_methods(trigger: dict) -> tuple[str, ...]:
    """The methods a (valid) webhook trigger accepts, upper-case."""
    methods = trigger.get("methods")
    if not methods:
        return DEFAULT_METHODS
    return tuple(dict.fromkeys(method.upper() for method in methods))


def webhook_trigger_problems(trigger: dict) -> list[tuple[str, str]]:
    """(key, message) for each problem of the trigger's `secret` and `methods`."""
    problems = []
    has_secret = "secret" in trigger
    secret = trigger.get("secret")
    if has_secret and not isinstance(secret, str):
        problems.append(("secret", "must be a string: the signing secret, or {{ secrets.NAME }}"))
    elif has_secret and not secret.strip():
        problems.append(("secret", "must not be empty: an empty secret would accept unsigned deliveries; "
                                   "remove `secret` to accept them on purpose"))
    elif has_secret and has_template(secret) and secret_reference(secret) is None:
        problems.append(("secret", "must be a literal or exactly {{ secrets.NAME }}; no other template"))
    methods = trigger.get("methods")
    if "methods" not in trigger:
        return problems
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        problems.append(("methods", "must be a non-empty list of HTTP methods such as [POST]"))
        return problems
    for index, method in enumerate(methods):
        if method.upper() not in WEBHOOK_METHODS:
            problems.append((f"methods[{index}]", f"{method!r} is not one of " + ", ".join(WEBHOOK_METHODS)))
    if has_secret and any(method.upper() != "POST" for method in methods):
        problems.append(("methods", "a workflow with a secret accepts POST only: the signature covers the "
                                    "raw body, and other methods carry none"))
    return problems


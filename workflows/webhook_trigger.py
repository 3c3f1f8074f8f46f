"""The `type: webhook` trigger's own rules: methods, the secret reference, and how the caller is answered. Pure.

Shared by the definition validator (which refuses what the gateway could not honour, building a
`trigger_specs.WebhookTrigger`) and the gateway (which reads that spec at request time), so the rules are
said once.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from .limits import MAX_RESPOND_TIMEOUT
from .templating import has_template

# The methods a webhook may accept. POST is the only one with a body; a signature covers the raw body, so a
# workflow with a `secret` accepts POST only.
WEBHOOK_METHODS = ("POST", "GET")
DEFAULT_METHODS = ("POST",)
SIGNATURE_PRESETS = ("generic", "github", "stripe")
DEFAULT_RESPOND_TIMEOUT = 10.0
# `{{ secrets.NAME }}` exactly: the gateway looks NAME up in the vault and never renders a template per request.
_SECRET_REFERENCE = re.compile(r"\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class Respond(str, Enum):
    """When the webhook's caller gets its answer (`respond`, SPEC §9)."""

    IMMEDIATELY = "immediately"  # 202 {"run_id"} as soon as the run is stored (the default)
    ON_FINISH = "on_finish"  # when the run ends (flow.respond's answer), or 202 at `respond_timeout`

    def __str__(self) -> str:
        return self.value


def secret_reference(secret: str) -> str | None:
    """NAME for a secret written as `{{ secrets.NAME }}`, else None (a literal, or some other template)."""
    match = _SECRET_REFERENCE.fullmatch(secret.strip())
    return match.group(1) if match else None


def webhook_methods(methods: Any) -> tuple[str, ...]:
    """The methods a (valid) webhook trigger's `methods` value accepts, upper-case."""
    if not methods:
        return DEFAULT_METHODS
    return tuple(dict.fromkeys(method.upper() for method in methods))


def webhook_trigger_problems(trigger: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for each problem of the trigger's `signature`, `secret`, `methods` and `respond*` keys."""
    signature = trigger.get("signature", "generic")
    problems = []
    if signature not in SIGNATURE_PRESETS:
        problems.append(("signature", f"{signature!r} is not one of " + ", ".join(SIGNATURE_PRESETS)))
    return problems + _secret_problems(trigger) + _method_problems(trigger) + _respond_problems(trigger)


def _secret_problems(trigger: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "secret" not in trigger:
        return []
    secret = trigger["secret"]
    if not isinstance(secret, str):
        return [("secret", "must be a string: the signing secret, or {{ secrets.NAME }}")]
    if not secret.strip():
        return [("secret", "must not be empty: an empty secret would accept unsigned deliveries; "
                           "remove `secret` to accept them on purpose")]
    if has_template(secret) and secret_reference(secret) is None:
        return [("secret", "must be a literal or exactly {{ secrets.NAME }}; no other template")]
    return []


def _method_problems(trigger: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "methods" not in trigger:
        return []
    methods = trigger["methods"]
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        return [("methods", "must be a non-empty list of HTTP methods such as [POST]")]
    problems = [(f"methods[{index}]", f"{method!r} is not one of " + ", ".join(WEBHOOK_METHODS))
                for index, method in enumerate(methods) if method.upper() not in WEBHOOK_METHODS]
    if "secret" in trigger and any(method.upper() != "POST" for method in methods):
        problems.append(("methods", "a workflow with a secret accepts POST only: the signature covers the "
                                    "raw body, and other methods carry none"))
    return problems


def _respond_problems(trigger: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    respond = trigger.get("respond", Respond.IMMEDIATELY.value)
    if respond not in {mode.value for mode in Respond}:
        problems.append(("respond", f"{respond!r} is not one of " + ", ".join(mode.value for mode in Respond)))
    if "respond_timeout" not in trigger:
        return problems
    timeout = trigger["respond_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_RESPOND_TIMEOUT:
        problems.append(("respond_timeout", f"must be a number of seconds above 0 and at most "
                                            f"{MAX_RESPOND_TIMEOUT:g}, got {timeout!r}"))
    elif respond != Respond.ON_FINISH.value:
        problems.append(("respond_timeout", "only applies with `respond: on_finish`"))
    return problems

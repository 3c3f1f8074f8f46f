"""flow.wait, flow.approval, flow.run_workflow and flow.respond (SPEC §9).

The first three return a `Pause`: the platform stores the task as `waiting` (no worker held) and resumes it
later. `flow.respond` is an ordinary action whose output the webhook gateway answers its caller with.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connectors.base import Action, ActionContext, ActionError, Pause, PauseReason

DEFAULT_APPROVAL_TIMEOUT = 86400
# A year: far beyond any sensible wait, near enough that a typo in `seconds` does not park a task forever.
MAX_WAIT_SECONDS = 366 * 86400


def parse_until(value: str) -> datetime:
    """An ISO 8601 time that names its offset; a naive time is refused (whose clock would it be?)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ActionError(f"inputs.until: {value!r} is not an ISO 8601 time", retryable=False) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ActionError(f"inputs.until: {value!r} has no UTC offset (e.g. +00:00 or Z)", retryable=False)
    return moment.astimezone(timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class FlowWait(Action):
    name = "flow.wait"
    title = "Wait"
    description = (
        "Pauses the task for `seconds`, or until the ISO 8601 time `until` (with its UTC offset). The task is "
        "waiting and holds no worker; the wake-up time is kept in the database. Output: {\"waited_until\": ...}."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "seconds": {"type": "number", "title": "Seconds", "exclusiveMinimum": 0, "maximum": MAX_WAIT_SECONDS,
                        "description": "How long to wait"},
            "until": {"type": "string", "title": "Until", "minLength": 1,
                      "description": "ISO 8601 time with offset, e.g. 2030-01-01T09:00:00+01:00"},
        },
        "additionalProperties": False,
    }
    output_schema = {"type": "object", "properties": {"waited_until": {"type": "string", "format": "date-time"}}}

    def execute(self, inputs: dict, context: ActionContext) -> Pause:
        if ("seconds" in inputs) == ("until" in inputs):
            raise ActionError("inputs: give exactly one of `seconds` or `until`", retryable=False)
        if "until" in inputs:
            until = parse_until(inputs["until"])
        else:
            until = _now() + timedelta(seconds=float(inputs["seconds"]))
        context.log(f"waiting until {until.isoformat()}")
        return Pause(PauseReason.TIME, until=until, details={"waiting_until": until.isoformat()})


class FlowApproval(Action):
    name = "flow.approval"
    title = "Wait for approval"
    description = (
        "Pauses the task until someone POSTs {\"approved\": true|false, ...} to its resume URL "
        "({{ run.resume_urls.<task id> }}) or clicks Approve/Reject on the run page. Output: the reply plus `by`. "
        "A rejection, or no reply within `timeout` seconds, fails the task."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "message": {"type": "string", "title": "Message", "description": "What the approver is asked"},
            "timeout": {"type": "number", "title": "Timeout", "exclusiveMinimum": 0, "maximum": MAX_WAIT_SECONDS,
                        "default": DEFAULT_APPROVAL_TIMEOUT, "description": "Seconds to wait for a reply"},
        },
        "required": ["message"],
        "additionalProperties": False,
    }
    output_schema = {"type": "object", "properties": {"approved": {"type": "boolean"}, "by": {"type": "string"}}}

    def execute(self, inputs: dict, context: ActionContext) -> Pause:
        timeout = float(inputs.get("timeout", DEFAULT_APPROVAL_TIMEOUT))
        until = _now() + timedelta(seconds=timeout)
        context.log(f"waiting for approval until {until.isoformat()}")
        return Pause(PauseReason.APPROVAL, until=until, details={"message": inputs["message"]})


class FlowRunWorkflow(Action):
    name = "flow.run_workflow"
    title = "Run a workflow"
    description = (
        "Starts another workflow of the same owner (by name) with `payload` as its trigger.body. With `wait` "
        "(default), the task waits for the child and outputs {\"run_id\", \"status\", \"outputs\"}; a failed child "
        "fails it. Without, it outputs {\"run_id\"} at once."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "workflow": {"type": "string", "title": "Workflow", "minLength": 1, "description": "The child's name"},
            "payload": {"title": "Payload", "description": "Any JSON value: the child's trigger.body"},
            "wait": {"type": "boolean", "title": "Wait", "default": True,
                     "description": "Wait for the child run to end"},
        },
        "required": ["workflow"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"run_id": {}, "status": {"type": "string"}, "outputs": {"type": "object"}},
    }

    def execute(self, inputs: dict, context: ActionContext) -> Pause:
        details = {"workflow": inputs["workflow"], "payload": inputs.get("payload"),
                   "wait": bool(inputs.get("wait", True))}
        return Pause(PauseReason.CHILD_RUN, until=None, details=details)


class FlowRespond(Action):
    name = "flow.respond"
    title = "Respond to webhook"
    description = (
        "The answer to the webhook's caller when its trigger has `respond: on_finish`: `status` (default 200), "
        "`headers` and `body` (any JSON value)."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "status": {"type": "integer", "title": "Status", "minimum": 100, "maximum": 599, "default": 200},
            "headers": {"type": "object", "title": "Headers", "additionalProperties": {"type": "string"}},
            "body": {"title": "Body", "description": "Any JSON value"},
        },
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"status": {"type": "integer"}, "headers": {"type": "object"}, "body": {}},
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        return {"status": int(inputs.get("status", 200)), "headers": dict(inputs.get("headers") or {}),
                "body": inputs.get("body")}

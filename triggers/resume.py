"""`POST /resume/<token>`: the reply to a waiting flow.approval task (SPEC §9).

The token is the secret in the task run's resume URL (`{{ run.resume_urls.<task id> }}`); only its SHA-256 is
stored. Answers: 200 `{"run_id", "task_id", "status"}` and the run carries on; 404 for an unknown token; 400 for
a body that is not a JSON object (or has no boolean `approved`); 409 when the task no longer waits. No CSRF: the
token is the credential, and the caller is usually another system or a link in an e-mail.
"""
from __future__ import annotations

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from runs.services import (
    ReplyInvalid,
    ResumeTokenUnknown,
    RunStateConflict,
    approval_answer,
    task_run_for_resume_token,
)
from workflows.limits import MAX_WEBHOOK_BODY_BYTES, LimitExceeded, check_depth

CALLER = "url"  # `by` in the task's output when the reply came through the resume URL


def _error(status: int, path: str, message: str) -> JsonResponse:
    return JsonResponse({"errors": [{"path": path, "message": message}]}, status=status)


class _BadBody(ValueError):
    def __init__(self, status: int, path: str, message: str):
        super().__init__(message)
        self.status, self.path, self.message = status, path, message


def _reply(request) -> dict:
    """The body as a JSON object within the webhook body limits, or _BadBody."""
    raw = request.read(MAX_WEBHOOK_BODY_BYTES + 1)
    if len(raw) > MAX_WEBHOOK_BODY_BYTES:
        raise _BadBody(413, "body", f"the body is larger than the {MAX_WEBHOOK_BODY_BYTES} byte limit")
    try:
        reply = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _BadBody(400, "body", "not JSON: send a JSON object such as {\"approved\": true}") from None
    if not isinstance(reply, dict):
        raise _BadBody(400, "body", "must be a JSON object such as {\"approved\": true}")
    try:
        check_depth(reply, "body")
    except LimitExceeded as exc:
        raise _BadBody(400, exc.path, exc.message) from None
    return reply


@csrf_exempt
def resume(request, token: str):
    if request.method != "POST":
        response = _error(405, "method", f"{request.method} is not allowed: POST a JSON object")
        response["Allow"] = "POST"
        return response
    try:
        task_run_id = task_run_for_resume_token(token=token)
    except ResumeTokenUnknown:
        return _error(404, "token", "unknown resume token")
    try:
        task_run = approval_answer(task_run_id=task_run_id, reply=_reply(request), by=CALLER)
    except _BadBody as exc:
        return _error(exc.status, exc.path, exc.message)
    except ReplyInvalid as exc:
        return _error(400, f"body.{exc.path}" if exc.path else "body", exc.message)
    except RunStateConflict as exc:
        return _error(409, "token", str(exc))
    return JsonResponse({"run_id": task_run.run_id, "task_id": task_run.task_id, "status": task_run.status})

"""The webhook gateway: `POST /hooks/<token>` (GET with a query string too) → `202 {"run_id": N}`.

The accept path does the least work a durable answer allows: one indexed read of the workflow by token (the
compiled definition comes from a per-process cache), one transaction inserting the run and the delivery, one
broker publish after commit. It never waits on workers, so saturated workers do not slow the answer.

Order of checks: method (405) → token (404) → rate limit (429) → size (413) → signature (401) →
disabled (409) → body (400) → accept (202, or 200 with the first run's id for a repeated Idempotency-Key).
Refusals after the token is known are stored as deliveries (status and reason) except 413 and 429, whose
point is to spend nothing.

Rate limiting is a fixed window counter in Django's cache, per token. With no `CACHES` setting that cache is
the in-process LocMemCache, so the limit holds per web worker process (the effective ceiling is the limit
times the number of workers); pointing `CACHES["default"]` at Redis makes it global with no code change.
"""
from __future__ import annotations

import hashlib
import logging
import time

from django.core.cache import cache
from django.core.exceptions import TooManyFieldsSent
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Workflow
from .services import spec_for_version
from .webhook_signatures import SignatureError, verify
from .webhooks import (
    MAX_BODY_BYTES,
    MAX_IDEMPOTENCY_KEY,
    WebhookRejected,
    delivery_accept,
    delivery_record_rejected,
    resolve_secret,
    trigger_from_request,
    webhook_config,
)

log = logging.getLogger(__name__)
ALLOWED_METHODS = ("POST", "GET")


def _error(status: int, path: str, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"path": path, "message": message}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def rate_limit_exceeded(token: str, limit: int, window: int) -> int:
    """Count this request in the token's current window; returns 0, or the seconds until the window ends."""
    now = time.time()
    window_index = int(now // window)
    key = "ff:hook-rate:" + hashlib.blake2b(token.encode(), digest_size=12).hexdigest() + f":{window}:{window_index}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.add(key, 1, timeout=window + 1)
        count = 1
    if count <= limit:
        return 0
    return max(1, int((window_index + 1) * window - now + 0.999))


def _read_body(request) -> bytes:
    """At most MAX_BODY_BYTES of the body, or WebhookRejected(413): trusts neither header nor stream alone."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except ValueError:
        raise WebhookRejected(400, "headers.content-length", "Content-Length is not a number") from None
    if length > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body", f"the body is larger than the {MAX_BODY_BYTES} byte limit")
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body", f"the body is larger than the {MAX_BODY_BYTES} byte limit")
    return raw


def _query(request) -> dict:
    try:
        return {key: values[0] if len(values) == 1 else values for key, values in request.GET.lists()}
    except TooManyFieldsSent:
        raise WebhookRejected(400, "query", "too many query parameters") from None


@csrf_exempt
def receive(request, token: str):
    if request.method not in ALLOWED_METHODS:
        return _error(405, "method", f"use POST (or GET with a query string), not {request.method}",
                      Allow=", ".join(ALLOWED_METHODS))
    workflow = (Workflow.objects.only("id", "enabled", "current_version_id", "name")
                .filter(webhook_token=token).first()) if len(token) <= 64 else None
    if workflow is None:
        return _error(404, "token", "no workflow has this webhook token")
    if workflow.current_version_id is None:
        return _error(409, "workflow", "the workflow has no saved definition")
    config = webhook_config(spec_for_version(workflow.current_version_id))
    retry_after = rate_limit_exceeded(token, *config.rate_limit)
    if retry_after:
        limit, window = config.rate_limit
        return _error(429, "token", f"rate limit of {limit} requests per {window} s exceeded for this webhook; "
                                    f"retry in {retry_after} s", Retry_After=str(retry_after))
    try:
        raw_body = _read_body(request)
    except WebhookRejected as exc:
        return _error(exc.status, exc.path, exc.message)

    headers = {name.lower(): value for name, value in request.headers.items()}
    stored = {"workflow": workflow, "method": request.method, "headers": headers, "query": {}, "raw_body": raw_body}
    try:
        stored["query"] = _query(request)
        if config.secret:
            secret = resolve_secret(config.secret)
            if secret is None:
                raise WebhookRejected(401, "signature", "the webhook's secret is not available; ask the operator")
            try:
                verify(config.signature, secret, headers, raw_body)
            except SignatureError as exc:
                raise WebhookRejected(401, "signature", str(exc)) from None
        if not workflow.enabled:
            raise WebhookRejected(409, "workflow", "the workflow is disabled")
        idempotency_key = headers.get("idempotency-key") or None
        if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise WebhookRejected(400, "headers.idempotency-key",
                                  f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters")
        trigger = trigger_from_request(method=request.method, headers=headers, query=stored["query"],
                                       raw_body=raw_body)
        run_id, repeated = delivery_accept(trigger=trigger, idempotency_key=idempotency_key, **stored)
    except WebhookRejected as exc:
        if exc.status in (400, 401, 409):
            delivery_record_rejected(status_code=exc.status, error=exc.message, **stored)
        return _error(exc.status, exc.path, exc.message)
    except DataError:
        # Data our checks let through but the database refused: the sender's input, not our outage.
        log.warning("webhook delivery for workflow %s refused by the database", workflow.id, exc_info=True)
        return _error(400, "body", "the delivery could not be stored: the database refused its content")
    except IntegrityError:  # the workflow was deleted between the lookup and the insert
        return _error(404, "token", "no workflow has this webhook token")
    except (OperationalError, InterfaceError):
        log.exception("webhook delivery for workflow %s: database unavailable", workflow.id)
        return _error(503, "", "the delivery could not be stored; try again", Retry_After="5")
    if repeated:
        response = JsonResponse({"run_id": run_id}, status=200)
        response["Idempotent-Replayed"] = "true"
        return response
    return JsonResponse({"run_id": run_id}, status=202)

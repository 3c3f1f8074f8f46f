"""Webhook deliveries: turn a received request into a trigger, store it, start a run; replay stored ones.

The HTTP side (`triggers.hooks.receive`) only reads the request and maps `WebhookRejected` to a status. Here:

* `webhook_config` reads the workflow's first `type: webhook` trigger (methods, secret, signature preset, rate
  limit); a workflow without one has no webhook (its token answers 404, SPEC §6).
* `webhook_secret` is the literal secret, or the owner's vault entry for `{{ secrets.NAME }}`: a look-up by
  name, never a template rendered per request.
* `trigger_from_request` parses the raw body (JSON, form or text) into `{"body", "headers", "query", "method",
  "kind": "webhook"}`, refusing what PostgreSQL could not store (NUL characters, lone surrogates, NaN).
* `delivery_accept` has `runs.services.run_create_with_companion` (the one writer of runs) insert the run and
  the delivery in one statement; the run's start is enqueued on commit. A repeated `Idempotency-Key` fails the
  delivery INSERT on a unique constraint, which rolls the run back and answers the first run's id: no
  read-then-write race.
"""
from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import TooManyFieldsSent
from django.db import IntegrityError, transaction
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.utils import timezone

from connectors.secrets import SecretUndecryptable, secret_value
from runs.models import TriggerKind, WorkflowRun
from runs.services import run_create, run_create_with_companion
from workflows.definition import WorkflowSpec
from workflows.limits import MAX_REFUSED_BODY_BYTES, MAX_RESPOND_TIMEOUT, MAX_WEBHOOK_BODY_BYTES
from workflows.models import Workflow
from workflows.templating import has_template
from workflows.trigger_specs import WebhookTrigger
from workflows.webhook_trigger import DEFAULT_METHODS, DEFAULT_RESPOND_TIMEOUT, Respond, secret_reference

from .models import WebhookDelivery

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_WEBHOOK_BODY_BYTES
IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
DEFAULT_RATE_LIMIT = (6000, 60)  # requests per window (seconds), per token and per web worker process
_RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


class WebhookRejected(Exception):
    """The delivery is refused; `status` is the HTTP answer, `path`/`message` the error entry."""

    def __init__(self, status: int, path: str, message: str):
        self.status, self.path, self.message = status, path, message
        super().__init__(message)

    def as_json(self) -> dict:
        return {"errors": [{"path": self.path, "message": self.message}]}


@dataclass(frozen=True)
class WebhookConfig:
    methods: tuple[str, ...] = DEFAULT_METHODS
    secret: str | None = None  # a literal secret
    secret_name: str | None = None  # the vault entry named by `{{ secrets.NAME }}`
    signature: str = "generic"
    rate_limit: tuple[int, int] = DEFAULT_RATE_LIMIT
    respond: Respond = Respond.IMMEDIATELY  # ON_FINISH: answered when the run ends (triggers.responses)
    respond_timeout: float = DEFAULT_RESPOND_TIMEOUT

    @property
    def signed(self) -> bool:
        return self.secret is not None or self.secret_name is not None


def webhook_config(spec: WorkflowSpec) -> WebhookConfig | None:
    """The settings of the workflow's first webhook trigger; None when it has none (no webhook at all)."""
    trigger = webhook_trigger(spec)
    if trigger is None:
        return None
    secret, secret_name = _secret_fields(trigger)
    signed = secret is not None or secret_name is not None
    return WebhookConfig(methods=("POST",) if signed else trigger.methods, secret=secret,
                         secret_name=secret_name, signature=trigger.signature,
                         rate_limit=parse_rate_limit(trigger.rate_limit), respond=trigger.respond,
                         respond_timeout=min(trigger.respond_timeout, MAX_RESPOND_TIMEOUT))


def webhook_trigger(spec: WorkflowSpec) -> WebhookTrigger | None:
    """The workflow's first webhook trigger (the one its token answers for), or None."""
    return next((t for t in spec.triggers if isinstance(t, WebhookTrigger)), None)


def _secret_fields(trigger: WebhookTrigger) -> tuple[str | None, str | None]:
    """(literal, vault name) of the trigger's `secret`.

    Validation refuses an empty secret and any template but `{{ secrets.NAME }}`; a definition stored before
    that rule fails closed (a vault name no one can hold, so nothing verifies) instead of open.
    """
    secret = trigger.secret
    if secret is None:
        return None, None
    if not isinstance(secret, str) or not secret.strip():
        return None, ""
    name = secret_reference(secret)
    if name is not None:
        return None, name
    return (None, "") if has_template(secret) else (secret, None)


def parse_rate_limit(value: Any) -> tuple[int, int]:
    """`rate_limit: 120` (per minute) or `"10/s"`, `"100/m"`, `"1000/h"` → (count, window seconds)."""
    if value is None:
        return DEFAULT_RATE_LIMIT
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, 60
    if isinstance(value, str):
        count, _, unit = value.replace(" ", "").partition("/")
        if count.isdigit() and int(count) > 0 and unit.lower() in _RATE_UNITS:
            return int(count), _RATE_UNITS[unit.lower()]
    log.warning("ignoring webhook rate_limit %r: expected an integer per minute or 'N/s', 'N/m', 'N/h'", value)
    return DEFAULT_RATE_LIMIT


def webhook_secret(config: WebhookConfig, *, owner_id: int | None) -> str | None:
    """The key the delivery must be signed with: the literal, or the owner's vault entry (None when missing)."""
    if config.secret is not None:
        return config.secret
    if not config.secret_name:
        return None
    try:
        value = secret_value(config.secret_name, owner_id=owner_id)
    except SecretUndecryptable:
        log.warning("webhook secret %r of owner %s cannot be decrypted", config.secret_name, owner_id)
        return None
    return value or None


# --- parsing -------------------------------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_body(raw: bytes, content_type: str) -> Any:
    """The request body as data: JSON → value, forms → {name: value or [values]}, other text → str."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not raw:
        return {}
    if media_type == "application/x-www-form-urlencoded":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected(400, "body", "form body is not UTF-8") from None
        try:
            return _flatten(QueryDict(text, encoding="utf-8"))
        except TooManyFieldsSent:
            raise WebhookRejected(400, "body", "too many form fields") from None
    if media_type == "multipart/form-data":
        return _parse_multipart(raw, content_type)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body", "body is not UTF-8 text") from None
    if media_type in ("", "application/json", "text/json") or media_type.endswith("+json"):
        if not media_type and not text.lstrip()[:1] in ("{", "["):
            return text
        try:
            return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
        except json.JSONDecodeError as exc:
            raise WebhookRejected(400, "body", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        except (ValueError, RecursionError) as exc:  # NaN/Infinity, >4300-digit integers, absurd nesting
            message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise WebhookRejected(400, "body", f"invalid JSON: {message}") from None
    return text


def _parse_multipart(raw: bytes, content_type: str) -> dict:
    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(raw))}
    try:
        fields, files = MultiPartParser(meta, io.BytesIO(raw), [MemoryFileUploadHandler()], "utf-8").parse()
    except TooManyFieldsSent:
        raise WebhookRejected(400, "body", "too many form fields") from None
    except (MultiPartParserError, ValueError) as exc:
        raise WebhookRejected(400, "body", f"invalid multipart body: {exc}") from None
    body = _flatten(fields)
    for name in files:
        # File contents are not copied into the trigger; the raw delivery keeps them.
        described = [{"filename": f.name, "content_type": f.content_type, "size": f.size} for f in files.getlist(name)]
        body[name] = described[0] if len(described) == 1 else described
    return body


def _flatten(data: QueryDict) -> dict:
    return {key: values[0] if len(values) == 1 else values for key, values in data.lists()}


def _check_storable(value: Any, path: str, depth: int = 0) -> None:
    """Refuse data PostgreSQL's jsonb cannot hold (NUL characters, lone surrogates), before any INSERT."""
    if depth > 200:
        raise WebhookRejected(400, path, "nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise WebhookRejected(400, path, "NUL characters (\\u0000) are not supported")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookRejected(400, path, "text contains unpaired surrogate characters") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, path, depth + 1)
            _check_storable(item, path, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, path, depth + 1)


def trigger_from_request(*, method: str, headers: dict, query: dict, raw_body: bytes) -> dict:
    """The run's `trigger` for a delivery; raises WebhookRejected(400) on a body it cannot take."""
    body = parse_body(raw_body, headers.get("content-type", ""))
    _check_storable(body, "body")
    _check_storable(query, "query")
    _check_storable(headers, "headers")
    return {"body": body, "headers": headers, "query": query, "method": method, "kind": TriggerKind.WEBHOOK.value}


# --- storing --------------------------------------------------------------------------------------------------


def delivery_accept(*, workflow: Workflow, method: str, headers: dict, query: dict, raw_body: bytes,
                    trigger: dict, idempotency_key: str | None = None,
                    workflow_holds: dict | None = None) -> tuple[int, bool]:
    """Store the delivery and a queued run atomically; returns (run id, whether it is a repeat). With
    `workflow_holds`, only while the workflow's row holds those values (else runs.services.WorkflowChanged).

    With an `idempotency_key` seen on this workflow within 24 h, nothing is stored and the first run's id
    is returned. An older holder of the key is released (its key cleared) and the insert tried once more.
    """
    for _ in range(2):
        try:
            delivery = WebhookDelivery(workflow_id=workflow.id, method=method, headers=headers, query=query,
                                       body=raw_body, status_code=202, idempotency_key=idempotency_key)
            run_id = run_create_with_companion(workflow=workflow, trigger=trigger, trigger_kind=TriggerKind.WEBHOOK,
                                               companion=delivery, workflow_holds=workflow_holds)
        except IntegrityError:
            if not idempotency_key:
                raise
            first = (WebhookDelivery.objects.filter(workflow=workflow, idempotency_key=idempotency_key)
                     .values("id", "run_id", "received_at").first())
            if first is None:  # released by a concurrent request between our INSERT and this read
                continue
            if first["received_at"] >= timezone.now() - IDEMPOTENCY_WINDOW:
                return first["run_id"], True
            WebhookDelivery.objects.filter(id=first["id"], idempotency_key=idempotency_key).update(
                idempotency_key=None)
            continue
        return run_id, False
    raise WebhookRejected(409, "headers.idempotency-key", "this Idempotency-Key is being used concurrently")


def delivery_record_rejected(*, workflow: Workflow, method: str, headers: dict, query: dict, raw_body: bytes,
                             status_code: int, error: str) -> None:
    """Keep a refused delivery (bad signature, bad body, disabled workflow) for the operator to inspect.

    Only the head of the body is kept: a sender refused before acceptance must not be able to fill the
    database with megabytes per request.
    """
    truncated = len(raw_body) > MAX_REFUSED_BODY_BYTES
    try:
        WebhookDelivery.objects.create(workflow=workflow, method=method, headers=_storable_or_empty(headers),
                                       query=_storable_or_empty(query), body=raw_body[:MAX_REFUSED_BODY_BYTES],
                                       body_truncated=truncated, status_code=status_code, error=error[:2000])
    except Exception:  # noqa: BLE001 - the sender still gets its 4xx; losing the record is only logged
        log.warning("could not store rejected webhook delivery for workflow %s", workflow.id, exc_info=True)


def _storable_or_empty(value: dict) -> dict:
    try:
        _check_storable(value, "")
    except WebhookRejected:
        return {}
    return value


def delivery_replay(delivery_id: int) -> WorkflowRun:
    """Start a new run from a stored delivery, as if it had just arrived (no signature or rate check).

    The trigger is rebuilt from the stored raw body and headers, so it is what the original would have had,
    plus `replayed_from` naming the delivery. Raises WebhookRejected when the body cannot make a trigger, was
    truncated when it was refused, or the workflow is disabled, and WebhookDelivery.DoesNotExist for an unknown id.
    """
    delivery = WebhookDelivery.objects.select_related("workflow").get(id=delivery_id)
    workflow = delivery.workflow
    if delivery.body_truncated:
        raise WebhookRejected(409, "body", f"only the first {MAX_REFUSED_BODY_BYTES} bytes of this refused "
                                           "delivery's body were kept; it cannot be replayed")
    if not workflow.enabled:
        raise WebhookRejected(409, "workflow", "the workflow is disabled; enable it to replay deliveries")
    trigger = trigger_from_request(method=delivery.method, headers=dict(delivery.headers),
                                   query=dict(delivery.query), raw_body=bytes(delivery.body))
    trigger["replayed_from"] = delivery.id
    with transaction.atomic():
        return run_create(workflow=workflow, trigger=trigger, trigger_kind=TriggerKind.WEBHOOK)

"""webhook.send: POST a JSON payload, signed like our own generic webhook preset verifies, with an Idempotency-Key.

The signature is `X-Signature-256: sha256=<hex>`, HMAC-SHA256 with the secret over the exact bytes sent (the
scheme of workflows/webhook_signatures.py's "generic" preset, and GitHub's with another header name).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from connectors.base import Action, ActionContext, ActionError
from connectors.net import TooManyRedirects, redact_url, safe_request

EXCERPT_LENGTH = 200
# Worth another attempt: the receiver is overloaded, down for a moment, or asked us to slow down.
RETRYABLE_STATUSES = {408, 425, 429}
USER_AGENT = "Flowforge-Webhook/1"


def body_bytes(payload: object) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def idempotency_key(context: ActionContext) -> str:
    """The task run's §10 key when the context carries one; else a key derived from what names this call.

    Every attempt of one task run (one item of a for_each) gets the same key, so a receiver that honours the
    header sees the call once even when the attempt is repeated after a worker died mid-call.
    """
    if context.idempotency_key:
        return context.idempotency_key
    # Only a context built outside the executor (a direct call in a test or a plugin) has no key.
    name = json.dumps([context.workflow, str(context.run_id), context.task_id, context.item_index])
    return "ff-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_LENGTH else text[:EXCERPT_LENGTH] + "…"


class WebhookSend(Action):
    name = "webhook.send"
    title = "Send a webhook"
    description = (
        "POSTs a JSON payload to a URL. With a secret, the request carries X-Signature-256: sha256=<hex>, "
        "HMAC-SHA256 of the exact body, as Flowforge's own webhook triggers verify. Every request carries an "
        "Idempotency-Key that is the same for every attempt of the task. Fails unless the answer is 2xx; "
        "redirects are not followed. Private addresses obey the same rules as http.request."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "title": "URL", "minLength": 1,
                    "description": "The receiver's http:// or https:// URL"},
            "payload": {"title": "Payload", "description": "Any JSON value, sent as the request body"},
            "secret": {"type": "string", "title": "Secret", "minLength": 1,
                       "description": "Signs the body (X-Signature-256); usually {{ secrets.NAME }}"},
            "timeout": {"type": "number", "title": "Timeout", "exclusiveMinimum": 0, "maximum": 3600,
                        "default": 30, "description": "Seconds for the whole exchange (capped by the task timeout)"},
        },
        "required": ["url", "payload"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {
            "status": {"type": "integer"},
            "body": {"type": "string"},
            "json": {"description": "The parsed answer when it is JSON, else null"},
            "idempotency_key": {"type": "string"},
        },
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        url = inputs["url"]
        shown = redact_url(url)
        try:
            body = body_bytes(inputs["payload"])
        except ValueError as exc:  # NaN or infinity: not JSON
            raise ActionError(f"payload is not JSON: {exc}", retryable=False) from None
        key = idempotency_key(context)
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": USER_AGENT}
        if inputs.get("secret"):
            headers["X-Signature-256"] = signature(inputs["secret"], body)
        timeout = min(float(inputs.get("timeout", 30)), float(context.timeout))

        started = time.monotonic()
        try:
            response = safe_request("POST", url, data=body, headers=headers, timeout=timeout, max_redirects=0,
                                    allow_private=context.config.http_allow_private,
                                    allowed_networks=context.config.http_allowed_networks)
        except TooManyRedirects as exc:
            raise ActionError(f"POST {shown} answered with a redirect, which webhook.send does not follow "
                              f"(use the final URL): {exc}", retryable=False) from None
        except ActionError as exc:
            context.log(f"POST {shown} -> failed: {exc}")
            raise
        signed = " (signed)" if "X-Signature-256" in headers else ""
        context.log(f"POST {shown}{signed}, {len(body)} bytes, Idempotency-Key {key} -> {response.status_code} "
                    f"({(time.monotonic() - started) * 1000:.0f} ms)")

        parsed = None
        if "json" in response.headers.get("content-type", "").lower() and response.text.strip():
            try:
                parsed = response.json()
            except ValueError:
                pass
        output = {"status": response.status_code, "body": response.text, "json": parsed, "idempotency_key": key}
        if not 200 <= response.status_code < 300:
            status = response.status_code
            excerpt = _excerpt(response.text)
            raise ActionError(f"POST {shown} -> {status}, expected 2xx{': ' + excerpt if excerpt else ''}",
                              retryable=status >= 500 or status in RETRYABLE_STATUSES, output=output)
        return output

"""http.request: one HTTP call, through the outbound guard of connectors.net; with `connection`, authorised as
one of the workflow owner's connected accounts through the token service (connectors.oauth2.tokens).

Importable without Django set up (the definition validator reads the schema); the token service, which needs
the database, is imported when a request names a connection.
"""
from __future__ import annotations

import json
import time

from connectors.base import Action, ActionContext, ActionError
from connectors.net import redact_url, safe_request

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
EXCERPT_LENGTH = 200
# Worth another attempt: the server is overloaded, down for a moment, or asked us to slow down.
RETRYABLE_STATUSES = {408, 425, 429}

_SCALAR = {"type": ["string", "number", "boolean"]}
_STATUS = {"type": "integer", "minimum": 100, "maximum": 599}


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def _param_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_param_value(v) for v in value]
    return value


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_LENGTH else text[:EXCERPT_LENGTH] + "…"


class HttpRequest(Action):
    name = "http.request"
    title = "HTTP request"
    description = (
        "Sends an HTTP request and returns status, headers, body and (for JSON responses) json. Fails when the "
        "status is not the expected one (any 2xx by default). Private, loopback and link-local addresses are "
        "refused unless AUTOMATION_HTTP_ALLOW_PRIVATE=1 or the network is listed in AUTOMATION_HTTP_ALLOWED_NETWORKS."
    )
    input_schema = {
        "type": "object",
        "properties": {
            "method": {"type": "string", "enum": METHODS, "default": "GET", "description": "HTTP method"},
            "url": {
                "type": "string",
                "minLength": 1,
                "description": "Absolute http:// or https:// URL",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Request headers",
            },
            "params": {
                "type": "object",
                "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
                "description": "Query string parameters; a list repeats the parameter",
            },
            "json": {"description": "A JSON value sent as the request body (Content-Type: application/json)"},
            "body": {"type": "string", "description": "A raw request body, sent as UTF-8 (use json for JSON)"},
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 3600,
                "default": 30,
                "description": "Seconds for the whole exchange, redirects included (capped by the task timeout)",
            },
            "connection": {
                "type": "string",
                "minLength": 1,
                "maxLength": 140,
                "description": "A connected account of the workflow's owner, as '<provider>' or "
                               "'<provider>:<login>': sent as Authorization: Bearer <token>; a 401 refreshes "
                               "the token once and retries once",
            },
            "idempotency_key": {
                "type": "boolean",
                "default": True,
                "description": "Send the task run's key (the same on every attempt) as the Idempotency-Key header, "
                               "unless headers set one; false sends none",
            },
            "expected_status": {
                "oneOf": [_STATUS, {"type": "array", "items": _STATUS, "minItems": 1}],
                "description": "Status code(s) that count as success; default: any 2xx",
            },
        },
        "required": ["url"],
        "not": {"required": ["json", "body"]},
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {
            "status": {"type": "integer"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": "string"},
            "json": {"description": "The parsed body when the response is JSON, else null"},
            "url": {"type": "string", "description": "The final URL, after redirects"},
        },
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        method = inputs.get("method", "GET")
        url = inputs["url"]
        shown = redact_url(url) if "@" in url else url
        timeout = min(float(inputs.get("timeout", 30)), float(context.timeout))
        headers = dict(inputs.get("headers") or {})
        kwargs: dict = {}
        if inputs.get("params"):
            kwargs["params"] = {k: _param_value(v) for k, v in inputs["params"].items()}
        if "json" in inputs and "body" in inputs:
            raise ActionError("give either json or body, not both", retryable=False)
        if "json" in inputs:
            kwargs["data"] = json.dumps(inputs["json"]).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        elif "body" in inputs:
            kwargs["data"] = inputs["body"].encode()

        if (inputs.get("idempotency_key", True) and context.idempotency_key
                and not any(k.lower() == "idempotency-key" for k in headers)):
            headers["Idempotency-Key"] = context.idempotency_key

        connection = inputs.get("connection")
        if connection and any(k.lower() == "authorization" for k in headers):
            raise ActionError("give either connection or an Authorization header, not both", retryable=False)

        def send(access_token: str | None = None):
            sent = {**headers, "Authorization": f"Bearer {access_token}"} if access_token else headers
            return safe_request(
                method, url, headers=sent, allow_private=context.config.http_allow_private, timeout=timeout,
                allowed_networks=context.config.http_allowed_networks, **kwargs,
            )

        started = time.monotonic()
        try:
            response = self._send_as(connection, send, context) if connection else send()
        except ActionError as exc:
            context.log(f"{method} {shown} -> failed: {exc} ({(time.monotonic() - started) * 1000:.0f} ms)")
            raise
        elapsed_ms = (time.monotonic() - started) * 1000
        context.log(f"{method} {shown} -> {response.status_code} ({elapsed_ms:.0f} ms)")

        body = response.text
        parsed = None
        if _is_json(response.headers.get("content-type", "")) and body.strip():
            try:
                parsed = response.json()
            except ValueError:
                context.log("response says it is JSON but does not parse; output.json is null")
        output = {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": body,
            "json": parsed,
            "url": response.url,
        }

        expected = inputs.get("expected_status")
        if expected is None:
            ok = 200 <= response.status_code < 300
            wanted = "2xx"
        else:
            expected = [expected] if isinstance(expected, int) else expected
            ok = response.status_code in expected
            wanted = " or ".join(str(s) for s in expected)
        if not ok:
            status = response.status_code
            reason = f" {response.reason}" if response.reason else ""
            excerpt = _excerpt(body)
            detail = f": {excerpt}" if excerpt else ""
            raise ActionError(
                f"{method} {shown} -> {status}{reason}, expected {wanted}{detail}",
                retryable=status >= 500 or status in RETRYABLE_STATUSES,
                output=output,
            )
        return output

    @staticmethod
    def _send_as(connection: str, send, context: ActionContext):
        """The tokens.authorized_request dance, with log lines: a 401 refreshes once and retries once."""
        from connectors.oauth2 import tokens

        grant = tokens.bearer_for(context.owner_id, connection)
        context.log(f"using connection '{grant.connection}'")
        response = send(grant.access_token)
        if response.status_code != 401:
            return response
        context.log(f"connection '{grant.connection}': the token was rejected (401); refreshing it and retrying once")
        return send(tokens.refresh_after_401(grant).access_token)

"""The Slack Web API calls the actions make, as plain functions, through connectors.net.

Slack answers most errors with HTTP 200 and `{"ok": false, "error": "<code>"}`; a rotated token that expired is
`token_expired` (and `invalid_auth` when revoked), which the token service treats like a 401.
"""
from __future__ import annotations

import json
from typing import Any

import requests

from connectors.base import ActionConfig, ActionError
from connectors.net import safe_request

# Errors that mean the access token is no good: refresh once and retry once (then the account needs reauth).
TOKEN_ERRORS = {"token_expired", "invalid_auth", "token_revoked", "not_authed"}
# Errors after which another attempt may succeed.
RETRYABLE_ERRORS = {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                    "request_timeout"}
MAX_ANSWER_BYTES = 1024 * 1024


class SlackError(ActionError):
    """Slack answered `{"ok": false, "error": code}`."""

    def __init__(self, method: str, code: str, *, output: dict | None = None):
        super().__init__(f"Slack {method} failed: {code}", retryable=code in RETRYABLE_ERRORS, output=output)
        self.code = code


def answer_json(response: requests.Response, method: str) -> dict:
    """The answer's JSON object; a non-JSON answer (a proxy's error page, a 5xx) fails with its status."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        status = response.status_code
        raise ActionError(f"Slack {method} answered HTTP {status} without a JSON object",
                          retryable=status >= 500 or status == 429)
    return payload


def token_rejected(response: requests.Response) -> bool:
    """Whether Slack refused the token itself (the token service then refreshes once and retries once)."""
    if response.status_code == 401:
        return True
    try:
        payload = response.json()
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("ok") is False and payload.get("error") in TOKEN_ERRORS


def call(*, api_url: str, method: str, token: str, body: dict[str, Any], config: ActionConfig,
         timeout: float) -> requests.Response:
    """POST `body` as JSON to `<api_url>/<method>` with the bearer token; the answer, whatever it says."""
    return safe_request(
        "POST", f"{api_url}/{method}", data=json.dumps(body).encode("utf-8"), timeout=timeout, max_redirects=0,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
        max_bytes=MAX_ANSWER_BYTES, allow_private=config.http_allow_private,
        allowed_networks=config.http_allowed_networks,
    )


# Reference: https://api.slack.com/methods/chat.postMessage
def chat_post_message_body(*, channel: str, text: str, blocks: list | None) -> dict[str, Any]:
    body: dict[str, Any] = {"channel": channel, "text": text}
    if blocks:
        body["blocks"] = blocks
    return body

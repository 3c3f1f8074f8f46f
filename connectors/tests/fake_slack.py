"""A fake Slack Web API on 127.0.0.1: chat.postMessage and the token rotation endpoint (oauth.v2.access).

Like Slack it answers errors with HTTP 200 and `{"ok": false, "error": ...}`: `not_authed` without a token,
`invalid_auth` for an unknown one, `token_expired` for an expired rotated one, `channel_not_found` for a
channel it does not know. Refresh tokens are single-use and the client secret is checked.
"""
from __future__ import annotations

import ipaddress
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest


from connectors.models import Provider
from connectors.oauth2.client import Identity
from connectors.oauth2.tokens import connected_account_store
from connectors.tests.fake_http import serving

CLIENT_ID = "slack-client"
CLIENT_SECRET = "slack-secret-" + "z" * 16
CHANNELS = {"#general": "C0GENERAL", "C0GENERAL": "C0GENERAL", "#random": "C0RANDOM"}
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@dataclass
class FakeSlack:
    url: str = ""
    access_tokens: dict = field(default_factory=dict)  # token -> expired?
    refresh_tokens: set = field(default_factory=set)
    posts: list = field(default_factory=list)  # (authorization header, JSON body, answer)
    refreshes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def issue(self) -> dict:
        with self.lock:
            access, refresh = "xoxe.xoxb-" + secrets.token_hex(8), "xoxe-1-" + secrets.token_hex(8)
            self.access_tokens[access] = False
            self.refresh_tokens.add(refresh)
        return {"ok": True, "access_token": access, "refresh_token": refresh, "token_type": "bot",
                "expires_in": 43200, "scope": "chat:write"}

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, payload: dict, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        fake: FakeSlack = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/chat.postMessage":
            return self._post_message(fake, json.loads(raw or b"{}"))
        if self.path == "/api/oauth.v2.access":
            return self._refresh(fake, {k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        self._answer({"ok": False, "error": "unknown_method"}, 404)

    def _post_message(self, fake: FakeSlack, body: dict) -> None:
        authorization = self.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        with fake.lock:
            expired = fake.access_tokens.get(token)
        if not authorization.startswith("Bearer "):
            answer = {"ok": False, "error": "not_authed"}
        elif expired is None:
            answer = {"ok": False, "error": "invalid_auth"}
        elif expired:
            answer = {"ok": False, "error": "token_expired"}
        elif body.get("channel") not in CHANNELS:
            answer = {"ok": False, "error": "channel_not_found"}
        else:
            answer = {"ok": True, "channel": CHANNELS[body["channel"]], "ts": f"1700000000.{len(fake.posts):06d}",
                      "message": {"text": body.get("text"), "blocks": body.get("blocks")}}
        with fake.lock:
            fake.posts.append((authorization, body, answer))
        self._answer(answer)

    def _refresh(self, fake: FakeSlack, form: dict) -> None:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self._answer({"ok": False, "error": "invalid_client"}, 401)
        with fake.lock:
            known = form.get("refresh_token") in fake.refresh_tokens
            fake.refresh_tokens.discard(form.get("refresh_token"))  # single use
            fake.refreshes += 1
        if form.get("grant_type") != "refresh_token" or not known:
            return self._answer({"error": "invalid_grant", "error_description": "refresh token used or unknown"}, 400)
        self._answer(fake.issue())


@pytest.fixture
def fake_slack(settings, db):
    """A running fake Slack, SLACK_API_URL pointing at it, and a `slack` provider whose token URL is its own."""
    fake = FakeSlack()
    with serving(_Handler, fake=fake) as fake.url:
        settings.SLACK_API_URL = fake.api_url
        settings.AUTOMATION_HTTP_ALLOWED_NETWORKS = LOOPBACK  # the token refresh reads the settings
        Provider.objects.create(
            name="slack", title="Slack", authorize_url=f"{fake.url}/oauth/v2/authorize",
            token_url=f"{fake.api_url}/oauth.v2.access", userinfo_url=f"{fake.api_url}/users.identity",
            scopes=["chat:write"], client_id=CLIENT_ID, client_secret=CLIENT_SECRET, pkce=False)
        yield fake


def connect_slack(fake: FakeSlack, user, login: str = "ada", external_id: str = "U0ADA"):
    """Store `user`'s Slack account as the connect flow would, with tokens the fake accepts."""
    return connected_account_store(user=user, provider="slack", token_response=fake.issue(),
                                   identity=Identity(external_id, login))

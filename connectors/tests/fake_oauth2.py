"""A fake OAuth2 provider on 127.0.0.1 (RFC 6749 authorization code + refresh, RFC 7636 PKCE), for real-HTTP tests.

It is strict where Flowforge must be right: the client secret is checked on every token request, codes are
single-use and bound to their redirect_uri and PKCE challenge (S256 only), refresh tokens are single-use, access
tokens expire, a refused grant is RFC 6749 §5.2's `400 {"error": "invalid_grant"}`, and `/api/...` answers 401
(with WWW-Authenticate) to an expired or unknown token.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest


from connectors.models import Provider
from connectors.oauth2.client import Identity
from connectors.oauth2.tokens import connected_account_store
from connectors.tests.fake_http import QuietServer, serving

CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-secret-" + "s" * 20
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@dataclass
class Token:
    login: str
    expires_at: float | None
    revoked: bool = False


@dataclass
class FakeOAuth2:
    url: str = ""
    users: dict = field(default_factory=lambda: {"alice-at-fake": 7001, "bob-at-fake": 7002})
    current_login: str = "alice-at-fake"  # who "logs in" at the authorize endpoint
    access_ttl: int = 3600
    refresh_delay: float = 0.0  # widens the race window of concurrency tests
    codes: dict = field(default_factory=dict)
    authorize_queries: list = field(default_factory=list)
    access_tokens: dict = field(default_factory=dict)
    refresh_tokens: dict = field(default_factory=dict)
    token_requests: list = field(default_factory=list)  # (grant_type, answered status)
    api_calls: list = field(default_factory=list)  # (path, token, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- helpers for tests -----------------------------------------------------------------------------------
    def issue_tokens(self, login: str = "alice-at-fake") -> dict:
        with self.lock:
            return self._issue(login)

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.access_tokens.values():
                token.expires_at = time.time() - 1

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            for token in self.refresh_tokens.values():
                token.revoked = True

    def valid_access_token(self, value: str) -> bool:
        token = self.access_tokens.get(value)
        return bool(token and not token.revoked and (token.expires_at is None or token.expires_at > time.time()))

    @property
    def refreshes(self) -> int:
        return sum(1 for grant, _ in self.token_requests if grant == "refresh_token")

    # --- behaviour -------------------------------------------------------------------------------------------
    def _issue(self, login: str) -> dict:
        access, refresh = "at-" + secrets.token_urlsafe(16), "rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = Token(login, time.time() + self.access_ttl)
        self.refresh_tokens[refresh] = Token(login, None)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl,
                "refresh_token": refresh, "scope": "read write"}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: QuietServer

    def log_message(self, *args):
        pass

    def _send(self, status: int, payload=None, headers: dict | None = None):
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _bearer(self) -> str:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        return value if scheme.lower() == "bearer" else ""

    def _handle(self):
        fake: FakeOAuth2 = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path == "/authorize" and self.command == "GET":
            return self._authorize(fake, {k: v[-1] for k, v in parse_qs(url.query).items()})
        if url.path == "/token" and self.command == "POST":
            return self._token(fake, {k: v[-1] for k, v in parse_qs(body.decode()).items()})
        return self._api(fake, url.path)

    def _authorize(self, fake: FakeOAuth2, query: dict):
        with fake.lock:
            fake.authorize_queries.append(query)
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return self._send(400, {"error": "invalid_request"})
        if query.get("code_challenge_method", "S256") != "S256":
            return self._send(400, {"error": "invalid_request", "error_description": "S256 only"})
        code = secrets.token_hex(12)
        with fake.lock:
            fake.codes[code] = (fake.current_login, query.get("redirect_uri"), query.get("code_challenge"))
        answer = urlencode({"code": code, "state": query.get("state", "")})
        self._send(302, headers={"Location": f"{query['redirect_uri']}?{answer}"})

    def _token(self, fake: FakeOAuth2, form: dict):
        grant_type = form.get("grant_type", "")

        def answer(status: int, payload: dict):
            with fake.lock:
                fake.token_requests.append((grant_type, status))
            self._send(status, payload, {"Cache-Control": "no-store"})

        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return answer(401, {"error": "invalid_client"})
        if grant_type == "refresh_token":
            if fake.refresh_delay:
                time.sleep(fake.refresh_delay)
            with fake.lock:
                token = fake.refresh_tokens.get(form.get("refresh_token", ""))
                if token is None or token.revoked:
                    refused = {"error": "invalid_grant", "error_description": "refresh token revoked or used"}
                else:
                    token.revoked = True  # single use
                    refused, issued = None, fake._issue(token.login)
            return answer(400, refused) if refused else answer(200, issued)
        if grant_type != "authorization_code":
            return answer(400, {"error": "unsupported_grant_type"})
        with fake.lock:
            grant = fake.codes.pop(form.get("code", ""), None)  # single use, whatever happens next
        if grant is None or grant[1] != form.get("redirect_uri"):
            return answer(400, {"error": "invalid_grant", "error_description": "bad code or redirect_uri"})
        login, _, challenge = grant
        if challenge and s256(form.get("code_verifier", "")) != challenge:
            return answer(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
        with fake.lock:
            issued = fake._issue(login)
        return answer(200, issued)

    def _api(self, fake: FakeOAuth2, path: str):
        token = self._bearer()
        with fake.lock:
            valid = fake.valid_access_token(token)
            login = fake.access_tokens[token].login if valid else None
            fake.api_calls.append((path, token, 200 if valid else 401))
        if not valid:
            return self._send(401, {"error": "invalid_token"},
                              {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if path == "/userinfo":
            return self._send(200, {"id": fake.users[login], "login": login, "email": f"{login}@example.org"})
        return self._send(200, {"user": login, "path": path})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


@pytest.fixture
def fake_oauth2(settings):
    """A running fake provider; outbound calls to 127.0.0.1 are allowed through connectors.net's guard."""
    fake = FakeOAuth2()
    with serving(_Handler, fake=fake) as fake.url:
        settings.AUTOMATION_HTTP_ALLOWED_NETWORKS = LOOPBACK
        yield fake


@pytest.fixture
def fake_provider(fake_oauth2, db):
    """The fake as a Provider row named `fake`, with PKCE."""
    return Provider.objects.create(
        name="fake", title="Fake", authorize_url=f"{fake_oauth2.url}/authorize", token_url=f"{fake_oauth2.url}/token",
        userinfo_url=f"{fake_oauth2.url}/userinfo", scopes=["read", "write"], client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, pkce=True,
    )


@pytest.fixture
def store_fake_account(fake_oauth2, fake_provider):
    """Store an account as the connect flow would, with tokens the fake accepts."""

    def store(user, login: str = "alice-at-fake"):
        fake_oauth2.users.setdefault(login, 7000 + len(fake_oauth2.users) + 1)
        return connected_account_store(user=user, provider="fake", token_response=fake_oauth2.issue_tokens(login),
                                       identity=Identity(str(fake_oauth2.users[login]), login))

    return store

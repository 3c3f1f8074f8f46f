"""A fake GitHub (OAuth endpoints and the few REST endpoints Flowforge uses) on 127.0.0.1, for real-HTTP tests.

It behaves like GitHub where Flowforge depends on it: authorization codes and refresh tokens are single-use,
access tokens expire, OAuth errors come back as 200 with an `error` member, revoking the grant kills every token
of that user, and rate limits answer 403 with the X-RateLimit-* headers (or 429 with Retry-After).
"""
from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from connectors.tests.fake_http import QuietServer, serving

CLIENT_ID = "ff-test-client"
CLIENT_SECRET = "ff-test-secret"


@dataclass
class Token:
    login: str
    expires_at: float | None
    revoked: bool = False


@dataclass
class FakeGitHub:
    url: str = ""
    users: dict = field(default_factory=lambda: {"octocat": {"id": 583231, "login": "octocat", "name": "The Octocat"}})
    # Who "logs in" at the authorize endpoint.
    current_login: str = "octocat"
    access_ttl: int = 28800
    refresh_ttl: int = 15897600
    # Seconds the token endpoint waits before answering a refresh (widens race windows in concurrency tests).
    refresh_delay: float = 0.0
    # Queue of rate-limit answers to give to the next REST calls: ("403", seconds_to_reset) or ("429", retry_after).
    rate_limits: list = field(default_factory=list)
    codes: dict = field(default_factory=dict)
    access_tokens: dict = field(default_factory=dict)
    refresh_tokens: dict = field(default_factory=dict)
    issues: list = field(default_factory=list)
    comments: list = field(default_factory=list)
    stars: set = field(default_factory=set)
    requests: list = field(default_factory=list)
    refresh_grants: int = 0
    # When set, the REST API answers 401 to every token (a grant revoked at GitHub between refresh and call).
    api_rejects_tokens: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- helpers for tests ---------------------------------------------------------------------------------
    def issue_tokens(self, login: str = "octocat") -> dict:
        with self.lock:
            return self._issue_tokens(login)

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

    def valid_refresh_token(self, value: str) -> bool:
        token = self.refresh_tokens.get(value)
        return bool(token and not token.revoked)

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _ in self.requests if method is None or m == method]

    # --- behaviour -----------------------------------------------------------------------------------------
    def _issue_tokens(self, login: str) -> dict:
        access = "ghu_" + secrets.token_urlsafe(24)
        refresh = "ghr_" + secrets.token_urlsafe(48)
        self.access_tokens[access] = Token(login, time.time() + self.access_ttl)
        self.refresh_tokens[refresh] = Token(login, time.time() + self.refresh_ttl)
        return {"access_token": access, "expires_in": self.access_ttl, "refresh_token": refresh,
                "refresh_token_expires_in": self.refresh_ttl, "scope": "repo", "token_type": "bearer"}

    def _revoke_user(self, login: str) -> None:
        for token in itertools.chain(self.access_tokens.values(), self.refresh_tokens.values()):
            if token.login == login:
                token.revoked = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: QuietServer

    def log_message(self, *args):
        pass

    # --- response helpers ----------------------------------------------------------------------------------
    def _send(self, status: int, payload=None, headers: dict | None = None):
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _form(self) -> dict:
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(self.body or b"{}")
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}

    def _bearer(self) -> str:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        return value if scheme.lower() in ("bearer", "token") else ""

    def _basic(self) -> tuple[str, str]:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return "", ""
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password

    # --- routing -------------------------------------------------------------------------------------------
    def _handle(self):
        gh: FakeGitHub = self.server.gh
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with gh.lock:
            gh.requests.append((self.command, url.path, dict(self.headers)))
        parts = url.path.strip("/").split("/")

        if url.path == "/login/oauth/authorize" and self.command == "GET":
            return self._authorize(gh, query)
        if url.path == "/login/oauth/access_token" and self.command == "POST":
            return self._token(gh, self._form())
        if parts[:1] == ["applications"] and parts[2:] == ["grant"] and self.command == "DELETE":
            return self._revoke(gh, parts[1])
        return self._api(gh, parts)

    def _authorize(self, gh: FakeGitHub, query: dict):
        if query.get("client_id") != CLIENT_ID:
            return self._send(404, {"error": "unknown client_id"})
        code = secrets.token_hex(10)
        with gh.lock:
            gh.codes[code] = (gh.current_login, query.get("redirect_uri"))
        target = query["redirect_uri"]
        sep = "&" if "?" in target else "?"
        self._send(302, headers={"Location": f"{target}{sep}{urlencode({'code': code, 'state': query.get('state', '')})}"})

    def _token(self, gh: FakeGitHub, form: dict):
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self._send(200, {"error": "incorrect_client_credentials",
                                    "error_description": "The client_id and/or client_secret passed are incorrect."})
        if form.get("grant_type") == "refresh_token":
            if gh.refresh_delay:
                time.sleep(gh.refresh_delay)
            with gh.lock:
                gh.refresh_grants += 1
                token = gh.refresh_tokens.get(form.get("refresh_token", ""))
                if token is None or token.revoked or (token.expires_at and token.expires_at < time.time()):
                    return self._send(200, {"error": "bad_refresh_token",
                                            "error_description": "The refresh token passed is incorrect or expired."})
                token.revoked = True  # single use
                return self._send(200, gh._issue_tokens(token.login))
        with gh.lock:
            grant = gh.codes.pop(form.get("code", ""), None)
            if grant is None or grant[1] != form.get("redirect_uri"):
                return self._send(200, {"error": "bad_verification_code",
                                        "error_description": "The code passed is incorrect or expired."})
            return self._send(200, gh._issue_tokens(grant[0]))

    def _revoke(self, gh: FakeGitHub, client_id: str):
        if self._basic() != (CLIENT_ID, CLIENT_SECRET) or client_id != CLIENT_ID:
            return self._send(401, {"message": "Bad credentials"})
        with gh.lock:
            token = gh.access_tokens.get(self._form().get("access_token", ""))
            if token is None:
                return self._send(404, {"message": "Not Found"})
            gh._revoke_user(token.login)
        self._send(204)

    def _api(self, gh: FakeGitHub, parts: list[str]):
        with gh.lock:
            valid = gh.valid_access_token(self._bearer()) and not gh.api_rejects_tokens
            login = gh.access_tokens[self._bearer()].login if valid else None
            limit = None
            if valid and gh.rate_limits and parts not in (["user"], ["user", "emails"]):
                limit = gh.rate_limits.pop(0)  # the connect flow's profile calls are never limited
        if not valid:
            return self._send(401, {"message": "Bad credentials",
                                    "documentation_url": "https://docs.github.com/rest"})
        if limit is not None:
            kind, seconds = limit
            if kind == "429":
                return self._send(429, {"message": "You have exceeded a secondary rate limit."},
                                  {"Retry-After": str(seconds)})
            return self._send(403, {"message": "API rate limit exceeded"},
                              {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                               "X-RateLimit-Reset": str(int(time.time() + seconds))})
        user = gh.users[login]
        if parts == ["user"] and self.command == "GET":
            return self._send(200, user)
        if parts == ["user", "emails"] and self.command == "GET":
            return self._send(200, [])
        if len(parts) == 4 and parts[:2] == ["user", "starred"] and self.command == "PUT":
            with gh.lock:
                gh.stars.add((login, f"{parts[2]}/{parts[3]}"))
            return self._send(204)
        if len(parts) == 4 and parts[0] == "repos" and parts[3] == "issues" and self.command == "POST":
            repo = f"{parts[1]}/{parts[2]}"
            if parts[2] == "missing":
                return self._send(404, {"message": "Not Found"})
            data = self._form()
            if not data.get("title"):
                return self._send(422, {"message": "Validation Failed",
                                        "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]})
            with gh.lock:
                number = next(gh._ids)
                issue = {"number": number, "title": data["title"], "body": data.get("body"),
                         "labels": [{"name": n} for n in data.get("labels", [])], "user": {"login": login},
                         "html_url": f"https://github.com/{repo}/issues/{number}", "repo": repo}
                gh.issues.append(issue)
            return self._send(201, issue)
        if len(parts) == 6 and parts[0] == "repos" and parts[3] == "issues" and parts[5] == "comments" \
                and self.command == "POST":
            repo = f"{parts[1]}/{parts[2]}"
            with gh.lock:
                comment_id = 1000 + next(gh._ids)
                comment = {"id": comment_id, "body": self._form().get("body"), "user": {"login": login},
                           "html_url": f"https://github.com/{repo}/issues/{parts[4]}#issuecomment-{comment_id}"}
                gh.comments.append(comment)
            return self._send(201, comment)
        return self._send(404, {"message": "Not Found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


@pytest.fixture
def fake_github(settings):
    """A running fake GitHub; Django settings point GITHUB_OAUTH_URL/GITHUB_API_URL and the client at it."""
    gh = FakeGitHub()
    with serving(_Handler, gh=gh) as gh.url:
        settings.GITHUB_OAUTH_URL = gh.url
        settings.GITHUB_API_URL = gh.url
        settings.GITHUB_CLIENT_ID = CLIENT_ID
        settings.GITHUB_CLIENT_SECRET = CLIENT_SECRET
        # Every GitHub call goes through connectors.net's guard; the fake lives on the loopback.
        settings.AUTOMATION_HTTP_ALLOWED_NETWORKS = (ipaddress.ip_network("127.0.0.1/32"),)
        yield gh


@pytest.fixture
def github_user(django_user_model):
    return django_user_model.objects.create_user("alice", password="a-long-test-password")


@pytest.fixture
def connect_account(fake_github):
    """Store a connected account as the connect flow would, with tokens the fake accepts."""
    from connectors.github import services

    def connect(user, login: str = "octocat"):
        if login not in fake_github.users:
            fake_github.users[login] = {"id": 1000 + len(fake_github.users), "login": login}
        answer = {**fake_github.issue_tokens(login), **fake_github.users[login]}
        return services.connected_account_store(user=user, provider="github", token_response=answer)

    return connect

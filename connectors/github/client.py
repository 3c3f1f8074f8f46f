"""GitHub REST calls on behalf of a connected account: plain functions, one per endpoint.

Every call sends `Authorization: Bearer <token>`. A 401 refreshes the token once (services.account_refresh,
serialised per connection) and retries once; a second 401 or a refused refresh marks the connection as needing
re-authorisation. Rate limits become retryable errors that say when the limit resets, after one in-place wait
when the reset is close. The refresh is the one token service's (connectors.oauth2.tokens), GitHub being one
provider; every request goes through connectors.net (transport.py).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from urllib.parse import quote

import requests
from django.conf import settings

from connectors.base import ActionError
from connectors.fields import UndecryptableValue
from connectors.models import ConnectedAccount

from connectors.oauth2 import tokens

from . import services, transport

# A rate limit that resets sooner than this is waited out in place (once) instead of failing the attempt.
RATE_LIMIT_MAX_SLEEP = 10.0
# GitHub's advice for secondary rate limits without a reset time: wait at least a minute.
RATE_LIMIT_DEFAULT_WAIT = 60.0


def create_issue(account: ConnectedAccount, repo: str, title: str, body: str = "",
                 labels: list[str] | tuple[str, ...] = ()) -> dict:
    # Reference: https://docs.github.com/en/rest/issues/issues#create-an-issue
    payload: dict = {"title": title, "body": body}
    if labels:
        payload["labels"] = list(labels)
    return _request(account, "POST", f"/repos/{_repo_path(repo)}/issues", json=payload).json()


def add_comment(account: ConnectedAccount, repo: str, issue_number: int, body: str) -> dict:
    # Reference: https://docs.github.com/en/rest/issues/comments#create-an-issue-comment
    path = f"/repos/{_repo_path(repo)}/issues/{int(issue_number)}/comments"
    return _request(account, "POST", path, json={"body": body}).json()


def star_repo(account: ConnectedAccount, repo: str) -> None:
    # Reference: https://docs.github.com/en/rest/activity/starring#star-a-repository-for-the-authenticated-user
    _request(account, "PUT", f"/user/starred/{_repo_path(repo)}", headers={"Content-Length": "0"})


# --- plumbing -----------------------------------------------------------------------------------------------


def _repo_path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    if not owner or not name or name in (".", ".."):
        raise ActionError(f"repo must look like 'owner/name', got {repo!r}", retryable=False)
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _send(token: str, method: str, path: str, **kwargs) -> requests.Response:
    url = f"{settings.GITHUB_API_URL}{path}"
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    try:
        return transport.send(method, url, headers=headers, **kwargs)
    except ActionError as exc:
        note = " (the request may have been carried out)" if method in ("POST", "PATCH") else ""
        raise ActionError(f"GitHub unreachable for {method} {path}{note}: {exc}", retryable=exc.retryable) from None


def _reauth_error(account: ConnectedAccount, reason: str) -> ActionError:
    return ActionError(
        f"GitHub connection '{account.login}' needs re-authorisation: {reason}. "
        "Reconnect it from the Connections page (/connections/).",
        retryable=False,
    )


def _request(account: ConnectedAccount, method: str, path: str, **kwargs) -> requests.Response:
    if account.status == ConnectedAccount.Status.NEEDS_REAUTH:
        raise _reauth_error(account, account.status_reason or "it was marked so earlier")
    try:
        token = account.access_token  # deferred by the caller, so a lost key surfaces here
    except UndecryptableValue:
        raise ActionError(services.undecryptable_message(account.login), retryable=False) from None
    response = _send(token, method, path, **kwargs)

    if response.status_code == 401:
        grant = tokens.AccessGrant(account.id, account.provider, account.login, token)
        try:
            token = tokens.refresh_after_401(grant).access_token
        except tokens.ReauthRequired as exc:
            account.refresh_from_db()
            raise _reauth_error(account, exc.reason) from None
        except tokens.ProviderUnavailable as exc:
            raise ActionError(f"GitHub rejected the token and refreshing it failed for now: {exc.reason}",
                              retryable=True) from None
        except tokens.ConnectionNotFound:
            raise ActionError(f"GitHub connection '{account.login}' was disconnected", retryable=False) from None
        except tokens.TokensUndecryptable:
            raise ActionError(services.undecryptable_message(account.login), retryable=False) from None
        account.refresh_from_db()
        response = _send(token, method, path, **kwargs)
        if response.status_code == 401:
            reason = "GitHub rejected the freshly refreshed token (401)"
            services.account_mark_needs_reauth(account_id=account.id, reason=reason)
            account.refresh_from_db()
            raise _reauth_error(account, reason)

    wait = _rate_limit_wait(response)
    if wait is not None and wait <= RATE_LIMIT_MAX_SLEEP:
        time.sleep(wait)
        response = _send(token, method, path, **kwargs)
        wait = _rate_limit_wait(response)
    if wait is not None:
        resets = datetime.fromtimestamp(time.time() + wait, tz=timezone.utc)
        raise ActionError(
            f"GitHub rate limit reached for '{account.login}'; it resets at {resets:%Y-%m-%d %H:%M:%S} UTC "
            f"(in {wait:.0f}s)",
            retryable=True, output={"status": response.status_code, "retry_after": round(wait),
                                    "rate_limit_reset": resets.isoformat()},
        )
    if response.status_code >= 400:
        raise _http_error(account, method, path, response)
    return response


def _rate_limit_wait(response: requests.Response) -> float | None:
    """Seconds until GitHub accepts calls again, or None when the response is not a rate limit."""
    # Reference: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
    if response.status_code not in (403, 429):
        return None
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return RATE_LIMIT_DEFAULT_WAIT
    if response.headers.get("X-RateLimit-Remaining") == "0":
        try:
            return max(0.0, float(response.headers["X-RateLimit-Reset"]) - time.time())
        except (KeyError, ValueError):
            return RATE_LIMIT_DEFAULT_WAIT
    if response.status_code == 429 or "rate limit" in _message(response).lower():
        return RATE_LIMIT_DEFAULT_WAIT
    return None  # a plain 403: no permission


def _message(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(payload, dict):
        return ""
    message = str(payload.get("message") or "")
    details = [e.get("message") or e.get("code") for e in payload.get("errors") or [] if isinstance(e, dict)]
    details = [str(d) for d in details if d]
    return f"{message} ({'; '.join(details)})" if details else message


def _http_error(account: ConnectedAccount, method: str, path: str, response: requests.Response) -> ActionError:
    status = response.status_code
    message = f"GitHub answered {status} to {method} {path}: {_message(response) or response.reason}"
    if status == 404:
        message += f" (the repository does not exist or connection '{account.login}' cannot see it)"
    elif status == 403:
        message += f" (connection '{account.login}' lacks the permission; it has scopes: " \
                   f"{', '.join(account.scopes) or 'none'})"
    return ActionError(message, retryable=status >= 500 or status == 408,
                       output={"status": status, "body": response.text[:2000]})

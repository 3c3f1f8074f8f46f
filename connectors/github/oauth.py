"""GitHub's OAuth2 endpoints used outside the browser flow: token refresh and grant revocation."""
from __future__ import annotations

import requests
from django.conf import settings

from .transport import TIMEOUT, new_session


class GrantRejected(Exception):
    """GitHub refused the grant (refresh token used, expired or revoked): only a new connect flow helps."""


class GitHubUnavailable(Exception):
    """GitHub could not be reached or answered 5xx: trying again later may work."""


def token_url() -> str:
    return f"{settings.GITHUB_OAUTH_URL}/login/oauth/access_token"


def refresh_grant(refresh_token: str) -> dict:
    """Exchange a refresh token for a new access + refresh token pair; the old refresh token stops working."""
    # Reference: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens
    data = {
        "client_id": settings.GITHUB_CLIENT_ID,
        "client_secret": settings.GITHUB_CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    try:
        with new_session() as session:
            response = session.post(token_url(), data=data, headers={"Accept": "application/json"},
                                    timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise GitHubUnavailable(f"token endpoint unreachable: {exc.__class__.__name__}") from exc
    if response.status_code >= 500:
        raise GitHubUnavailable(f"token endpoint answered {response.status_code}")
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    # GitHub answers OAuth errors with 200 and an `error` member, e.g. {"error": "bad_refresh_token"}.
    if response.status_code >= 400 or payload.get("error") or not payload.get("access_token"):
        error = payload.get("error") or f"HTTP {response.status_code}"
        description = payload.get("error_description") or "no access token in the answer"
        raise GrantRejected(f"token refresh refused ({error}: {description})")
    return payload


def revoke_grant(access_token: str) -> bool:
    """Revoke the app's whole grant for this user (all its tokens); True when GitHub confirmed it."""
    # Reference: https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization
    url = f"{settings.GITHUB_API_URL}/applications/{settings.GITHUB_CLIENT_ID}/grant"
    try:
        with new_session() as session:
            response = session.delete(url, json={"access_token": access_token}, timeout=TIMEOUT,
                                      auth=(settings.GITHUB_CLIENT_ID, settings.GITHUB_CLIENT_SECRET),
                                      allow_redirects=False)
    except requests.RequestException:
        return False
    return response.status_code == 204

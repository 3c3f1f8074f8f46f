"""GitHub's OAuth2 endpoint outside the token service: revoking a grant on disconnect. (Refreshes go through
connectors.oauth2, with GitHub as one provider.)"""
from __future__ import annotations

from django.conf import settings

from connectors.base import ActionError

from .transport import send


def revoke_grant(access_token: str) -> bool:
    """Revoke the app's whole grant for this user (all its tokens); True when GitHub confirmed it."""
    # Reference: https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-authorization
    url = f"{settings.GITHUB_API_URL}/applications/{settings.GITHUB_CLIENT_ID}/grant"
    try:
        response = send("DELETE", url, json={"access_token": access_token},
                        auth=(settings.GITHUB_CLIENT_ID, settings.GITHUB_CLIENT_SECRET))
    except ActionError:
        return False
    return response.status_code == 204

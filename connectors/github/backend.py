"""The social-auth backend for connecting (not logging in with) a GitHub account.

Endpoints come from settings at request time (`GITHUB_OAUTH_URL`, `GITHUB_API_URL`), so an operator can point
Flowforge at GitHub Enterprise and tests at a local fake. `ASSOCIATION_ONLY` makes social-auth refuse to start
without a logged-in user, bind the `state` to that user, and never create or log in a user from GitHub's answer.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from social_core.backends.github import GithubOAuth2

# Keys of the token response that must never be stored in clear (UserSocialAuth.extra_data is plain JSON).
TOKEN_KEYS = ("access_token", "refresh_token", "id_token")


class GithubConnectOAuth2(GithubOAuth2):
    name = "github"  # URLs stay /oauth/login/github/ and /oauth/complete/github/
    ASSOCIATION_ONLY = True
    EXTRA_DATA = [
        ("id", "id"),
        ("login", "login"),
        ("expires_in", "expires_in"),
        ("refresh_token_expires_in", "refresh_token_expires_in"),
        ("scope", "scope"),
    ]

    @property
    def AUTHORIZATION_URL(self) -> str:  # noqa: N802 - social-core's attribute name
        return f"{settings.GITHUB_OAUTH_URL}/login/oauth/authorize"

    @property
    def ACCESS_TOKEN_URL(self) -> str:  # noqa: N802
        return f"{settings.GITHUB_OAUTH_URL}/login/oauth/access_token"

    @property
    def REFRESH_TOKEN_URL(self) -> str:  # noqa: N802
        return self.ACCESS_TOKEN_URL

    @property
    def API_URL(self) -> str:  # noqa: N802
        return f"{settings.GITHUB_API_URL}/"

    def get_key_and_secret(self) -> tuple[str, str]:
        # Read at request time (SOCIAL_AUTH_GITHUB_KEY is a copy made when settings were imported).
        return settings.GITHUB_CLIENT_ID, settings.GITHUB_CLIENT_SECRET

    def extra_data(self, user, uid: str, response: dict[str, Any], details: dict[str, Any],
                   pipeline_kwargs: dict[str, Any]) -> dict[str, Any]:
        # social-core always adds access_token here; drop the tokens before load_extra_data writes them to the
        # database. The pipeline step `store_connected_account` keeps them, encrypted, in ConnectedAccount.
        data = super().extra_data(user, uid, response, details, pipeline_kwargs)
        return {key: value for key, value in data.items() if key not in TOKEN_KEYS}

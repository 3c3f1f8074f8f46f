"""Reading providers, and the presets an operator fills in (client id and secret are theirs to add)."""
from __future__ import annotations

from django.conf import settings

from connectors.models import Provider

GITHUB = "github"

# Endpoints and usual scopes, per the providers' documentation. A preset is a starting point in the admin, not
# a provider: it has no client id or secret.
PRESETS: dict[str, dict] = {
    # Reference: https://developers.google.com/identity/protocols/oauth2/web-server
    "google": {
        "title": "Google",
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "userinfo_url": "https://openidconnect.googleapis.com/v1/userinfo",
        "scopes": ["openid", "email", "profile"],
        "pkce": True,
        # A refresh token is only issued for offline access; prompt=consent re-issues it on reconnect.
        "extra_authorize_params": {"access_type": "offline", "prompt": "consent"},
    },
    # Reference: https://api.slack.com/authentication/oauth-v2 (and token rotation for expiring tokens)
    "slack": {
        "title": "Slack",
        "authorize_url": "https://slack.com/oauth/v2/authorize",
        "token_url": "https://slack.com/api/oauth.v2.access",
        "userinfo_url": "https://slack.com/api/auth.test",
        "scopes": ["chat:write", "channels:read"],
        "pkce": False,
        "userinfo_id_field": "user_id",
        "userinfo_login_field": "user",
    },
    # Reference: https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow
    "microsoft": {
        "title": "Microsoft",
        "authorize_url": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "token_url": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "userinfo_url": "https://graph.microsoft.com/v1.0/me",
        "scopes": ["openid", "offline_access", "User.Read"],
        "pkce": True,
        "userinfo_login_field": "userPrincipalName",
    },
    # Reference: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
    "github": {
        "title": "GitHub",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "userinfo_url": "https://api.github.com/user",
        "scopes": ["repo"],
        "pkce": False,
    },
}


def _github_from_settings() -> Provider | None:
    """GitHub as the GITHUB_* settings describe it (read now), for installations without a github row."""
    if not settings.GITHUB_CLIENT_ID:
        return None
    return Provider(
        name=GITHUB, title="GitHub",
        authorize_url=f"{settings.GITHUB_OAUTH_URL}/login/oauth/authorize",
        token_url=f"{settings.GITHUB_OAUTH_URL}/login/oauth/access_token",
        userinfo_url=f"{settings.GITHUB_API_URL}/user",
        scopes=["repo"], client_id=settings.GITHUB_CLIENT_ID, client_secret=settings.GITHUB_CLIENT_SECRET,
        pkce=False,
    )


def provider_get(*, name: str) -> Provider | None:
    """The provider called `name`, or None. GitHub falls back to the GITHUB_* settings while no row exists."""
    provider = Provider.objects.filter(name=name).first()
    if provider is None and name == GITHUB:
        return _github_from_settings()
    return provider


def provider_list() -> list[Provider]:
    """Every provider a user can connect to, GitHub from settings included; secrets not decrypted."""
    providers = list(Provider.objects.defer("client_secret"))
    if not any(p.name == GITHUB for p in providers) and (github := _github_from_settings()) is not None:
        providers.append(github)
    return sorted(providers, key=lambda p: p.name)

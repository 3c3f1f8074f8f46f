"""GitHub's connected accounts through the one token service (connectors.oauth2.tokens); kept as GitHub's names
for the social-auth pipeline and the periodic task."""
from __future__ import annotations

from connectors.oauth2.tokens import (  # noqa: F401 - re-exported
    RefreshReport,
    ReauthRequired,
    account_disconnect,
    account_mark_needs_reauth,
    account_refresh,
    connected_account_store,
    refresh_expiring,
)

PROVIDER = "github"


def undecryptable_message(login: str) -> str:
    return (f"the stored tokens of GitHub connection '{login}' cannot be decrypted with SECRET_KEY or "
            "SECRET_KEY_FALLBACKS; restore the old key in SECRET_KEY_FALLBACKS (or reconnect the account)")

"""Social-auth pipeline steps for the GitHub connect flow (SOCIAL_AUTH_PIPELINE and
SOCIAL_AUTH_DISCONNECT_PIPELINE in settings)."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from social_core.exceptions import AuthAssociationError

from connectors.models import ConnectedAccount

from . import services
from .backend import TOKEN_KEYS


def refuse_taken_account(backend, user, uid: str, *args, **kwargs) -> None:
    """One GitHub account belongs to one Flowforge user; checked before social-auth writes its association."""
    if ConnectedAccount.objects.filter(provider=backend.name, external_id=uid).exclude(user=user).exists():
        raise AuthAssociationError(backend, code="identity_in_use", stage="pipeline")


def store_connected_account(backend, user, response: dict[str, Any], social=None, *args, **kwargs) -> dict:
    """Keep the tokens of the finished exchange in ConnectedAccount (encrypted) and strip them from extra_data.

    Runs after `load_extra_data`; the backend already leaves tokens out of extra_data, and this step removes
    any that another configuration or an older row put there.
    """
    with transaction.atomic():
        account = services.connected_account_store(user=user, provider=backend.name, token_response=response)
        if social is not None and any(key in (social.extra_data or {}) for key in TOKEN_KEYS):
            social.extra_data = {k: v for k, v in social.extra_data.items() if k not in TOKEN_KEYS}
            social.save(update_fields=["extra_data"])
    return {"connected_account": account}


def disconnect_connected_accounts(backend, user, entries, *args, **kwargs) -> None:
    """social-auth's own /oauth/disconnect/github/ view: revoke and delete the matching ConnectedAccounts too
    (social-auth's revoke_tokens step finds no token in extra_data, on purpose)."""
    for entry in entries:
        accounts = ConnectedAccount.objects.filter(user=user, provider=entry.provider, external_id=entry.uid)
        for account in accounts.defer(*ConnectedAccount.TOKEN_FIELDS):
            services.account_disconnect(account=account)

"""Social-auth pipeline steps for the GitHub connect flow (see SOCIAL_AUTH_PIPELINE in settings)."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from . import services
from .backend import TOKEN_KEYS


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

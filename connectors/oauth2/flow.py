"""The authorization-code grant (RFC 6749 §4.1) with `state` and PKCE S256 (RFC 7636): begin and finish.

The pending `state` values live in the user's session (views.py), each bound to its provider, redirect URI and
code verifier, and is spent by the first callback that presents it.
"""
from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

from connectors.models import ConnectedAccount, Provider

from . import client
from .tokens import connected_account_store

STATE_BYTES = 32


@dataclass(frozen=True)
class Pending:
    """What the callback needs to finish one connect flow."""

    provider: str
    redirect_uri: str
    code_verifier: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def connect_begin(*, provider: Provider, redirect_uri: str) -> tuple[str, str, Pending]:
    """(authorize URL, state, what to keep for the callback): a fresh state and, with `pkce`, a verifier."""
    state = secrets.token_urlsafe(STATE_BYTES)
    verifier, challenge = client.pkce_pair() if provider.pkce else (None, None)
    url = client.authorization_url(provider, redirect_uri=redirect_uri, state=state, code_challenge=challenge)
    return url, state, Pending(provider.name, redirect_uri, verifier)


def connect_finish(*, user, provider: Provider, code: str, pending: Pending) -> ConnectedAccount:
    """Exchange the code (with the verifier and client secret), ask who it is, store the tokens for `user`.

    Raises client.GrantRejected, client.ProviderUnavailable or tokens.AccountTaken.
    """
    answer = client.exchange_code(provider, code=code, redirect_uri=pending.redirect_uri,
                                  code_verifier=pending.code_verifier)
    identity = client.fetch_identity(provider, access_token=answer["access_token"])
    return connected_account_store(user=user, provider=provider.name, token_response=answer, identity=identity)

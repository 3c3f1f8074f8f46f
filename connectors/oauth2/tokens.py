"""One token service for every OAuth2 provider: store, pick, refresh (serialised per account), mark, disconnect.

What actions call (names kept stable):

* `bearer_for(owner_id, connection, *, provider=None) -> AccessGrant`: the workflow owner's account named by
  `connection` with an access token refreshed ahead of expiry;
* `refresh_after_401(grant) -> AccessGrant`: after the provider rejected `grant.access_token`, the account's
  next token (refreshed once under a row lock, or the one another worker just got);
* `authorized_request(owner_id, connection, send, *, provider=None, is_rejected=...) -> Response`: both of
  the above around `send(access_token)`: one call, and on a 401 one refresh and one retry.

Every failure is an ActionError (so an action needs no `except`): ConnectionNotFound, ReauthRequired (the
account is marked `needs_reauth` with the reason; the message names the connection to reconnect) and
ProviderUnavailable (retryable; nothing changed) carry the connection's name in their message.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from social_django.models import UserSocialAuth

from connectors.base import ActionError
from connectors.fields import UndecryptableValue
from connectors.models import ConnectedAccount

from . import client
from .client import Identity
from .providers import provider_get

log = logging.getLogger(__name__)

# A token expiring sooner than this is refreshed before it is used, not after the provider refuses it.
REFRESH_AHEAD = timedelta(seconds=60)
RECONNECT_HINT = "Reconnect it from the Connections page (/connections/)."


@dataclass(frozen=True)
class AccessGrant:
    """An account and an access token to send as `Authorization: Bearer <access_token>`."""

    account_id: int
    provider: str
    login: str
    access_token: str

    @property
    def connection(self) -> str:
        return f"{self.provider}:{self.login}"


class ConnectionNotFound(ActionError):
    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class ReauthRequired(ActionError):
    """The connection cannot be used until its owner connects it again; `reason` says why."""

    def __init__(self, connection: str, reason: str):
        super().__init__(f"connection '{connection}' needs re-authorisation: {reason}. {RECONNECT_HINT}",
                         retryable=False)
        self.connection = connection
        self.reason = reason


class ProviderUnavailable(ActionError):
    """The provider could not refresh the token for now; the account is unchanged and another attempt may work."""

    def __init__(self, connection: str, reason: str):
        super().__init__(f"refreshing connection '{connection}' failed for now: {reason}", retryable=True)
        self.connection = connection
        self.reason = reason


class AccountTaken(Exception):
    """The provider account is already connected by another user."""


class TokensUndecryptable(ActionError):
    """An operator lost the key the account's tokens were encrypted with: nothing was sent, spent or marked."""

    def __init__(self, connection: str):
        super().__init__(f"the stored tokens of connection '{connection}' cannot be decrypted with SECRET_KEY or "
                         "SECRET_KEY_FALLBACKS; restore the old key in SECRET_KEY_FALLBACKS (or reconnect the "
                         "account)", retryable=False)
        self.connection = connection


# --- storing ---------------------------------------------------------------------------------------------


def _seconds(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def token_fields(token_response: dict, now: datetime) -> dict:
    """The model fields carried by a token answer (authorization_code or refresh_token grant).

    A refresh answer without a refresh token keeps the old one (RFC 6749 §6: the server MAY issue a new one).
    """
    expires_in = _seconds(token_response.get("expires_in"))
    refresh_expires_in = _seconds(token_response.get("refresh_token_expires_in"))
    fields = {
        "access_token": token_response["access_token"],
        "expires_at": now + timedelta(seconds=expires_in) if expires_in else None,
        "refresh_expires_at": now + timedelta(seconds=refresh_expires_in) if refresh_expires_in else None,
    }
    if token_response.get("refresh_token"):
        fields["refresh_token"] = token_response["refresh_token"]
    if "scope" in token_response:
        scope = token_response.get("scope") or ""
        if isinstance(scope, (list, tuple)):
            scope = " ".join(scope)
        fields["scopes"] = [s for s in str(scope).replace(",", " ").split() if s]
    return fields


def connected_account_store(*, user, provider: str, token_response: dict,
                            identity: Identity | None = None) -> ConnectedAccount:
    """Create or update `user`'s account from a finished code exchange; it is usable again.

    `identity` comes from the provider's userinfo (the GitHub social-auth pipeline puts `id` and `login` in
    the token answer instead). Raises AccountTaken when another user already connected that provider account.
    """
    if identity is None:
        identity = Identity(str(token_response["id"]), str(token_response["login"]))
    fields = token_fields(token_response, timezone.now())
    fields.setdefault("refresh_token", None)
    fields.update(user=user, login=identity.login, status=ConnectedAccount.Status.OK, status_reason="")
    with transaction.atomic():
        taken = ConnectedAccount.objects.select_for_update().filter(
            provider=provider, external_id=identity.external_id).exclude(user=user)
        if taken.exists():
            raise AccountTaken(f"this {provider} account is already connected by another user")
        account, _ = ConnectedAccount.objects.update_or_create(
            provider=provider, external_id=identity.external_id, defaults=fields)
    return account


def account_mark_needs_reauth(*, account_id: int, reason: str) -> None:
    ConnectedAccount.objects.filter(id=account_id).update(
        status=ConnectedAccount.Status.NEEDS_REAUTH, status_reason=reason[:500], updated_at=timezone.now()
    )


# --- refreshing ------------------------------------------------------------------------------------------


def account_refresh(*, account_id: int, stale_access_token: str | None = None,
                    expiring_before: datetime | None = None) -> ConnectedAccount:
    """Refresh the token pair under a row lock, so one account is refreshed by one worker at a time.

    Refresh tokens may be single-use, so a worker that waited for the lock must not refresh again with a token
    another worker just spent: with `stale_access_token` (the token a call was rejected with) the refresh is
    skipped when the stored token is already a different one; with `expiring_before` (proactive refresh) it is
    skipped when the token no longer expires that soon. Raises ReauthRequired (and marks the account) when the
    provider refuses the grant; ProviderUnavailable when it could not be asked (nothing changes);
    UndecryptableValue, from loading the row, when an operator lost the key (nothing is spent or marked);
    ConnectedAccount.DoesNotExist when it was disconnected meanwhile.
    """
    failure = None
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().get(id=account_id)
        name = str(account)
        if account.status == ConnectedAccount.Status.NEEDS_REAUTH:
            raise ReauthRequired(name, account.status_reason or "it was marked so earlier")
        if stale_access_token is not None and account.access_token != stale_access_token:
            return account  # another worker refreshed while this one waited for the lock
        if expiring_before is not None and (account.expires_at is None or account.expires_at > expiring_before):
            return account
        provider = provider_get(name=account.provider)
        if provider is None:
            raise ActionError(f"connection '{name}': provider '{account.provider}' is not configured any more; "
                              "an administrator must add it back", retryable=False)
        if not account.refresh_token and expiring_before is not None and account.expires_at > timezone.now():
            return account  # nothing to refresh with; the token still works until it expires
        if not account.refresh_token:
            failure = "the token was rejected or expired and there is no refresh token"
        else:
            try:
                answer = client.refresh_grant(provider, refresh_token=account.refresh_token)
            except client.GrantRejected as exc:
                failure = str(exc)
            except client.ProviderUnavailable as exc:
                raise ProviderUnavailable(name, str(exc)) from None
            else:
                for field, value in token_fields(answer, timezone.now()).items():
                    setattr(account, field, value)
                account.status_reason = ""
                account.save()
        if failure:
            # Inside the transaction that holds the lock, and committed: the raise below happens after it.
            account_mark_needs_reauth(account_id=account.id, reason=failure)
    if failure:
        log.warning("connection %s (%s) needs re-authorisation: %s", account.id, name, failure)
        raise ReauthRequired(name, failure)
    return account


@dataclass
class RefreshReport:
    refreshed: int = 0
    needs_reauth: int = 0
    unavailable: int = 0


def refresh_expiring(*, within: timedelta = timedelta(minutes=10)) -> RefreshReport:
    """Refresh every usable account whose access token expires within `within` (the periodic task)."""
    deadline = timezone.now() + within
    ids = list(
        ConnectedAccount.objects.filter(
            status=ConnectedAccount.Status.OK, refresh_token__isnull=False,
            expires_at__isnull=False, expires_at__lte=deadline,
        ).values_list("id", flat=True)
    )
    report = RefreshReport()
    for account_id in ids:
        try:
            account_refresh(account_id=account_id, expiring_before=deadline)
        except ReauthRequired:
            report.needs_reauth += 1
        except (UndecryptableValue, ActionError) as exc:
            log.warning("connection %s not refreshed, will try again: %s", account_id, exc)
            report.unavailable += 1
        except ConnectedAccount.DoesNotExist:
            continue  # disconnected meanwhile
        else:
            report.refreshed += 1
    return report


# --- using -----------------------------------------------------------------------------------------------


def _split(connection: str, provider: str | None) -> tuple[str, str | None]:
    """("<provider>", login or None) from "<provider>", "<provider>:<login>", or (given `provider`) "<login>"."""
    connection = (connection or "").strip()
    if ":" in connection:
        named, _, login = connection.partition(":")
        named, login = named.strip(), login.strip()
        if provider is not None and named != provider:
            raise ConnectionNotFound(f"connection '{connection}' is not a {provider} connection")
        return named, login or None
    if provider is None:
        if not connection:
            raise ConnectionNotFound("connection is empty: name a provider, as '<provider>' or '<provider>:<login>'")
        return connection, None
    return provider, (connection if connection and connection != provider else None)


def account_for(owner_id: int | None, connection: str, *, provider: str | None = None) -> ConnectedAccount:
    """The workflow owner's account named by `connection` (tokens deferred). Other users' accounts are never
    candidates, whatever the name says."""
    if owner_id is None:
        raise ConnectionNotFound("connections need the workflow to have an owner; set the workflow's owner")
    name, login = _split(connection, provider)
    accounts = list(ConnectedAccount.objects.filter(user_id=owner_id, provider=name)
                    .defer(*ConnectedAccount.TOKEN_FIELDS))
    if login is not None:
        accounts = [a for a in accounts if a.login.lower() == login.lower()]
        if not accounts:
            raise ConnectionNotFound(f"the workflow's owner has no connection '{name}:{login}': connect that "
                                     "account from the Connections page (/connections/), or fix `connection`")
    elif not accounts:
        raise ConnectionNotFound(f"the workflow's owner has no connected {name} account: connect one from the "
                                 "Connections page (/connections/)")
    elif len(accounts) > 1:
        logins = ", ".join(sorted(f"{name}:{a.login}" for a in accounts))
        raise ConnectionNotFound(f"the workflow's owner has several {name} connections ({logins}): name one "
                                 "as '<provider>:<login>' in `connection`")
    return accounts[0]


def _grant(account: ConnectedAccount) -> AccessGrant:
    try:
        token = account.access_token
    except UndecryptableValue:
        raise TokensUndecryptable(str(account)) from None
    return AccessGrant(account.id, account.provider, account.login, token)


def _load(account_id: int, name: str) -> ConnectedAccount:
    try:
        return ConnectedAccount.objects.get(id=account_id)
    except UndecryptableValue:
        raise TokensUndecryptable(name) from None
    except ConnectedAccount.DoesNotExist:
        raise ConnectionNotFound(f"connection '{name}' was disconnected") from None


def bearer_for(owner_id: int | None, connection: str, *, provider: str | None = None) -> AccessGrant:
    """The owner's account named by `connection` ("<provider>", "<provider>:<login>", or a login when
    `provider` is given) with its access token, refreshed first when it expires within REFRESH_AHEAD."""
    account = account_for(owner_id, connection, provider=provider)
    if account.status == ConnectedAccount.Status.NEEDS_REAUTH:
        raise ReauthRequired(str(account), account.status_reason or "it was marked so earlier")
    soon = timezone.now() + REFRESH_AHEAD
    if account.expires_at is not None and account.expires_at <= soon:
        try:
            account = account_refresh(account_id=account.id, expiring_before=soon)
        except UndecryptableValue:
            raise TokensUndecryptable(str(account)) from None
        except ConnectedAccount.DoesNotExist:
            raise ConnectionNotFound(f"connection '{account}' was disconnected") from None
        except ProviderUnavailable:
            if account.expires_at <= timezone.now():
                raise
            log.warning("connection %s: refresh ahead of expiry failed; using the current token", account)
            account = _load(account.id, str(account))
    return _grant(account)


def refresh_after_401(grant: AccessGrant) -> AccessGrant:
    """The next token after the provider rejected `grant.access_token`: refreshed once under the row lock, or
    the one another worker got meanwhile. Raises ReauthRequired (account marked) or ProviderUnavailable."""
    try:
        account = account_refresh(account_id=grant.account_id, stale_access_token=grant.access_token)
    except UndecryptableValue:
        raise TokensUndecryptable(grant.connection) from None
    except ConnectedAccount.DoesNotExist:
        raise ConnectionNotFound(f"connection '{grant.connection}' was disconnected") from None
    return _grant(account)


def _unauthorized(response: Any) -> bool:
    return getattr(response, "status_code", None) == 401


def authorized_request(owner_id: int | None, connection: str, send: Callable[[str], Any], *,
                       provider: str | None = None,
                       is_rejected: Callable[[Any], bool] = _unauthorized) -> Any:
    """`send(access_token)` for the owner's account named by `connection`; when `is_rejected(response)` (by
    default: a 401), refresh once and `send` once more with the new token, returning that answer whatever it
    is. Raises ConnectionNotFound, ReauthRequired (the account is marked needs_reauth) or ProviderUnavailable.
    """
    grant = bearer_for(owner_id, connection, provider=provider)
    response = send(grant.access_token)
    if not is_rejected(response):
        return response
    return send(refresh_after_401(grant).access_token)


# --- disconnecting ---------------------------------------------------------------------------------------


# Providers whose grant can be revoked when an account is disconnected: name -> dotted path of a function
# taking the access token and returning True when the provider confirmed.
REVOKERS = {"github": "connectors.github.oauth.revoke_grant"}


def account_disconnect(*, account: ConnectedAccount) -> bool:
    """Revoke the grant where the provider supports it (best effort) and delete the account; True when the
    provider confirmed the revocation."""
    revoked = False
    if account.provider in REVOKERS:
        try:
            revoked = import_string(REVOKERS[account.provider])(account.access_token)
        except UndecryptableValue:
            revoked = False  # an account whose key was lost can still be removed, just not revoked
        if not revoked:
            log.warning("%s did not confirm revoking connection %s (%s); deleting it anyway",
                        account.provider, account.id, account.login)
    with transaction.atomic():
        UserSocialAuth.objects.filter(user_id=account.user_id, provider=account.provider,
                                      uid=account.external_id).delete()
        account.delete()
    return revoked

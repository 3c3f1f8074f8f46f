"""Writes on connected GitHub accounts: store after the connect flow, refresh (serialised), mark, disconnect."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from connectors.fields import UndecryptableValue
from connectors.models import ConnectedAccount

from . import oauth

log = logging.getLogger(__name__)

PROVIDER = "github"


class ReauthRequired(Exception):
    """The connection cannot be used until its owner connects it again; the message says why."""


def undecryptable_message(login: str) -> str:
    return (f"the stored tokens of GitHub connection '{login}' cannot be decrypted with SECRET_KEY or "
            "SECRET_KEY_FALLBACKS; restore the old key in SECRET_KEY_FALLBACKS (or reconnect the account)")


def _seconds(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _token_fields(token_response: dict, now: datetime) -> dict:
    """The model fields carried by a token answer (authorization_code or refresh_token grant)."""
    expires_in = _seconds(token_response.get("expires_in"))
    refresh_expires_in = _seconds(token_response.get("refresh_token_expires_in"))
    fields = {
        "access_token": token_response["access_token"],
        "refresh_token": token_response.get("refresh_token") or None,
        "expires_at": now + timedelta(seconds=expires_in) if expires_in else None,
        "refresh_expires_at": now + timedelta(seconds=refresh_expires_in) if refresh_expires_in else None,
    }
    if "scope" in token_response:
        scope = token_response.get("scope") or ""
        fields["scopes"] = [s for s in scope.replace(",", " ").split() if s]
    return fields


def connected_account_store(*, user, provider: str, token_response: dict) -> ConnectedAccount:
    """Create or update the account from the connect flow's token + /user answer; it is usable again."""
    fields = _token_fields(token_response, timezone.now())
    fields.update(user=user, login=token_response["login"], status=ConnectedAccount.Status.OK, status_reason="")
    account, _ = ConnectedAccount.objects.update_or_create(
        provider=provider, external_id=str(token_response["id"]), defaults=fields
    )
    return account


def account_mark_needs_reauth(*, account_id: int, reason: str) -> None:
    ConnectedAccount.objects.filter(id=account_id).update(
        status=ConnectedAccount.Status.NEEDS_REAUTH, status_reason=reason[:500], updated_at=timezone.now()
    )


def account_refresh(*, account_id: int, stale_access_token: str | None = None,
                    expiring_before: datetime | None = None) -> ConnectedAccount:
    """Refresh the token pair under a row lock, so one connection is refreshed by one worker at a time.

    GitHub refresh tokens are single-use, so a worker that waited for the lock must not refresh again with a
    token another worker just spent: with `stale_access_token` (the token a call was rejected with) the refresh
    is skipped when the stored token is already a different one; with `expiring_before` (proactive refresh) it
    is skipped when the token no longer expires that soon. Raises ReauthRequired (and marks the connection)
    when GitHub refuses the grant; oauth.GitHubUnavailable when GitHub could not be asked (nothing changes);
    UndecryptableValue, from loading the row, when an operator lost the key (nothing is spent or marked).
    """
    failure = None
    with transaction.atomic():
        account = ConnectedAccount.objects.select_for_update().get(id=account_id)
        if account.status == ConnectedAccount.Status.NEEDS_REAUTH:
            raise ReauthRequired(account.status_reason or "the connection was marked as needing re-authorisation")
        if stale_access_token is not None and account.access_token != stale_access_token:
            return account  # another worker refreshed while this one waited for the lock
        if expiring_before is not None and (account.expires_at is None or account.expires_at > expiring_before):
            return account
        if not account.refresh_token:
            failure = "the token was rejected and there is no refresh token"
        else:
            try:
                answer = oauth.refresh_grant(account.refresh_token)
            except oauth.GrantRejected as exc:
                failure = str(exc)
            else:
                for name, value in _token_fields(answer, timezone.now()).items():
                    setattr(account, name, value)
                account.status_reason = ""
                account.save()
        if failure:
            # Inside the transaction that holds the lock, and committed: the raise below happens after it.
            account_mark_needs_reauth(account_id=account.id, reason=failure)
    if failure:
        log.warning("GitHub connection %s (%s) needs re-authorisation: %s", account.id, account.login, failure)
        raise ReauthRequired(failure)
    return account


@dataclass
class RefreshReport:
    refreshed: int = 0
    needs_reauth: int = 0
    unavailable: int = 0


def refresh_expiring(*, within: timedelta = timedelta(minutes=10)) -> RefreshReport:
    """Refresh every usable connection whose access token expires within `within` (the periodic task)."""
    deadline = timezone.now() + within
    ids = list(
        ConnectedAccount.objects.filter(
            provider=PROVIDER, status=ConnectedAccount.Status.OK, refresh_token__isnull=False,
            expires_at__isnull=False, expires_at__lte=deadline,
        ).values_list("id", flat=True)
    )
    report = RefreshReport()
    for account_id in ids:
        try:
            account_refresh(account_id=account_id, expiring_before=deadline)
        except ReauthRequired:
            report.needs_reauth += 1
        except UndecryptableValue as exc:
            log.error("GitHub connection %s not refreshed: %s", account_id, exc)
            report.unavailable += 1
        except oauth.GitHubUnavailable as exc:
            log.warning("GitHub connection %s not refreshed, will try again: %s", account_id, exc)
            report.unavailable += 1
        except ConnectedAccount.DoesNotExist:
            continue  # disconnected meanwhile
        else:
            report.refreshed += 1
    return report


def account_disconnect(*, account: ConnectedAccount) -> bool:
    """Revoke the grant at GitHub (best effort) and delete the connection; True when GitHub confirmed."""
    from social_django.models import UserSocialAuth

    try:
        revoked = oauth.revoke_grant(account.access_token)
    except UndecryptableValue:
        revoked = False  # a connection whose key was lost can still be removed, just not revoked at GitHub
    if not revoked:
        log.warning("GitHub did not confirm revoking connection %s (%s); deleting it anyway", account.id, account.login)
    with transaction.atomic():
        UserSocialAuth.objects.filter(user_id=account.user_id, provider=account.provider,
                                      uid=account.external_id).delete()
        account.delete()
    return revoked

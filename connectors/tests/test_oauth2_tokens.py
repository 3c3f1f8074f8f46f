"""The one token service against the fake OAuth2 provider over real HTTP: the owner's account is picked by
`connection`, a rejected token is refreshed once and the call retried once, concurrent callers spend a
single-use refresh token once, a refused refresh marks the account, and other users' accounts are never used."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from connectors.models import ConnectedAccount
from connectors.net import safe_request
from connectors.oauth2 import tokens
from connectors.tests.fake_oauth2 import fake_oauth2, fake_provider, store_fake_account  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw")


def _caller(fake_oauth2, path="/api/me"):
    def send(access_token: str):
        return safe_request("GET", fake_oauth2.url + path, headers={"Authorization": f"Bearer {access_token}"},
                            allow_private=False, allowed_networks=["127.0.0.1/32"], timeout=10)
    return send


def test_authorized_request_sends_the_owners_bearer_token(fake_oauth2, store_fake_account, alice):
    account = store_fake_account(alice)

    response = tokens.authorized_request(alice.id, "fake", _caller(fake_oauth2))

    assert response.status_code == 200 and response.json()["user"] == "alice-at-fake"
    assert fake_oauth2.api_calls == [("/api/me", account.access_token, 200)]
    assert fake_oauth2.refreshes == 0


def test_an_expired_token_is_refreshed_once_and_the_call_retried_once(fake_oauth2, store_fake_account, alice):
    account = store_fake_account(alice)
    old_access = account.access_token
    fake_oauth2.expire_access_tokens()

    response = tokens.authorized_request(alice.id, "fake:alice-at-fake", _caller(fake_oauth2))

    assert response.status_code == 200
    assert fake_oauth2.refreshes == 1
    assert [status for _, _, status in fake_oauth2.api_calls] == [401, 200]
    stored = ConnectedAccount.objects.get(id=account.id)
    assert stored.access_token != old_access and fake_oauth2.valid_access_token(stored.access_token)


def test_a_token_expiring_within_a_minute_is_refreshed_before_it_is_used(fake_oauth2, store_fake_account, alice):
    account = store_fake_account(alice)
    ConnectedAccount.objects.filter(id=account.id).update(expires_at=timezone.now() + timedelta(seconds=20))

    grant = tokens.bearer_for(alice.id, "fake")

    assert fake_oauth2.refreshes == 1 and grant.access_token != account.access_token
    assert grant.connection == "fake:alice-at-fake"


def test_a_revoked_refresh_token_marks_the_account_and_names_the_connection(fake_oauth2, store_fake_account, alice):
    account = store_fake_account(alice)
    fake_oauth2.expire_access_tokens()
    fake_oauth2.revoke_refresh_tokens()

    with pytest.raises(tokens.ReauthRequired) as failure:
        tokens.authorized_request(alice.id, "fake", _caller(fake_oauth2))

    assert not failure.value.retryable
    assert str(failure.value).startswith("connection 'fake:alice-at-fake' needs re-authorisation: token refresh "
                                         "refused (invalid_grant")
    assert "/connections/" in str(failure.value)
    stored = ConnectedAccount.objects.get(id=account.id)
    assert stored.status == ConnectedAccount.Status.NEEDS_REAUTH and "invalid_grant" in stored.status_reason
    calls = len(fake_oauth2.api_calls)
    with pytest.raises(tokens.ReauthRequired):
        tokens.authorized_request(alice.id, "fake", _caller(fake_oauth2))
    assert len(fake_oauth2.api_calls) == calls  # a connection known to be broken is not tried again


def test_another_users_account_is_never_picked(fake_oauth2, store_fake_account, alice, bob):
    store_fake_account(bob, login="bob-at-fake")

    with pytest.raises(tokens.ConnectionNotFound, match="no connected fake account"):
        tokens.bearer_for(alice.id, "fake")
    with pytest.raises(tokens.ConnectionNotFound, match="no connection 'fake:bob-at-fake'"):
        tokens.bearer_for(alice.id, "fake:bob-at-fake")
    assert fake_oauth2.api_calls == [] and fake_oauth2.refreshes == 0


def test_a_connection_of_another_provider_is_refused_when_the_provider_is_given(store_fake_account, alice):
    store_fake_account(alice)

    with pytest.raises(tokens.ConnectionNotFound, match="is not a slack connection"):
        tokens.bearer_for(alice.id, "fake:alice-at-fake", provider="slack")
    assert tokens.bearer_for(alice.id, "alice-at-fake", provider="fake").login == "alice-at-fake"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_callers_on_one_expired_token_cause_exactly_one_refresh(
        fake_oauth2, store_fake_account, alice):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    store_fake_account(alice)
    fake_oauth2.expire_access_tokens()
    fake_oauth2.refresh_delay = 0.3  # the others reach the lock while the first one refreshes
    statuses, errors = [], []

    def worker():
        try:
            statuses.append(tokens.authorized_request(alice.id, "fake", _caller(fake_oauth2)).status_code)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == [] and statuses == [200] * 20
    assert fake_oauth2.refreshes == 1

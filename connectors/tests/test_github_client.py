"""The GitHub client against the fake GitHub over real HTTP: auth header, refresh on 401, needs_reauth, rate
limits, error messages, concurrent refreshes, proactive refresh and key rotation."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.utils import timezone

from connectors.base import ActionError
from connectors.github import client, services
from connectors.models import ConnectedAccount
from connectors.tests.fake_github import connect_account, fake_github, github_user  # noqa: F401

pytestmark = pytest.mark.django_db


def _fresh(account):
    # As the github.* actions load it: tokens deferred, decrypted when the client sends them.
    return ConnectedAccount.objects.defer(*ConnectedAccount.TOKEN_FIELDS).get(id=account.id)


def test_create_issue_sends_the_bearer_token_and_returns_githubs_issue(fake_github, connect_account, github_user):
    account = connect_account(github_user)

    issue = client.create_issue(account, "octo/hello", "Broken", "It broke", ["bug"])

    assert issue["number"] == 1 and issue["html_url"] == "https://github.com/octo/hello/issues/1"
    assert fake_github.issues[0]["labels"] == [{"name": "bug"}]
    method, path, headers = fake_github.requests[-1]
    assert (method, path) == ("POST", "/repos/octo/hello/issues")
    assert headers["Authorization"] == f"Bearer {account.access_token}"


def test_add_comment_and_star_repo_call_their_endpoints(fake_github, connect_account, github_user):
    account = connect_account(github_user)

    comment = client.add_comment(account, "octo/hello", 7, "+1")
    client.star_repo(account, "octo/hello")

    assert comment["html_url"].startswith("https://github.com/octo/hello/issues/7#issuecomment-")
    assert ("octocat", "octo/hello") in fake_github.stars
    assert fake_github.paths()[-2:] == ["/repos/octo/hello/issues/7/comments", "/user/starred/octo/hello"]


def test_an_expired_token_is_refreshed_once_and_the_call_retried(fake_github, connect_account, github_user):
    account = connect_account(github_user)
    old_access, old_refresh = account.access_token, account.refresh_token
    fake_github.expire_access_tokens()

    issue = client.create_issue(account, "octo/hello", "After refresh")

    assert issue["number"] == 1
    assert fake_github.refresh_grants == 1
    assert fake_github.paths("POST") == ["/repos/octo/hello/issues", "/login/oauth/access_token",
                                         "/repos/octo/hello/issues"]
    stored = _fresh(account)
    assert stored.access_token != old_access and fake_github.valid_access_token(stored.access_token)
    assert stored.refresh_token != old_refresh and fake_github.valid_refresh_token(stored.refresh_token)
    assert stored.expires_at > timezone.now() + timedelta(hours=7)
    assert account.access_token == stored.access_token  # the caller's object is current too


def test_a_revoked_refresh_token_fails_clearly_and_marks_the_connection(fake_github, connect_account, github_user):
    account = connect_account(github_user)
    fake_github.expire_access_tokens()
    fake_github.revoke_refresh_tokens()

    with pytest.raises(ActionError) as failure:
        client.create_issue(account, "octo/hello", "Never")

    assert not failure.value.retryable
    assert str(failure.value).startswith("GitHub connection 'octocat' needs re-authorisation: token refresh refused "
                                         "(bad_refresh_token")
    stored = _fresh(account)
    assert stored.status == ConnectedAccount.Status.NEEDS_REAUTH
    assert "bad_refresh_token" in stored.status_reason
    calls = len(fake_github.requests)
    with pytest.raises(ActionError, match="needs re-authorisation"):
        client.create_issue(stored, "octo/hello", "Still never")
    assert len(fake_github.requests) == calls  # a connection known to be broken is not tried again


def test_a_second_401_after_refreshing_marks_the_connection(fake_github, connect_account, github_user):
    account = connect_account(github_user)
    fake_github.api_rejects_tokens = True

    with pytest.raises(ActionError, match="needs re-authorisation: GitHub rejected the freshly refreshed token") as e:
        client.star_repo(account, "octo/hello")

    assert not e.value.retryable
    assert fake_github.refresh_grants == 1
    assert _fresh(account).status == ConnectedAccount.Status.NEEDS_REAUTH


def test_an_unreachable_token_endpoint_is_retryable_and_leaves_the_connection_usable(
        fake_github, connect_account, github_user, settings):
    account = connect_account(github_user)
    fake_github.expire_access_tokens()
    settings.GITHUB_OAUTH_URL = "http://127.0.0.1:9"  # discard port: connection refused

    with pytest.raises(ActionError, match="refreshing it failed for now") as failure:
        client.create_issue(account, "octo/hello", "Later")

    assert failure.value.retryable
    assert _fresh(account).status == ConnectedAccount.Status.OK


def test_a_rate_limit_resetting_later_is_a_retryable_error_saying_when(fake_github, connect_account, github_user):
    account = connect_account(github_user)
    fake_github.rate_limits.append(("403", 600))

    with pytest.raises(ActionError) as failure:
        client.create_issue(account, "octo/hello", "Limited")

    assert failure.value.retryable
    assert "GitHub rate limit reached for 'octocat'; it resets at " in str(failure.value)
    assert 590 <= failure.value.output["retry_after"] <= 601
    assert fake_github.issues == []


def test_a_secondary_rate_limit_uses_retry_after(fake_github, connect_account, github_user):
    account = connect_account(github_user)
    fake_github.rate_limits.append(("429", 120))

    with pytest.raises(ActionError, match=r"\(in 120s\)") as failure:
        client.star_repo(account, "octo/hello")

    assert failure.value.retryable and failure.value.output["status"] == 429


def test_a_rate_limit_resetting_within_seconds_is_waited_out_once(fake_github, connect_account, github_user,
                                                                  monkeypatch):
    account = connect_account(github_user)
    fake_github.rate_limits.append(("429", 2))
    slept = []
    monkeypatch.setattr(client.time, "sleep", slept.append)

    issue = client.create_issue(account, "octo/hello", "Patient")

    assert issue["number"] == 1 and slept == [2.0]


def test_not_found_and_validation_errors_are_not_retryable_and_say_why(fake_github, connect_account, github_user):
    account = connect_account(github_user)

    with pytest.raises(ActionError) as not_found:
        client.create_issue(account, "octo/missing", "Where")
    with pytest.raises(ActionError) as invalid:
        client.create_issue(account, "octo/hello", "")

    assert not not_found.value.retryable and "cannot see it" in str(not_found.value)
    assert "GitHub answered 404 to POST /repos/octo/missing/issues" in str(not_found.value)
    assert not invalid.value.retryable
    assert "422" in str(invalid.value) and "Validation Failed (missing_field)" in str(invalid.value)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_spend_the_refresh_token_once_and_keep_consistent_tokens(
        fake_github, connect_account, github_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    account = connect_account(github_user)
    fake_github.expire_access_tokens()
    fake_github.refresh_delay = 0.5  # the second worker reaches the lock while the first is refreshing
    results, errors = [], []

    def worker(n):
        try:
            own = ConnectedAccount.objects.get(id=account.id)  # each worker loaded the old token
            results.append(client.create_issue(own, "octo/hello", f"from worker {n}")["number"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == [] and sorted(results) == [1, 2, 3]
    assert fake_github.refresh_grants == 1
    stored = _fresh(account)
    assert stored.status == ConnectedAccount.Status.OK
    assert fake_github.valid_access_token(stored.access_token)
    assert fake_github.valid_refresh_token(stored.refresh_token)


def test_proactive_refresh_renews_tokens_expiring_soon_and_marks_dead_ones(
        fake_github, connect_account, github_user, django_user_model):
    soon = connect_account(github_user)
    later = connect_account(django_user_model.objects.create_user("bob"), login="hubot")
    dead = connect_account(django_user_model.objects.create_user("carol"), login="monalisa")
    ConnectedAccount.objects.filter(id__in=[soon.id, dead.id]).update(expires_at=timezone.now() + timedelta(minutes=5))
    fake_github.refresh_tokens[dead.refresh_token].revoked = True

    from connectors.tasks import refresh_tokens

    report = refresh_tokens()

    assert report == {"refreshed": 1, "needs_reauth": 1, "unavailable": 0}
    assert _fresh(soon).access_token != soon.access_token
    assert _fresh(soon).expires_at > timezone.now() + timedelta(hours=7)
    assert _fresh(later).access_token == later.access_token
    assert _fresh(dead).status == ConnectedAccount.Status.NEEDS_REAUTH
    assert fake_github.refresh_grants == 2


# --- key rotation ----------------------------------------------------------------------------------------------

def _token_fields():
    return [ConnectedAccount._meta.get_field("access_token"), ConnectedAccount._meta.get_field("refresh_token")]


@pytest.fixture
def rekey(settings):
    """Change SECRET_KEY / SECRET_KEY_FALLBACKS as a restart would: the fields cache their Fernet keys."""

    def forget_keys():
        for field in _token_fields():
            field.__dict__.pop("keys", None)
            field.__dict__.pop("f", None)

    def apply(secret_key, fallbacks=()):
        settings.SECRET_KEY = secret_key
        settings.SECRET_KEY_FALLBACKS = list(fallbacks)
        forget_keys()

    yield apply
    forget_keys()  # settings are restored after this fixture; the next read derives keys from them again


def _raw_tokens(account_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM connectors_connectedaccount WHERE id = %s",
                       [account_id])
        return cursor.fetchone()


def test_tokens_written_under_the_old_key_decrypt_with_it_as_fallback_and_re_encrypt_on_save(
        fake_github, connect_account, github_user, rekey):
    rekey("old-secret-key-" + "o" * 40)
    account = connect_account(github_user)
    plain_access = account.access_token
    old_raw = _raw_tokens(account.id)

    rekey("new-secret-key-" + "n" * 40, fallbacks=["old-secret-key-" + "o" * 40])
    reloaded = _fresh(account)
    assert reloaded.access_token == plain_access
    reloaded.save()

    new_raw = _raw_tokens(account.id)
    assert new_raw[0] != old_raw[0]
    only_new_key = Fernet(_token_fields()[0].keys[0])  # keys[0] is derived from SECRET_KEY
    assert only_new_key.decrypt(new_raw[0].encode()).decode() == plain_access
    rekey("new-secret-key-" + "n" * 40)  # the old key can now be dropped
    assert _fresh(account).access_token == plain_access


def test_a_token_under_a_lost_key_fails_clearly_without_calling_github_or_marking_the_connection(
        fake_github, connect_account, github_user, rekey):
    rekey("old-secret-key-" + "o" * 40)
    account = connect_account(github_user)
    rekey("new-secret-key-" + "n" * 40)  # no fallback: nothing decrypts the tokens any more
    calls = len(fake_github.requests)

    with pytest.raises(ActionError, match="cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS") as e:
        client.create_issue(_fresh(account), "octo/hello", "Nope")

    assert not e.value.retryable
    assert len(fake_github.requests) == calls
    assert _fresh(account).status == ConnectedAccount.Status.OK

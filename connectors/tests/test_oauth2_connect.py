"""Connecting an account at any OAuth2 provider through the real views (SPEC §12): Django's live server, the fake
provider on 127.0.0.1, and a requests session following the redirects between them like a browser."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client

from connectors.models import ConnectedAccount
from connectors.oauth2 import client as oauth2_client
from connectors.tests.fake_oauth2 import (  # noqa: F401
    CLIENT_ID, fake_oauth2, fake_provider, s256, store_fake_account,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="a-long-test-password")


def browser_for(live_server, user) -> requests.Session:
    """A requests session logged in as `user` (the session cookie of Django's test client)."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    session.base = live_server.url
    return session


@pytest.fixture
def browser(live_server, alice, fake_provider):
    session = browser_for(live_server, alice)
    yield session
    session.close()


def _csrf(browser) -> str:
    page = browser.get(browser.base + "/connections/", timeout=10)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def connect(browser, provider: str = "fake", **kwargs) -> requests.Response:
    return browser.post(f"{browser.base}/connections/{provider}/connect/",
                        data={"csrfmiddlewaretoken": _csrf(browser)}, timeout=10, **kwargs)


def test_connecting_sends_state_and_an_s256_challenge_and_stores_the_tokens_encrypted(
        browser, fake_oauth2, alice):
    response = connect(browser)

    assert response.status_code == 200 and response.url == browser.base + "/connections/"
    assert [r.status_code for r in response.history] == [302, 302, 302]  # → provider → callback → /connections/
    assert "Connected Fake account alice-at-fake" in response.text and "fake:alice-at-fake" in response.text
    query = fake_oauth2.authorize_queries[0]
    assert query["client_id"] == CLIENT_ID and query["scope"] == "read write" and len(query["state"]) >= 32
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == browser.base + "/connections/fake/callback/"
    assert fake_oauth2.token_requests == [("authorization_code", 200)]  # secret and verifier were accepted

    account = ConnectedAccount.objects.get(user=alice)
    assert (account.provider, account.login, account.external_id) == ("fake", "alice-at-fake", "7001")
    assert account.scopes == ["read", "write"] and account.expires_at is not None
    assert fake_oauth2.valid_access_token(account.access_token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM connectors_connectedaccount")
        raw_access, raw_refresh = cursor.fetchone()
    assert account.access_token not in raw_access and account.refresh_token not in raw_refresh


def test_a_forged_state_is_refused_and_a_state_works_only_once(browser, fake_oauth2):
    to_provider = connect(browser, allow_redirects=False)
    assert to_provider.status_code == 302
    back = requests.get(to_provider.headers["Location"], allow_redirects=False, timeout=10)
    callback = urlsplit(back.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    forged = {**params, "state": "forged" + params["state"][6:]}

    refused = browser.get(f"{browser.base}{callback.path}?{urlencode(forged)}", allow_redirects=False, timeout=10)
    assert refused.status_code == 403 and fake_oauth2.token_requests == []  # the code was never exchanged

    # The forged attempt did not spend the real state; the real callback works once, and only once.
    first = browser.get(f"{browser.base}{callback.path}?{urlencode(params)}", allow_redirects=False, timeout=10)
    replayed = browser.get(f"{browser.base}{callback.path}?{urlencode(params)}", allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"] == "/connections/"
    assert replayed.status_code == 403
    assert fake_oauth2.token_requests == [("authorization_code", 200)]
    assert ConnectedAccount.objects.count() == 1


def test_a_wrong_client_secret_fails_the_connection_with_the_providers_error(browser, fake_oauth2, fake_provider):
    fake_provider.client_secret = "not-the-secret"
    fake_provider.save()

    response = connect(browser)

    assert response.url == browser.base + "/connections/"
    assert "Connecting Fake failed: code exchange refused (invalid_client" in response.text
    assert not ConnectedAccount.objects.exists()


def test_the_provider_refuses_a_code_exchanged_with_the_wrong_pkce_verifier(fake_oauth2, fake_provider):
    verifier, challenge = oauth2_client.pkce_pair()
    assert challenge == s256(verifier)
    location = requests.get(oauth2_client.authorization_url(
        fake_provider, redirect_uri="http://cb.example/", state="s" * 32, code_challenge=challenge),
        allow_redirects=False, timeout=10).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    pending = dict(redirect_uri="http://cb.example/", code_verifier=oauth2_client.pkce_pair()[0])

    with pytest.raises(oauth2_client.GrantRejected, match="PKCE verification failed"):
        oauth2_client.exchange_code(fake_provider, code=code, **pending)


def test_connecting_needs_a_logged_in_user_and_the_csrf_token(live_server, fake_oauth2, fake_provider, alice):
    anonymous = requests.post(live_server.url + "/connections/fake/connect/", allow_redirects=False, timeout=10)
    assert anonymous.status_code in (302, 403)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/connections/fake/connect/").status_code == 403
    assert strict.post("/connections/nope/connect/").status_code == 403  # CSRF first, whatever the provider
    assert fake_oauth2.authorize_queries == []


def test_an_account_connected_by_another_user_is_not_taken_over(browser, fake_oauth2, store_fake_account,
                                                                django_user_model):
    mallory = django_user_model.objects.create_user("mallory")
    store_fake_account(mallory)  # the same provider account (alice-at-fake)

    response = connect(browser)

    assert "Not connected: this fake account is already connected by another user" in response.text
    assert ConnectedAccount.objects.get().user == mallory


def test_the_page_lists_providers_with_connect_and_the_api_lists_accounts_without_tokens(
        browser, fake_oauth2, alice, live_server, django_user_model):
    connect(browser)
    bob = browser_for(live_server, django_user_model.objects.create_user("bob"))
    account = ConnectedAccount.objects.get(user=alice)

    page = browser.get(browser.base + "/connections/", timeout=10).text
    listed = browser.get(browser.base + "/api/connections/", timeout=10)

    assert 'action="/connections/fake/connect/"' in page and "Connect Fake" in page
    assert listed.status_code == 200
    assert [{k: a[k] for k in ("id", "provider", "login", "status")} for a in listed.json()] == [
        {"id": account.id, "provider": "fake", "login": "alice-at-fake", "status": "ok"}]
    assert listed.json()[0]["expires_at"] is not None
    assert account.access_token not in listed.text and account.refresh_token not in listed.text
    assert bob.get(browser.base + "/api/connections/", timeout=10).json() == []
    assert bob.post(f"{browser.base}/api/connections/{account.id}/disconnect/", timeout=10).status_code in (403, 404)
    assert ConnectedAccount.objects.filter(id=account.id).exists()


def test_disconnecting_deletes_the_account(browser, fake_oauth2, alice):
    connect(browser)
    account = ConnectedAccount.objects.get(user=alice)

    response = browser.post(f"{browser.base}/connections/{account.id}/disconnect/",
                            data={"csrfmiddlewaretoken": _csrf(browser)}, timeout=10)

    assert response.status_code == 200 and "Disconnected Fake account alice-at-fake." in response.text
    assert not ConnectedAccount.objects.exists()

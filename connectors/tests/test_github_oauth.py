"""The connect flow over real HTTP: Django's live server, the fake GitHub, and a requests session following the
redirects between them like a browser."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.db import connection
from social_django.models import UserSocialAuth

from connectors.models import ConnectedAccount
from connectors.tests.fake_github import CLIENT_ID, connect_account, fake_github, github_user  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser(live_server, client, github_user, fake_github):
    """A requests session logged in as `alice` (the session cookie of Django's test client)."""
    client.force_login(github_user)
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    session.base = live_server.url
    yield session
    session.close()


def _csrf(browser, page="/connections/") -> str:
    response = browser.get(browser.base + page, timeout=10)
    assert response.status_code == 200, response.text
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)


def _start_connect(browser, **kwargs) -> requests.Response:
    return browser.post(browser.base + "/oauth/login/github/",
                        data={"csrfmiddlewaretoken": _csrf(browser), "next": "/connections/"}, timeout=10, **kwargs)


def test_connecting_github_stores_the_account_with_encrypted_tokens(browser, fake_github, github_user):
    response = _start_connect(browser)

    assert response.status_code == 200 and response.url == browser.base + "/connections/"
    assert [r.status_code for r in response.history] == [302, 302, 302]  # → GitHub → callback → connections
    assert "octocat" in response.text
    authorize = urlsplit(response.history[0].headers["Location"])
    query = parse_qs(authorize.query)
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{fake_github.url}/login/oauth/authorize"
    assert query["client_id"] == [CLIENT_ID] and query["scope"] == ["repo"] and len(query["state"][0]) >= 32
    assert query["redirect_uri"] == [browser.base + "/oauth/complete/github/"]

    account = ConnectedAccount.objects.get(user=github_user)
    assert (account.provider, account.login, account.external_id) == ("github", "octocat", "583231")
    assert account.scopes == ["repo"] and account.status == ConnectedAccount.Status.OK
    assert account.expires_at is not None and account.refresh_expires_at is not None
    assert fake_github.valid_access_token(account.access_token)
    assert fake_github.valid_refresh_token(account.refresh_token)

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM connectors_connectedaccount")
        raw_access, raw_refresh = cursor.fetchone()
    assert raw_access != account.access_token and account.access_token not in raw_access
    assert raw_refresh != account.refresh_token and account.refresh_token not in raw_refresh

    social = UserSocialAuth.objects.get(user=github_user, provider="github")
    assert social.uid == "583231"
    stored = json.dumps(social.extra_data)
    assert "access_token" not in social.extra_data and "refresh_token" not in social.extra_data
    assert account.access_token not in stored and account.refresh_token not in stored


def test_the_connect_flow_associates_and_does_not_log_in_as_the_github_user(browser, github_user, django_user_model):
    _start_connect(browser)

    assert django_user_model.objects.count() == 1  # no user made from the GitHub profile
    assert browser.get(browser.base + "/api/connections/", timeout=10).json()[0]["login"] == "octocat"


def test_a_callback_whose_state_does_not_match_is_refused(browser, fake_github, github_user):
    to_github = _start_connect(browser, allow_redirects=False)
    back = browser.get(to_github.headers["Location"], allow_redirects=False, timeout=10)
    callback = urlsplit(back.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(callback.query).items()}
    params["state"] = "forged" + params["state"][6:]

    refused = browser.get(f"{browser.base}{callback.path}?{urlencode(params)}", allow_redirects=False, timeout=10)

    assert refused.status_code == 403
    assert not ConnectedAccount.objects.exists() and not UserSocialAuth.objects.exists()
    assert "/login/oauth/access_token" not in fake_github.paths("POST")  # the code was never exchanged


def test_connecting_requires_a_logged_in_user(live_server, fake_github):
    anonymous = requests.Session()
    page = anonymous.get(live_server.url + "/connections/", allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["Location"].startswith(settings.LOGIN_URL)

    from django.test import Client

    refused = Client().post("/oauth/login/github/")
    assert refused.status_code == 403
    assert fake_github.requests == []


def test_disconnecting_revokes_the_grant_and_deletes_the_account(browser, fake_github, github_user):
    _start_connect(browser)
    account = ConnectedAccount.objects.get(user=github_user)
    token = account.access_token

    response = browser.post(f"{browser.base}/connections/{account.id}/disconnect/",
                            data={"csrfmiddlewaretoken": _csrf(browser)}, timeout=10)

    assert response.status_code == 200 and "Disconnected GitHub account octocat" in response.text
    assert ("DELETE", f"/applications/{CLIENT_ID}/grant") in [(m, p) for m, p, _ in fake_github.requests]
    assert not fake_github.valid_access_token(token)
    assert not ConnectedAccount.objects.exists() and not UserSocialAuth.objects.exists()


def test_reconnecting_a_connection_that_needs_reauthorisation_makes_it_usable_again(browser, github_user):
    _start_connect(browser)
    account = ConnectedAccount.objects.get(user=github_user)
    ConnectedAccount.objects.filter(id=account.id).update(status=ConnectedAccount.Status.NEEDS_REAUTH,
                                                          status_reason="token refresh refused")
    assert "Reconnect GitHub" in browser.get(browser.base + "/connections/", timeout=10).text

    _start_connect(browser)

    again = ConnectedAccount.objects.get(user=github_user)
    assert again.id == account.id and again.status == ConnectedAccount.Status.OK and again.status_reason == ""
    assert again.access_token != account.access_token


def test_a_github_account_connected_by_someone_else_is_refused(browser, connect_account, django_user_model):
    connect_account(django_user_model.objects.create_user("mallory"))
    UserSocialAuth.objects.create(user=django_user_model.objects.get(username="mallory"), provider="github",
                                  uid="583231", extra_data={})

    response = _start_connect(browser)

    assert response.status_code == 409
    assert ConnectedAccount.objects.get().user.username == "mallory"


def test_the_api_lists_the_users_connections_without_tokens(client, github_user, connect_account, django_user_model):
    mine = connect_account(github_user)
    connect_account(django_user_model.objects.create_user("bob"), login="hubot")
    client.force_login(github_user)

    response = client.get("/api/connections/")

    assert response.status_code == 200
    assert [(a["login"], a["status"], a["scopes"]) for a in response.json()] == [("octocat", "ok", ["repo"])]
    assert set(response.json()[0]) == {"id", "provider", "login", "scopes", "status", "status_reason", "expires_at",
                                       "created_at", "updated_at", "connect_url"}
    assert mine.access_token not in response.content.decode() and mine.refresh_token not in response.content.decode()


def test_the_api_disconnects_only_the_users_own_connections(client, github_user, connect_account, fake_github,
                                                            django_user_model):
    mine = connect_account(github_user)
    theirs = connect_account(django_user_model.objects.create_user("bob"), login="hubot")
    client.force_login(github_user)

    assert client.post(f"/api/connections/{theirs.id}/disconnect/").status_code == 404
    response = client.post(f"/api/connections/{mine.id}/disconnect/")

    assert response.status_code == 200 and response.json() == {"disconnected": True, "revoked": True}
    assert list(ConnectedAccount.objects.values_list("login", flat=True)) == ["hubot"]


def test_the_admin_lists_connections_and_never_shows_tokens(client, connect_account, github_user, django_user_model):
    account = connect_account(github_user)
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "a-long-password"))

    listing = client.get("/admin/connectors/connectedaccount/")
    detail = client.get(f"/admin/connectors/connectedaccount/{account.id}/change/")

    assert listing.status_code == 200 and detail.status_code == 200
    assert "octocat" in listing.content.decode()
    for page in (listing, detail):
        assert account.access_token not in page.content.decode()
        assert account.refresh_token not in page.content.decode()


def test_social_auths_own_disconnect_view_also_revokes_and_deletes_the_connection(browser, fake_github, github_user):
    _start_connect(browser)
    token = ConnectedAccount.objects.get().access_token

    response = browser.post(browser.base + "/oauth/disconnect/github/",
                            data={"csrfmiddlewaretoken": _csrf(browser)}, timeout=10)

    assert response.status_code == 200
    assert not fake_github.valid_access_token(token)
    assert not ConnectedAccount.objects.exists() and not UserSocialAuth.objects.exists()


def test_a_connection_owned_by_another_user_is_not_taken_over(browser, connect_account, django_user_model):
    connect_account(django_user_model.objects.create_user("mallory"))  # no social-auth row, only the account

    response = _start_connect(browser)

    assert response.status_code == 409
    assert ConnectedAccount.objects.get().user.username == "mallory"
    assert not UserSocialAuth.objects.exists()

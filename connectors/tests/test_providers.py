"""OAuth2 providers as data (SPEC §12): staff-only `/api/providers/` with a write-only client secret and presets,
the admin's provider form (write-only secret, "from preset"), and GitHub as one provider made from settings."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission
from django.test import Client

from connectors.models import Provider
from connectors.oauth2.providers import PRESETS, provider_get, provider_list

pytestmark = pytest.mark.django_db

SLACK = {"name": "slack", "preset": "slack", "client_id": "123.456", "client_secret": "slack-secret-value"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", "pw")


def test_staff_create_a_provider_from_a_preset_and_its_secret_is_never_returned(root):
    api = _client(root)

    created = api.post("/api/providers/", SLACK, content_type="application/json")
    listed = api.get("/api/providers/")

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["token_url"] == PRESETS["slack"]["token_url"] and body["scopes"] == PRESETS["slack"]["scopes"]
    assert "client_secret" not in body and "slack-secret-value" not in created.content.decode()
    assert "slack-secret-value" not in listed.content.decode() and listed.json()[0]["name"] == "slack"
    assert Provider.objects.get(name="slack").client_secret == "slack-secret-value"


def test_updating_a_provider_without_a_secret_keeps_it(root):
    api = _client(root)
    provider_id = api.post("/api/providers/", SLACK, content_type="application/json").json()["id"]

    changed = api.patch(f"/api/providers/{provider_id}/", {"scopes": ["chat:write"]}, content_type="application/json")

    assert changed.status_code == 200 and changed.json()["scopes"] == ["chat:write"]
    assert Provider.objects.get(id=provider_id).client_secret == "slack-secret-value"


def test_a_provider_without_endpoints_or_secret_is_refused_with_path_named_errors(root):
    answer = _client(root).post("/api/providers/", {"name": "custom", "client_id": "x"},
                                content_type="application/json")

    assert answer.status_code == 400
    paths = {e["path"] for e in answer.json()["errors"]}
    assert {"authorize_url", "token_url", "userinfo_url"} <= paths


def test_non_staff_users_cannot_see_or_change_providers(django_user_model, root):
    _client(root).post("/api/providers/", SLACK, content_type="application/json")
    alice = _client(django_user_model.objects.create_user("alice", password="pw"))

    assert alice.get("/api/providers/").status_code == 403
    assert alice.post("/api/providers/", {**SLACK, "name": "mine"}, content_type="application/json").status_code == 403
    assert Provider.objects.count() == 1


def test_staff_need_the_model_permissions(django_user_model):
    staff = django_user_model.objects.create_user("stan", password="pw", is_staff=True)
    api = _client(staff)
    assert api.get("/api/providers/").status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="view_provider"))
    api = _client(staff)
    assert api.get("/api/providers/").status_code == 200
    assert api.post("/api/providers/", SLACK, content_type="application/json").status_code == 403


def test_the_admin_fills_a_provider_from_a_preset_and_never_shows_the_secret(root):
    admin = _client(root)

    added = admin.post("/admin/connectors/provider/add/", {
        "name": "google", "preset": "google", "client_id": "cid.apps.googleusercontent.com",
        "new_client_secret": "google-secret-value", "scopes": "", "extra_authorize_params": "",
    })

    assert added.status_code == 302, added.content.decode()[:3000]
    google = Provider.objects.get(name="google")
    assert google.authorize_url == PRESETS["google"]["authorize_url"] and google.pkce is True
    assert google.scopes == ["openid", "email", "profile"] and google.client_secret == "google-secret-value"
    page = admin.get(f"/admin/connectors/provider/{google.id}/change/").content.decode()
    assert "google-secret-value" not in page and "accounts.google.com" in page


def test_github_is_a_provider_made_from_the_github_settings(settings):
    settings.GITHUB_CLIENT_ID, settings.GITHUB_CLIENT_SECRET = "gh-id", "gh-secret"
    settings.GITHUB_OAUTH_URL, settings.GITHUB_API_URL = "https://ghe.example", "https://ghe.example/api/v3"
    assert provider_get(name="github").token_url == "https://ghe.example/login/oauth/access_token"
    assert [p.name for p in provider_list()] == ["github"]

    migration = importlib.import_module("connectors.migrations.0007_github_provider")
    migration.create_github(django_apps, None)

    github = Provider.objects.get(name="github")
    assert (github.client_id, github.client_secret) == ("gh-id", "gh-secret")
    assert github.userinfo_url == "https://ghe.example/api/v3/user"
    assert github.authorize_url == "https://ghe.example/login/oauth/authorize"

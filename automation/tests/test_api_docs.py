"""The API documentation works without internet: Swagger UI and ReDoc come from this server, the schema opens in a
browser. The browser test drives Debian's Chromium against the web server bin/start runs (gunicorn + WhiteNoise)
with every request to anything but 127.0.0.1 refused."""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command

from automation.supervisor import stack_commands
from automation.testing import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, stop_process_group, wait_for

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
DOC_PAGES = ["/api/docs/", "/api/redoc/"]


def referenced_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', page)


@pytest.mark.parametrize("docs", DOC_PAGES)
def test_the_docs_pages_reference_only_this_servers_static_files_and_each_answers(client, docs):
    page = client.get(docs)
    assert page.status_code == 200
    html = page.content.decode()

    assert not re.search(r"https?://|//[a-z]", html), "the page must not load anything from another host"
    urls = referenced_urls(html)
    assert any(url.startswith("/static/drf_spectacular_sidecar/") and url.endswith(".js") for url in urls)
    for url in urls:
        assert url.startswith("/"), url
        response = client.get(url, HTTP_ACCEPT="*/*")
        assert response.status_code == 200, url


def test_a_browser_opening_the_schema_sees_yaml_text_or_json_instead_of_a_download(client):
    as_text = client.get("/api/schema/", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert as_text.status_code == 200
    assert as_text["Content-Type"] == "text/plain; charset=utf-8"
    assert "/api/workflows/" in yaml.safe_load(as_text.content)["paths"]

    as_json = client.get("/api/schema/", {"format": "json"}, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert as_json["Content-Type"] == "application/json"
    assert "/api/workflows/" in as_json.json()["paths"]


def test_api_clients_still_get_the_openapi_media_types(client):
    assert client.get("/api/schema/", HTTP_ACCEPT="*/*")["Content-Type"].startswith("application/vnd.oai.openapi;")
    assert client.get("/api/schema/", {"format": "json"})["Content-Type"] == "application/vnd.oai.openapi+json"
    assert client.get("/api/schema/", HTTP_ACCEPT="application/json")["Content-Type"] == "application/json"


def test_collectstatic_gathers_the_swagger_ui_and_redoc_files(tmp_path, settings):
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    sidecar = settings.STATIC_ROOT / "drf_spectacular_sidecar"
    assert (sidecar / "swagger-ui-dist" / "swagger-ui-bundle.js").stat().st_size > 100_000
    assert (sidecar / "redoc" / "bundles" / "redoc.standalone.js").stat().st_size > 100_000


# --- in Chromium, offline ----------------------------------------------------------------------------------------

@pytest.fixture
def web_server(tmp_path, monkeypatch) -> Iterator[str]:
    """gunicorn exactly as bin/start runs it (automation.supervisor), on the embedded default's SQLite."""
    port = free_port()
    monkeypatch.setenv("PORT", str(port))
    monkeypatch.setenv("WEB_WORKERS", "1")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "automation.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "STATIC_ROOT": str(tmp_path / "static"),
           "AUTOMATION_VAR_DIR": str(tmp_path / "var")}
    env.pop("CELERY_BROKER_URL", None)
    (tmp_path / "static").mkdir()
    log = (tmp_path / "web.log").open("w")
    process = subprocess.Popen(stack_commands()["web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/api/docs/"), timeout=60, message="gunicorn to serve /api/docs/")
        yield url
    finally:
        stop_process_group(process)
        log.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_swagger_ui_and_redoc_list_the_operations_with_only_127_0_0_1_reachable(web_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    refused: list[str] = []

    def local_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.route("**/*", local_only)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            page.goto(f"{web_server}/api/docs/")
            expect(page.locator(".opblock").first).to_be_visible()
            expect(page.locator('.opblock-summary-path[data-path="/api/workflows/"]').first).to_be_visible()
            assert page.locator(".opblock").count() > 20

            page.goto(f"{web_server}/api/redoc/")
            expect(page.get_by_text("/api/workflows/{id}/run/").first).to_be_attached()

            page.goto(f"{web_server}/api/schema/")  # a download would make goto fail
            expect(page.locator("body")).to_contain_text("openapi: 3")
        finally:
            browser.close()

    assert refused == [] and errors == []


# --- the README's token walkthrough --------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_readme_token_walkthrough_gets_a_token_lists_workflows_and_stores_a_secret(live_server):
    get_user_model().objects.create_user("alice", password="pw-alice-1234")
    api = f"{live_server.url}/api"

    token = requests.post(f"{api}/auth/token/", json={"username": "alice", "password": "pw-alice-1234"},
                          timeout=10).json()["token"]
    auth = {"Authorization": f"Token {token}"}
    assert requests.get(f"{api}/workflows/", headers=auth, timeout=10).json()["count"] == 0
    stored = requests.post(f"{api}/secrets/", json={"name": "SLACK_URL", "value": "https://example.invalid/x"},
                           headers=auth, timeout=10)
    assert stored.status_code == 201
    assert [s["name"] for s in requests.get(f"{api}/secrets/", headers=auth, timeout=10).json()] == ["SLACK_URL"]

    for headers in ({}, {"Authorization": "Token not-a-token"}):
        refused = requests.get(f"{api}/workflows/", headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Token"


def test_the_openapi_schema_generates_valid_and_without_warnings(tmp_path):
    # A view drf-spectacular cannot describe is silently left out of the schema (and of the fuzzing).
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/secrets/" in (tmp_path / "schema.yaml").read_text()

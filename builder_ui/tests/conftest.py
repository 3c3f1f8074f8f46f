"""Headless Chromium (Debian's, through Playwright's sync API) logged in to the live test server."""
from __future__ import annotations

import shutil

import pytest
from django.contrib.auth import get_user_model

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture
def browser(monkeypatch):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (bin/test does it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, which trips Django's async-safety
    # guard; the ORM calls the test makes between browser steps are plain synchronous calls all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def builder_user(db):
    return get_user_model().objects.create_user("builder", password="pw", is_staff=True, is_superuser=True)


@pytest.fixture
def page(browser, live_server, client, builder_user):
    """A page whose browser context carries the session of `builder_user` (from client.force_login)."""
    client.force_login(builder_user)
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    try:
        yield page
    finally:
        context.close()

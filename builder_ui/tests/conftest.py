"""Headless Chromium (Debian's, through Playwright's sync API) logged in to the live test server."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

VIEWPORT = {"width": 1440, "height": 900}



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

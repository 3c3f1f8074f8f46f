"""GitHub HTTP calls go through `connectors.net.safe_request`, the one outbound path with its private-address
guard. GITHUB_API_URL / GITHUB_OAUTH_URL are operator settings; a GitHub Enterprise server on a private address
is reached by listing its network in AUTOMATION_HTTP_ALLOWED_NETWORKS (the test suite lists 127.0.0.1)."""
from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from connectors.net import safe_request

TIMEOUT = 30.0
USER_AGENT = "Flowforge"
HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def send(method: str, url: str, *, headers: dict | None = None, **kwargs: Any) -> requests.Response:
    """One GitHub request, redirects not followed (an Authorization header never travels on); raises the
    ActionError subclasses of connectors.net."""
    return safe_request(
        method, url, headers={**HEADERS, **(headers or {})}, timeout=TIMEOUT, max_redirects=0,
        allow_private=settings.AUTOMATION_HTTP_ALLOW_PRIVATE,
        allowed_networks=settings.AUTOMATION_HTTP_ALLOWED_NETWORKS, **kwargs,
    )

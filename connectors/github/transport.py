"""The HTTP session for GitHub calls.

Why not `connectors.net` (the SSRF-guarded path every user-directed request takes): these requests only ever go
to `GITHUB_API_URL` / `GITHUB_OAUTH_URL`, operator settings rather than workflow input, and a GitHub Enterprise
server (or the test suite's fake on 127.0.0.1) legitimately sits on a private address the guard refuses. What
stays the same: explicit timeouts on every request and no redirects followed with the Authorization header.
"""
from __future__ import annotations

import requests

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
USER_AGENT = "Flowforge"


def new_session() -> requests.Session:
    # One session per logical call: requests.Session is not documented as thread-safe, and workers run actions
    # in threads.
    session = requests.Session()
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/vnd.github+json",
                            "X-GitHub-Api-Version": "2022-11-28"})
    session.max_redirects = 0
    return session

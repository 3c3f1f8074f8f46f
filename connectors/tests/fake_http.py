"""Serving a fake external service (GitHub, an OAuth2 provider, Slack) on 127.0.0.1 for the length of a test."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    """A threaded server that does not print tracebacks of clients hanging up."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], **attributes) -> Iterator[str]:
    """Run `handler` on a free 127.0.0.1 port with `attributes` set on the server; yields its base URL."""
    server = QuietServer(("127.0.0.1", 0), handler)
    for name, value in attributes.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

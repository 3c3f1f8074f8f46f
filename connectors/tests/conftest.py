"""Real local servers for the connector tests: an HTTP server on 127.0.0.1, and a recorder of every outbound
TCP connection so tests can assert that refused destinations were refused before any connection was made."""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3.util.connection

from connectors.base import ActionConfig, ActionContext
from runs import services as runs

LOCAL_HOSTS = {"127.0.0.1", "::1"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers), body))
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")

        if parts[0] == "json":
            self._send(200, json.dumps({"hello": "world", "n": 1}).encode(), "application/json")
        elif parts[0] == "problem":  # JSON flavour with a +json suffix
            self._send(422, json.dumps({"title": "bad"}).encode(), "application/problem+json")
        elif parts[0] == "broken-json":
            self._send(200, b"{not json", "application/json")
        elif parts[0] == "text":
            self._send(200, "plain text ✓".encode(), "text/plain; charset=utf-8")
        elif parts[0] == "status":
            code = int(parts[1])
            self._send(code, f"status {code} body".encode())
        elif parts[0] == "echo":
            echoed = {
                "method": self.command,
                "path": self.path,
                "query": parse_qs(url.query),
                "headers": dict(self.headers),
                "body": body.decode("utf-8", "replace"),
            }
            self._send(200, json.dumps(echoed).encode(), "application/json")
        elif parts[0] == "redirect":
            self._send(int(query.get("code", 302)), b"", headers={"Location": query["to"]})
        elif parts[0] == "chain":
            left = int(parts[1])
            if left == 0:
                self._send(200, b"end of chain")
            else:
                self._send(302, b"", headers={"Location": f"/chain/{left - 1}"})
        elif parts[0] == "slow":
            deadline = time.monotonic() + float(query.get("seconds", 5))
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                time.sleep(0.02)
            self._send(200, b"finally")
        elif parts[0] == "big":
            self._send(200, b"x" * int(query["bytes"]))
        else:
            self._send(404, b"no such route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, family=socket.AF_INET):
        self.address_family = family
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout tests) leaves a broken pipe behind; not a test failure


@dataclass
class LocalServer:
    server: _Server
    host: str
    port: int
    seen: list = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


def _start(family, host, handler=_Handler):
    server = _Server((host, 0), handler, family)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def _stop(server, thread):
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def http_server():
    server, thread = _start(socket.AF_INET, "127.0.0.1")
    yield LocalServer(server, "127.0.0.1", server.server_address[1], server.seen)
    _stop(server, thread)


@pytest.fixture
def http_server_v6():
    try:
        server, thread = _start(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield LocalServer(server, "::1", server.server_address[1], server.seen)
    _stop(server, thread)


@pytest.fixture
def connections(monkeypatch):
    """Every TCP connection urllib3 opens, as (host, port); fails the test if one left the loopback interface."""
    made: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def recording(address, *args, **kwargs):
        made.append((address[0], address[1]))
        if address[0].strip("[]") not in LOCAL_HOSTS:
            raise AssertionError(f"test tried to connect to {address[0]}")  # and never actually does
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", recording)
    yield made
    assert all(host.strip("[]") in LOCAL_HOSTS for host, _ in made), made


def fake_resolver(mapping: dict[str, list[str]], calls: list | None = None):
    """A getaddrinfo stand-in: names in `mapping` resolve to the listed addresses, others do not resolve."""

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        if calls is not None:
            calls.append(host)
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = mapping[host]
        if callable(answers):
            answers = answers()
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers
        ]

    return resolve


@pytest.fixture
def log_lines():
    return []


@pytest.fixture
def make_context(tmp_path, log_lines):
    def make(**config) -> ActionContext:
        config.setdefault("files_root", tmp_path / "files")
        return ActionContext(run_id=1, task_id="t", config=ActionConfig(**config), log=log_lines.append)

    return make


@pytest.fixture
def deliver(monkeypatch):
    """Play the broker in-process: `deliver()` runs every queued start and task message through runs.services."""
    queued: list[tuple] = []
    monkeypatch.setattr(runs, "_send", lambda name, args, **options: queued.append((name, args)))
    monkeypatch.setattr(runs, "_send_many", lambda name, calls: queued.extend((name, args) for args, _ in calls))

    def drain() -> None:
        while queued:
            name, args = queued.pop(0)
            if name == "start_run":
                runs.run_start(run_id=args[0])
            elif name == "execute_task":
                runs.task_execute(task_run_id=args[0])

    return drain

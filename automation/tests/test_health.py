"""/healthz answers 200 when PostgreSQL and the broker answer, 503 naming the part that does not, quickly."""
import socket
import time

import pytest

from automation import health

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_reports_database_and_broker_ok(client, broker):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_names_an_unreachable_redis_broker_within_the_timeout(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable"}


def test_healthz_gives_up_on_a_redis_that_accepts_but_never_answers(client, settings):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.HEALTHZ_TIMEOUT_SECONDS = 0.3
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < 2
    assert response.json()["broker"] == "unavailable"


def test_healthz_checks_that_the_filesystem_broker_folder_is_writable(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    assert client.get("/healthz").json()["broker"] == "ok"
    assert list(tmp_path.iterdir()) == [], "the probe file was left behind"

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["broker"] == "unavailable"


def test_healthz_names_a_failing_database(client, broker, monkeypatch):
    def broken():
        raise RuntimeError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable", "broker": "ok"}


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405


def test_healthz_stays_public_while_metrics_need_credentials(client, broker, settings):
    settings.METRICS_TOKEN = "s3cret"

    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 401

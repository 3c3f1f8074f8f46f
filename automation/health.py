"""Operations endpoints: /healthz for probes and load balancers, /metrics for Prometheus.

Both are plain Django views outside the API (no throttling). Each health check is bounded by
HEALTHZ_TIMEOUT_SECONDS so a dead dependency makes the probe fail quickly instead of hanging it. /healthz says
only "ok" or "unavailable" and stays public; /metrics tells how busy the installation is, so it answers a
scraper sending `Authorization: Bearer <METRICS_TOKEN>` or a logged-in staff member, and nobody else.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from runs.metrics import metrics_snapshot, render_prometheus

log = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    """Raise unless the broker accepts a connection: Redis answers PING, the filesystem folder is writable."""
    url = settings.CELERY_BROKER_URL
    timeout = settings.HEALTHZ_TIMEOUT_SECONDS
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    elif url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".healthz-", delete=True):
            pass
    else:
        from automation.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)


CHECKS = {"database": check_database, "broker": check_broker}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure is the answer; the detail goes to the log
            log.warning("healthz: %s check failed: %s", name, exc)
            results[name] = "unavailable"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(results, status=200 if healthy else 503)


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    """Constant time in the token and the guess: both are hashed first, so not even the length leaks.
    An empty token matches nothing."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    digest = hashlib.sha256(given.strip().encode()).digest()
    return hmac.compare_digest(digest, hashlib.sha256(token.encode()).digest())


def _refused(status: int, message: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"path": "", "message": message}]}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics_refusal(request: HttpRequest) -> JsonResponse | None:
    """None when the caller may read /metrics, else the 401 (no credentials, or a wrong token) or 403 (logged
    in, but not staff) to answer with."""
    if _bearer_matches(request, settings.METRICS_TOKEN):
        return None
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return None
    if "Authorization" in request.headers:
        return _refused(401, "invalid metrics token")
    if user.is_authenticated:
        return _refused(403, "metrics are for staff members and the scraper's token")
    return _refused(401, "authentication required: send Authorization: Bearer <METRICS_TOKEN> or log in as staff")


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    try:
        body = render_prometheus(metrics_snapshot())
    except Exception:  # noqa: BLE001 - the database is down: say so with a status a scraper records
        log.exception("metrics: snapshot failed")
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")

"""The floor the webhook gateway is measured against (bench/webhooks.py --floor): a bare Django view that stores
the request body with one INSERT and publishes with one LPUSH, nothing else.

    gunicorn bench.webhook_floor:application   (DATABASE_URL and CELERY_BROKER_URL as for the platform)

Same Django, same database connection settings (persistent, health-checked) and same Redis client library as
the platform, but no middleware, no URL table beyond one pattern, no signature, no parsing, no Celery.
"""
from __future__ import annotations

import os

import dj_database_url
import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.urls import path

TABLE = "bench_webhook_floor"
QUEUE = "bench-webhook-floor"

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-floor-" + "x" * 40,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    DATABASES={"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60,
                                                conn_health_checks=True)},
)
_redis = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])


def receive(request, token: str) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (token, body) VALUES (%s, %s) RETURNING id", (token, request.body))
        row_id = cursor.fetchone()[0]
    _redis.lpush(QUEUE, row_id)
    return JsonResponse({"run_id": row_id}, status=202)


def create_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, token text NOT NULL, "
                       "body bytea NOT NULL, received_at timestamptz NOT NULL DEFAULT now())")
    _redis.delete(QUEUE)


urlpatterns = [path("hooks/<str:token>", receive)]

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings.configure

application = get_wsgi_application()

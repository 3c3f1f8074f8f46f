"""Raw Celery tasks for the yardstick in bench/engine.py (workers load this module with --include)."""
import redis
from celery import shared_task
from django.conf import settings

_redis = None


def _client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return _redis


@shared_task(name="bench.hop", acks_late=True, ignore_result=True)
def hop(remaining: int, key: str) -> None:
    if remaining > 0:
        hop.delay(remaining - 1, key)
    else:
        _client().set(key, "done")


@shared_task(name="bench.noop", acks_late=True, ignore_result=True)
def noop(key: str) -> None:
    _client().incr(key)

"""Waiting for a run's end without polling the database in a tight loop (the webhook's `respond: on_finish`).

The run's row is the truth; a wake-up is only a hint to look again. When a run reaches a final status,
`runs.services` calls `run_finished_announce` once the transaction commits: with Redis configured (CACHE_URL,
or a redis:// broker, settings.CACHES) it PUBLISHes on the run's own channel. `run_wait_final` SUBSCRIBEs to
that channel first, then reads the row, then sleeps until a message or the deadline, and reads the row again:
a run that finished between the read and the subscribe cannot be missed (the lost wake-up race), and a lost
message (Redis restarted, publish failed) costs at most one safety interval. Without Redis (the embedded
default, SQLite) it reads the row every POLL_SECONDS instead.

The wait never outlasts its deadline, except that a Redis server that accepts connections but never answers
can hold one socket operation for at most REDIS_SOCKET_SECONDS.
"""
from __future__ import annotations

import logging
import time
from functools import cache

import redis
from django.conf import settings
from redis.exceptions import RedisError

from .models import WorkflowRun
from .states import FINAL_RUN

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "ff:run-finished:"
POLL_SECONDS = 0.25  # reading the row without Redis
SAFETY_SECONDS = 2.0  # reading the row with Redis, in case a wake-up was lost
REDIS_SOCKET_SECONDS = 0.5


def run_channel(run_id: int) -> str:
    return f"{CHANNEL_PREFIX}{run_id}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=REDIS_SOCKET_SECONDS, socket_connect_timeout=REDIS_SOCKET_SECONDS)


def _redis() -> redis.Redis | None:
    url = getattr(settings, "CACHE_URL", "")
    return _client(url) if url.startswith(("redis://", "rediss://", "unix://")) else None


def run_finished_announce(run_id: int) -> None:
    """Wake whoever waits on the run (call after the final status is committed); a failure only logs."""
    client = _redis()
    if client is None:
        return
    try:
        client.publish(run_channel(run_id), "1")
    except (RedisError, OSError):
        log.warning("run %s finished but its wake-up was not published; waiters poll the database", run_id,
                    exc_info=True)


def _final_status(run_id: int) -> str | None:
    return (WorkflowRun.objects.filter(id=run_id, status__in=list(FINAL_RUN))
            .values_list("status", flat=True).first())


def run_wait_final(*, run_id: int, deadline: float) -> str | None:
    """The run's final status once it has one, or None when `deadline` (time.monotonic()) passes first."""
    client = _redis()
    if client is not None:
        try:
            return _wait_subscribed(client, run_id, deadline)
        except (RedisError, OSError):
            log.warning("waiting on run %s without Redis wake-ups: Redis is unavailable", run_id, exc_info=True)
    return _wait_polling(run_id, deadline, POLL_SECONDS)


def _wait_subscribed(client: redis.Redis, run_id: int, deadline: float) -> str | None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(run_channel(run_id))
        while True:
            status = _final_status(run_id)  # after subscribing: a wake-up from now on is not lost
            remaining = deadline - time.monotonic()
            if status is not None or remaining <= 0:
                return status
            pubsub.get_message(timeout=min(remaining, SAFETY_SECONDS))
    finally:
        pubsub.close()


def _wait_polling(run_id: int, deadline: float, interval: float) -> str | None:
    while True:
        status = _final_status(run_id)
        remaining = deadline - time.monotonic()
        if status is not None or remaining <= 0:
            return status
        time.sleep(min(remaining, interval))

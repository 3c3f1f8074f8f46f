"""What the recovery sweep asks the broker, and the sweeper loop every worker runs.

The database says which task runs and runs are queued; only the broker knows whether their messages still
exist. On Redis two cheap looks answer that in seconds instead of a fixed delay:
- an epoch key kept in the broker's database: gone means the broker lost its data (FLUSHDB, a restart without
  persistence), so every queued message may be gone;
- for a short queue, the messages waiting in it plus those workers hold unacknowledged: a queued task run
  whose message is in neither was never published (a publish that failed) or was lost.
Other brokers (the filesystem default, RabbitMQ) keep the sweep's time-based re-send only.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import threading
import time
from contextlib import contextmanager
from functools import cache
from typing import Iterable, Iterator

import redis
from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection

log = logging.getLogger(__name__)
EPOCH_KEY = "flowforge:broker-epoch"
# A queue longer than this is not read message by message (a backlog): its task runs wait for the timed re-send.
SMALL_QUEUE = 200
# pg_try_advisory_lock key: one sweeper at a time across every worker ("flow" in ASCII).
SWEEP_LOCK = 0x666C6F77


@cache
def _client(url: str) -> redis.Redis:
    timeout = 1.0  # a frozen broker must not hold the sweep (and the zombie recovery after it) for long
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def broker_client() -> redis.Redis | None:
    """The broker's Redis database, or None when the broker is not Redis."""
    url = current_app.conf.broker_url or settings.CELERY_BROKER_URL
    return _client(url) if url.startswith(("redis://", "rediss://")) else None


def broker_lost_everything(queues: Iterable[str]) -> bool:
    """True once after the broker lost its data: the epoch key is gone. The sweeper that writes the new key (only
    one can) re-declares `queues` (their bindings went too) and answers True; the caller re-sends what is queued.
    False for other brokers and while the broker cannot be reached."""
    client = broker_client()
    if client is None:
        return False
    try:
        if client.get(EPOCH_KEY) is not None or not client.set(EPOCH_KEY, secrets.token_hex(8), nx=True):
            return False
    except redis.RedisError:
        return False
    log.warning("the broker lost its data (its epoch key is gone): re-sending every queued run and task run")
    _declare(queues)
    return True


def _declare(queues: Iterable[str]) -> None:
    try:
        with current_app.connection_for_write() as conn:
            channel = conn.default_channel
            for name in {"default", *queues}:
                current_app.amqp.queues[name](channel).declare()
    except Exception:  # noqa: BLE001 - a publish re-declares on its own retry; this only saves it the failure
        log.warning("re-declaring the broker's queues failed", exc_info=True)


def missing_messages(calls: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """Of `calls` (task name, first argument, queue), those whose message is neither waiting in its queue nor held
    by a worker. A call on a queue too long to read (or any, when the broker is not a readable Redis) is not
    reported: the caller cannot tell, and keeps waiting for the timed re-send."""
    client = broker_client()
    if client is None or not calls:
        return []
    try:
        queues = {_key(queue) for _, _, queue in calls}
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.llen(queue)
            lengths = dict(zip(queues, pipe.execute()))
        readable = [queue for queue in queues if lengths[queue] <= SMALL_QUEUE]
        if not readable:
            return []
        with client.pipeline(transaction=True) as pipe:
            for queue in readable:
                pipe.lrange(queue, 0, -1)
            pipe.hvals(_unacked_key())
            *waiting, held = pipe.execute()
    except redis.RedisError:
        return []
    present = {_call_of(raw) for raw in [*(m for messages in waiting for m in messages), *held]}
    return [(task, arg, queue) for task, arg, queue in calls
            if _key(queue) in readable and (task, arg) not in present]


def _key(name: str) -> str:
    """The Redis key kombu's transport uses for `name` (a queue, its unacked hash) under the broker's options."""
    return _transport_options().get("global_keyprefix", "") + name


def _unacked_key() -> str:
    # kombu's Redis transport keeps messages delivered to a worker and not acknowledged yet in this hash.
    return _key(_transport_options().get("unacked_key", "unacked"))


def _transport_options() -> dict:
    return current_app.conf.broker_transport_options or {}


def _call_of(raw: bytes) -> tuple[str, object] | None:
    """(task name, first argument) of a kombu message as the Redis transport stores it; None if unreadable."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # unacked entries are [message, exchange, routing key]
            message = message[0]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return message["headers"]["task"], args[0] if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


_last_done: dict[str, float] = {}


def due(what: str, every: float) -> bool:
    """Whether this process last did `what` at least `every` seconds ago (or never); if so it counts as done now."""
    now = time.monotonic()
    if now - _last_done.get(what, -math.inf) < every:
        return False
    _last_done[what] = now
    return True


# --- the sweeper loop ------------------------------------------------------------------------------------------


def sweep_forever(stop: threading.Event) -> None:
    """Sweep at once (a restarted worker recovers its dead predecessor's tasks), then every
    AUTOMATION_SWEEP_SECONDS until `stop` is set."""
    sweep_once()
    while not stop.wait(settings.AUTOMATION_SWEEP_SECONDS):
        sweep_once()


def sweep_once() -> dict[str, int] | None:
    """One recovery sweep, unless another process is sweeping right now (then None)."""
    from . import services  # services imports this module

    try:
        close_old_connections()
        with _exclusive() as mine:
            if not mine:
                return None
            counts = services.sweep()
        if any(counts.values()):
            log.info("recovery sweep: %s", counts)
        return counts
    except Exception:  # noqa: BLE001 - a database outage must not kill the sweeper; try again next tick
        log.exception("recovery sweep failed")
        connection.close()
        return None
    finally:
        close_old_connections()


@contextmanager
def _exclusive() -> Iterator[bool]:
    """Hold the sweep's advisory lock (PostgreSQL) for the block; yields whether this process got it."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK])

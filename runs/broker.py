"""Publishing task messages: the one place that talks to the broker (runs.services' `enqueue_*` call it).

Two ways, chosen by where the publish happens:

* inside a Celery task (a worker): Celery's pooled producer, the broker's configured timeouts and one retry. A
  worker has time, and a message it fails to send is only found again by the recovery sweep.
* anywhere else (a web request answering a client, a command): fail fast, since the row is already committed and
  the sweeper sends it anyway. One attempt, with socket and connect timeouts of FAST_TIMEOUT_SECONDS, on a
  connection kept open between requests; after a failure this process stops trying for BREAKER_SECONDS, so during
  an outage (a frozen or unreachable broker) only the first request pays the timeout, not every one.

On a Redis broker the fail-fast publish of a plain call (no countdown, no routes) is one LPUSH of the message
Celery's `send_task` would store, written here: Celery and kombu spend ten times the CPU of the LPUSH building
it, a quarter of a webhook's accept cost (bench/webhooks.py). Workers cannot tell the two apart
(triggers/tests/test_webhook_accept_path.py compares them field by field).
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
import uuid
from functools import cache
from typing import Any

import redis
from celery import current_app, current_task

log = logging.getLogger(__name__)

FAST_TIMEOUT_SECONDS = 0.4
BREAKER_SECONDS = 5.0

_local = threading.local()  # .producer, .pid: one connection per thread (runserver is threaded)
_closed_until = 0.0  # monotonic time before which fail-fast publishes are not tried


class BrokerUnavailable(Exception):
    """A fail-fast publish was not sent: the broker failed now or within the last BREAKER_SECONDS."""


def publish(name: str, args: tuple, **options: Any) -> None:
    """Send task `name`; raises (BrokerUnavailable or the broker's error) when it could not be sent."""
    if current_task:  # a proxy, false outside a running task
        current_app.send_task(name, args, retry=True, retry_policy={"max_retries": 1}, **options)
        return
    _publish_fast(name, args, options)


def publish_many(name: str, calls: list[tuple[tuple, str]]) -> None:
    """Send task `name` once per (args, queue). On a plain Redis route every message goes in one round trip (a
    fan-out's siblings, a for_each's items): one LPUSH per queue and chunk; otherwise one `publish` each."""
    app = current_app._get_current_object()
    plain = _plain_default(app)
    if plain is None or len(calls) < 2:
        for args, queue in calls:
            publish(name, args, queue=queue)
        return
    by_queue: dict[str, list[bytes]] = {}
    for args, queue in calls:
        by_queue.setdefault(queue, []).append(task_message(name, args, queue, reply_to=app.thread_oid))
    if not current_task:  # fail fast, as `publish` does outside a worker
        _check_breaker()
        try:
            _lpush_all(plain[0], by_queue)
        except Exception:
            _open_breaker()
            raise
        return
    try:
        _lpush_all(plain[0], by_queue)
    except redis.RedisError:  # a worker tries once more, as `publish` does
        _lpush_all(plain[0], by_queue)


def _lpush_all(client: redis.Redis, by_queue: dict[str, list[bytes]]) -> None:
    with client.pipeline(transaction=False) as pipe:
        for queue, messages in by_queue.items():
            for start in range(0, len(messages), PUBLISH_CHUNK):
                pipe.lpush(queue, *messages[start:start + PUBLISH_CHUNK])
        pipe.execute()


PUBLISH_CHUNK = 500  # messages per LPUSH: about 0.5 MB


def _check_breaker() -> None:
    if time.monotonic() < _closed_until:
        raise BrokerUnavailable(f"the broker failed less than {BREAKER_SECONDS:.0f} s ago; not trying again yet")


def _open_breaker() -> None:
    global _closed_until
    _closed_until = time.monotonic() + BREAKER_SECONDS
    _drop_producer()


def _publish_fast(name: str, args: tuple, options: dict) -> None:
    _check_breaker()
    try:
        app = current_app._get_current_object()
        route = _plain_route(app, options)
        if route is None:
            app.send_task(name, args, producer=_producer(), retry=False, **options)
        else:
            client, queue = route
            client.lpush(queue, task_message(name, args, queue, reply_to=app.thread_oid))
    except Exception:
        _open_breaker()
        raise


def _plain_route(app, options: dict) -> tuple[redis.Redis, str] | None:
    """(client, queue) to LPUSH this call's message with, or None when Celery itself must send it."""
    if any(value is not None for key, value in options.items() if key != "queue"):  # countdown, eta...
        return None
    plain = _plain_default(app)
    return None if plain is None else (plain[0], options.get("queue") or plain[1])


@cache
def _plain_default(app) -> tuple[redis.Redis, str] | None:
    """(client, default queue) when `app` sends plain calls as one LPUSH: Redis, protocol 2, JSON, no routes and
    no key prefix. Decided once per app: its configuration lookups cost more than the LPUSH."""
    conf = app.conf
    if (conf.task_routes or not conf.broker_url.startswith(("redis://", "rediss://"))
            or conf.broker_transport_options.get("global_keyprefix") or conf.task_serializer != "json"
            or conf.task_protocol != 2):
        return None
    # redis-py's pool is thread-safe and starts afresh in a forked child.
    client = redis.Redis.from_url(conf.broker_url, socket_timeout=FAST_TIMEOUT_SECONDS,
                                  socket_connect_timeout=FAST_TIMEOUT_SECONDS)
    return client, conf.task_default_queue


def task_message(name: str, args: tuple, queue: str, *, reply_to: str = "") -> bytes:
    """The message Celery (protocol 2, JSON) and kombu's Redis transport store for `send_task(name, args)`."""
    task_id = str(uuid.uuid4())
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return json.dumps({
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": name, "id": task_id, "shadow": None, "eta": None, "expires": None, "group": None,
            "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": task_id, "parent_id": None,
            "argsrepr": repr(tuple(args)), "kwargsrepr": "{}", "origin": _origin(os.getpid()), "ignore_result": None,
            "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": reply_to, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0, "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }).encode()


@cache
def _origin(pid: int) -> str:
    return f"gen{pid}@{socket.gethostname()}"


def _producer():
    producer = getattr(_local, "producer", None)
    if producer is None or _local.pid != os.getpid():  # never share a socket with the process we forked from
        app = current_app
        options: dict[str, Any] = {"max_retries": 0}  # connect once; the breaker, not a loop, handles outages
        if app.conf.broker_url.startswith(("redis://", "rediss://")):
            options.update(socket_timeout=FAST_TIMEOUT_SECONDS, socket_connect_timeout=FAST_TIMEOUT_SECONDS)
        connection = app.connection_for_write(transport_options=options)
        producer = app.amqp.Producer(connection, auto_declare=False)
        _local.producer, _local.pid = producer, os.getpid()
    return producer


def _drop_producer() -> None:
    producer = getattr(_local, "producer", None)
    _local.producer = None
    if producer is not None:
        producer.connection.collect()  # forget the sockets without talking to a broker that may not answer

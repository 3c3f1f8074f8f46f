"""Publishing task messages: the one place that talks to the broker (runs.services' `enqueue_*` call it).

Two ways, chosen by where the publish happens:

* inside a Celery task (a worker): Celery's pooled producer, the broker's configured timeouts and one retry. A
  worker has time, and a message it fails to send is only found again by the recovery sweep.
* anywhere else (a web request answering a client, a command): fail fast, since the row is already committed and
  the sweeper sends it anyway. One attempt on a per-thread connection kept open between requests, whose socket and
  connect timeouts are FAST_TIMEOUT_SECONDS; after a failure this process stops trying for BREAKER_SECONDS, so
  during an outage (a frozen or unreachable broker) only the first request pays the timeout, not every one.

Both send an ordinary Celery message through `send_task`, so workers cannot tell them apart.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

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


def _publish_fast(name: str, args: tuple, options: dict) -> None:
    global _closed_until
    if time.monotonic() < _closed_until:
        raise BrokerUnavailable(f"the broker failed less than {BREAKER_SECONDS:.0f} s ago; not trying again yet")
    try:
        current_app.send_task(name, args, producer=_producer(), retry=False, **options)
    except Exception:
        _closed_until = time.monotonic() + BREAKER_SECONDS
        _drop_producer()
        raise


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


def breaker_reset() -> None:
    """Let the next fail-fast publish try the broker at once (tests, and after a known recovery)."""
    global _closed_until
    _closed_until = 0.0

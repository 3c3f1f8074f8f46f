"""Worker start-up: each worker runs the recovery sweep on a timer, so no run needs beat to be recovered."""
from __future__ import annotations

import logging
import threading

from celery.signals import task_prerun, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)
_stop = threading.Event()


def _sweep_forever() -> None:
    from . import services

    while not _stop.wait(settings.AUTOMATION_SWEEP_SECONDS):
        try:
            close_old_connections()
            counts = services.sweep()
            if any(counts.values()):
                log.info("recovery sweep: %s", counts)
        except Exception:  # noqa: BLE001 - a database outage must not kill the sweeper; try again next tick
            log.exception("recovery sweep failed")
        finally:
            close_old_connections()


def _start_sweeper(**kwargs) -> None:
    _stop.clear()
    threading.Thread(target=_sweep_forever, name="flowforge-sweeper", daemon=True).start()


def _stop_sweeper(**kwargs) -> None:
    _stop.set()


def _fresh_connection(**kwargs) -> None:
    # Drops a connection that is broken or past CONN_MAX_AGE and re-arms CONN_HEALTH_CHECKS for the next query.
    close_old_connections()


def connect() -> None:
    task_prerun.connect(_fresh_connection, weak=False, dispatch_uid="flowforge-fresh-connection")
    worker_ready.connect(_start_sweeper, weak=False, dispatch_uid="flowforge-sweeper-start")
    worker_shutdown.connect(_stop_sweeper, weak=False, dispatch_uid="flowforge-sweeper-stop")

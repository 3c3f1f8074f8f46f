"""Worker start-up: each worker process beats its liveness row (runs.workers) and each worker runs the recovery
sweep on a timer (runs.recovery), so no run needs beat to be recovered.

Also the runs app's answer to `workflows.signals.workflow_deleting`: a workflow with unfinished runs stays.
"""
from __future__ import annotations

import logging
import threading
import time

from celery.signals import (
    task_prerun, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown,
)
from django.db import connections

from workflows.models import Workflow
from workflows.services import WorkflowBusy
from workflows.signals import workflow_deleting

from . import recovery, workers
from .states import FINAL_RUN

log = logging.getLogger(__name__)
_stop = threading.Event()


def _start_sweeper(**kwargs) -> None:
    _stop.clear()
    threading.Thread(target=recovery.sweep_forever, args=(_stop,), name="flowforge-sweeper", daemon=True).start()


def _stop_sweeper(**kwargs) -> None:
    _stop.set()


def _drop_broken_connections(**kwargs) -> None:
    """Before each task: close connections that saw an error or outlived CONN_MAX_AGE.

    Unlike close_old_connections() this does not ping healthy connections before every task; a connection
    the server dropped is instead reconnected by the services' retry of the claim and the recording.
    """
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred or (conn.close_at is not None and time.monotonic() >= conn.close_at):
            conn.close()


def _refuse_deleting_busy_workflow(sender, *, workflow: Workflow, **kwargs) -> None:
    active = list(workflow.runs.exclude(status__in=FINAL_RUN).order_by("id").values_list("id", flat=True))
    if active:
        raise WorkflowBusy(active)


def connect() -> None:
    workflow_deleting.connect(_refuse_deleting_busy_workflow, dispatch_uid="flowforge-refuse-busy-delete")
    task_prerun.connect(_drop_broken_connections, weak=False, dispatch_uid="flowforge-drop-broken-connections")
    worker_ready.connect(_start_sweeper, weak=False, dispatch_uid="flowforge-sweeper-start")
    worker_shutdown.connect(_stop_sweeper, weak=False, dispatch_uid="flowforge-sweeper-stop")
    # Every process that executes tasks beats: prefork children, and the main process (solo and threads pools).
    worker_process_init.connect(workers.start_beating, weak=False, dispatch_uid="flowforge-beat-child")
    worker_process_shutdown.connect(workers.stop_beating, weak=False, dispatch_uid="flowforge-beat-child-stop")
    worker_ready.connect(workers.start_beating, weak=False, dispatch_uid="flowforge-beat-main")
    worker_shutdown.connect(workers.stop_beating, weak=False, dispatch_uid="flowforge-beat-main-stop")

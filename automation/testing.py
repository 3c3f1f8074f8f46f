"""Test helpers shared by every app's integration tests: real worker processes and deadline polling."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

from django.conf import settings

T = TypeVar("T")
# Browser tests: Debian's chromium through PyPI's playwright (never `playwright install`).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WORKER_APPLICATION_NAME = "flowforge-test-worker"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05,
             message: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def wait_for_run(run_id: int, *, timeout: float = 30.0):
    from runs.models import WorkflowRun
    from runs.states import FINAL_RUN

    def finished():
        run = WorkflowRun.objects.get(id=run_id)
        return run if run.status in {s.value for s in FINAL_RUN} else None

    return wait_for(finished, timeout=timeout, message=f"run {run_id} to finish")


def database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("integration tests need PostgreSQL: set DATABASE_URL=postgres://...")
    # Named so fault tests can drop exactly the workers' connections and not the test process's own.
    return (f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
            f"?application_name={WORKER_APPLICATION_NAME}")


def worker_environment(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "automation.settings",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "AUTOMATION_ALLOW_SHELL": "1",
        "AUTOMATION_HTTP_ALLOW_PRIVATE": "1",
        "AUTOMATION_FILES_ROOT": str(settings.AUTOMATION_FILES_ROOT),
        "AUTOMATION_TASK_LEASE_SECONDS": "3",
        "AUTOMATION_HEARTBEAT_SECONDS": "0.5",
        "AUTOMATION_SWEEP_SECONDS": "0.5",
        "AUTOMATION_REQUEUE_AFTER_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


def stop_process_group(process: subprocess.Popen, *, grace: float = 15.0) -> None:
    """SIGTERM the process group `process` leads; SIGKILL it if it is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class WorkerProcess:
    """One `celery -A automation worker` process group, owned by the test that started it."""

    def __init__(self, name: str, *, concurrency: int = 1, queues: str = "default", env: dict | None = None):
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"worker-{name}-", suffix=".log")[1])
        command = [sys.executable, "-m", "celery", "-A", "automation", "worker", "-n", f"{name}@%h",
                   "-c", str(concurrency), "-Q", queues, "--pool", "prefork", "-l", "info",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env or worker_environment(), stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> "WorkerProcess":
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()}")
            return " ready." in self.log()

        wait_for(ready, timeout=timeout, interval=0.1, message=f"worker {self.name} to be ready")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children die at once."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process_group(self.process)
        self._log.close()

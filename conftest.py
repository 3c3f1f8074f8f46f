"""Fixtures shared by every app's tests."""
from __future__ import annotations

import os
from pathlib import Path

import shutil

import pytest
import redis
from django.conf import settings

from automation.testing import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(autouse=True)
def _files_root(tmp_path, settings):
    settings.AUTOMATION_FILES_ROOT = tmp_path / "files"


@pytest.fixture(autouse=True)
def _fresh_spec_cache():
    # Rolled-back test transactions let SQLite hand out the same version id again; production never does.
    from workflows.services import spec_for_version

    spec_for_version.cache_clear()


@pytest.fixture
def broker():
    """The Redis database used as broker in this test session, emptied before the test."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise RuntimeError("integration tests need Redis: set CELERY_BROKER_URL=redis://...")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def start_worker(broker, tmp_path, django_db_blocker):
    """Start real Celery worker processes; every one is stopped (by process group) when the test ends."""
    from automation.testing import WorkerProcess, worker_environment

    started: list[WorkerProcess] = []

    def start(name: str = "w1", *, concurrency: int = 1, queues: str = "default", **env) -> WorkerProcess:
        environment = worker_environment(AUTOMATION_FILES_ROOT=str(settings.AUTOMATION_FILES_ROOT), **env)
        worker = WorkerProcess(name, concurrency=concurrency, queues=queues, env=environment)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory) -> Path:
    """Where browser tests save their screenshots: a temporary folder unless SCREENSHOTS_DIR names one.

    Only `SCREENSHOTS_DIR=docs/screenshots bin/test -m browser` refreshes the committed pictures (README).
    """
    chosen = os.environ.get("SCREENSHOTS_DIR")
    folder = Path(__file__).resolve().parent / chosen if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(monkeypatch):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (bin/test does it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, which trips Django's async-safety
    # guard; the ORM calls the test makes between browser steps are plain synchronous calls all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()

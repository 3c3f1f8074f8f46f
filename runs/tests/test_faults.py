"""Faults on real services: the broker flushed, down or frozen, PostgreSQL connections dropped, zombie task
runs, a pickle message on the queue, and CSRF / no-state-change-on-GET on the API.

Workers come from `start_worker` (5 s re-send of lost messages, 0.5 s sweep, 3 s lease). The broker-down
scenarios run their own throw-away redis-server and point both the test's Celery app and the worker at it.
"""
from __future__ import annotations

import pickle
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone
from kombu import Connection, Exchange, Producer, Queue

from automation.celery import app as celery_app
from automation.testing import WORKER_APPLICATION_NAME, free_port, wait_for, wait_for_run
from runs import services
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
FINAL = {"succeeded", "failed", "cancelled"}


# --- helpers -------------------------------------------------------------------------------------------------


class RedisServer:
    """A throw-away redis-server on a free port, owned (and killed) by the test that starts it."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        wait_for(lambda: _pings(client), timeout=10, message="redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


@contextmanager
def celery_app_on(url: str, monkeypatch):
    """Point this process's Celery app at `url`.

    Celery reads CELERY_BROKER_URL from the environment before its own config, so both are changed; the
    cached connection and producer pools are dropped the way Celery does after a fork (kombu keys its pools
    by host and port, so the old ones stay valid for the old URL). `force_close_all()` on the old pool is
    wrong here: the producer pool keeps a reference to it and then fails with "Acquire on closed pool".
    """
    old_url = celery_app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    celery_app.conf.broker_url = url
    celery_app._after_fork()
    try:
        yield
    finally:
        monkeypatch.setenv("CELERY_BROKER_URL", old_url)
        celery_app.conf.broker_url = old_url
        celery_app._after_fork()


@pytest.fixture
def operator():
    # A superuser: these workflows have no owner, and other staff act on them only through model permissions.
    return get_user_model().objects.create_superuser("operator", password="pw")


@pytest.fixture
def api(client, operator):
    client.force_login(operator)
    return client


def chain_workflow(name: str, effects: Path, *, steps: int = 3, sleep: float = 0.3):
    """`steps` shell tasks in a chain; each appends '<run id> <task>' to `effects` (the side effect)."""
    tasks = {}
    for index in range(steps):
        task = {"run": f"sleep {sleep}; echo {{{{ run.id }}}} t{index} >> {effects}"}
        if index:
            task["depends_on"] = [f"t{index - 1}"]
        tasks[f"t{index}"] = task
    return workflow_save(source={"name": name, "tasks": tasks})


def create_runs(workflow, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        with transaction.atomic():
            ids.append(services.run_create(workflow=workflow).id)
    return ids


def wait_all_final(run_ids: list[int], timeout: float) -> list[WorkflowRun]:
    def done():
        runs = list(WorkflowRun.objects.filter(id__in=run_ids))
        return runs if all(r.status in FINAL for r in runs) else None

    try:
        return wait_for(done, timeout=timeout, interval=0.2, message=f"runs {run_ids} to reach a final state")
    except AssertionError:
        states = dict(WorkflowRun.objects.filter(id__in=run_ids).values_list("id", "status"))
        tasks = list(TaskRun.objects.filter(run_id__in=run_ids).exclude(status__in=FINAL | {"skipped"})
                     .values_list("run_id", "task_id", "status", "attempt"))
        raise AssertionError(f"not final: {states}; open task runs: {tasks}") from None


def side_effects(effects: Path) -> list[str]:
    return effects.read_text().splitlines() if effects.exists() else []


# --- a) Redis flushed while runs are queued and running ------------------------------------------------------


def test_runs_survive_a_flushed_broker(start_worker, broker, tmp_path):
    effects = tmp_path / "effects"
    workflow = chain_workflow("flushed", effects)
    run_ids = create_runs(workflow, 6)
    start_worker("w1", concurrency=2)
    wait_for(lambda: TaskRun.objects.filter(status="running").exists(), message="a task to run")
    broker.flushdb()  # queued start messages, queued task messages and the unacked running ones are gone

    runs = wait_all_final(run_ids, timeout=90)
    assert {r.status for r in runs} == {"succeeded"}
    lines = side_effects(effects)
    done = {(int(l.split()[0]), l.split()[1]) for l in lines}
    assert done == {(rid, f"t{i}") for rid in run_ids for i in range(3)}
    assert len(lines) == len(done), "a side effect was repeated after the flush"


# --- b) Redis down, then frozen ------------------------------------------------------------------------------


def test_the_api_accepts_runs_while_the_broker_is_down_and_they_finish_when_it_is_back(
        api, start_worker, tmp_path, monkeypatch):
    effects = tmp_path / "effects"
    workflow = chain_workflow("broker down", effects, steps=2, sleep=0)
    server = RedisServer().start()
    try:
        with celery_app_on(server.url, monkeypatch):
            start_worker("w1", concurrency=2, CELERY_BROKER_URL=server.url)
            server.stop()

            timings, run_ids = [], []
            for _ in range(5):
                started = time.monotonic()
                response = api.post(f"/api/workflows/{workflow.id}/run/", {}, content_type="application/json")
                timings.append(time.monotonic() - started)
                assert response.status_code == 202
                run_ids.append(response.json()["run_id"])
            print(f"accept with the broker down: max {max(timings) * 1000:.0f} ms")
            assert max(timings) < 1.0, f"accepting a run took {max(timings):.2f}s with the broker down"
            assert TaskRun.objects.filter(run_id__in=run_ids, task_id="t0", status="queued").count() == 5

            server.start()  # same port: the worker reconnects, its sweeper re-sends the first tasks
            runs = wait_all_final(run_ids, timeout=90)
    finally:
        server.stop()
    assert {r.status for r in runs} == {"succeeded"}
    assert sorted(side_effects(effects)) == sorted(f"{rid} t{i}" for rid in run_ids for i in range(2))


def test_a_frozen_broker_delays_the_accept_by_a_bounded_time(api, tmp_path, monkeypatch):
    """A Redis that accepts TCP but never answers (SIGSTOP, a partition) used to hang the request forever;
    the Operations settings bound each broker socket operation (BROKER_SOCKET_TIMEOUT, 2 s)."""
    workflow = chain_workflow("broker frozen", tmp_path / "effects", steps=1, sleep=0)
    server = RedisServer().start()
    try:
        with celery_app_on(server.url, monkeypatch):
            assert api.post(f"/api/workflows/{workflow.id}/run/").status_code == 202  # warm the pool
            server.process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            response = api.post(f"/api/workflows/{workflow.id}/run/")
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    print(f"accept with the broker frozen: {elapsed:.2f}s")
    assert response.status_code == 202
    stored = WorkflowRun.objects.get(id=response.json()["run_id"])  # its first task left for the sweeper to send
    assert stored.status == "running" and [t.status for t in stored.task_runs.all()] == ["queued"]
    assert elapsed < 10, f"accepting a run took {elapsed:.1f}s with a frozen broker"


# --- c) PostgreSQL connections dropped -----------------------------------------------------------------------


def terminate_other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND application_name = %s",
                       [WORKER_APPLICATION_NAME])
        return cursor.fetchone()[0]


def test_workers_recover_from_dropped_database_connections(start_worker, broker, tmp_path):
    effects = tmp_path / "effects"
    workflow = chain_workflow("pg dropped", effects, steps=3, sleep=1)
    start_worker("w1", concurrency=2)
    start_worker("w2", concurrency=2)
    run_ids = create_runs(workflow, 4)
    wait_for(lambda: TaskRun.objects.filter(status="running").count() >= 2, message="tasks to run")
    killed = terminate_other_backends()
    assert killed >= 2, "the workers held no connection to terminate"

    runs = wait_all_final(run_ids, timeout=120)
    assert not TaskRun.objects.filter(run_id__in=run_ids, status="running").exists()
    assert {r.status for r in runs} == {"succeeded"}, [(r.id, r.status) for r in runs]
    lost = [a for t in TaskRun.objects.filter(run_id__in=run_ids) for a in t.attempts if a["status"] == "lost"]
    lines = side_effects(effects)
    print(f"backends terminated: {killed}; attempts recovered as lost: {len(lost)}; "
          f"side effects {len(lines)} for {len(set(lines))} tasks")
    assert set(lines) == {f"{rid} t{i}" for rid in run_ids for i in range(3)}
    # A task whose connection died mid-attempt is recovered as lost and runs again: at-least-once.
    assert len(lines) - len(set(lines)) <= len(lost)


# --- d) zombie sweeper ---------------------------------------------------------------------------------------


def zombie(tmp_path, *, retries: int = 0) -> TaskRun:
    """A run whose only task run was claimed by a worker that then vanished (heartbeat a minute old)."""
    workflow = workflow_save(source={"name": f"zombie-{uuid.uuid4().hex[:6]}",
                                     "tasks": {"only": {"run": f"echo ran >> {tmp_path / 'effects'}",
                                                        "retries": retries}}})
    stale = timezone.now() - timedelta(minutes=1)
    run = WorkflowRun.objects.create(workflow=workflow, workflow_version=workflow.current_version,
                                     status="running", started_at=stale)
    return TaskRun.objects.create(run=run, task_id="only", status="running", attempt=1, started_at=stale,
                                  heartbeat_at=stale, queued_at=stale, worker="gone:1")


def test_a_zombie_task_run_is_requeued_with_a_lost_attempt_and_then_finishes(start_worker, broker, tmp_path,
                                                                             settings):
    settings.AUTOMATION_TASK_LEASE_SECONDS = 3
    task_run = zombie(tmp_path)
    assert services.sweep()["zombies"] == 1
    task_run.refresh_from_db()
    assert task_run.status == "queued"
    assert [a["status"] for a in task_run.attempts] == ["lost"]
    assert "gone:1 lost" in task_run.logs

    start_worker("w1")
    assert wait_for_run(task_run.run_id).status == "succeeded"
    task_run.refresh_from_db()
    assert task_run.attempt == 2
    assert [a["status"] for a in task_run.attempts] == ["lost", "succeeded"]
    assert side_effects(tmp_path / "effects") == ["ran"]


def test_a_task_run_lost_too_often_is_failed_instead_of_requeued_forever(broker, tmp_path, settings):
    settings.AUTOMATION_TASK_LEASE_SECONDS = 3
    settings.AUTOMATION_MAX_LOST_ATTEMPTS = 3
    task_run = zombie(tmp_path, retries=5)  # `retries` covers failures, not lost workers
    now = timezone.now()
    for sweep_number in range(1, 10):
        services.sweep(now=now)
        task_run.refresh_from_db()
        if task_run.status != "queued":
            break
        # Another worker claims it and dies too.
        stale = now - timedelta(seconds=10)
        TaskRun.objects.filter(id=task_run.id).update(status="running", attempt=task_run.attempt + 1,
                                                      started_at=stale, heartbeat_at=stale)
        now += timedelta(seconds=1)
    assert sweep_number == 3
    assert task_run.status == "failed"
    assert [a["status"] for a in task_run.attempts] == ["lost", "lost", "lost"]
    assert "gave up after 3 lost attempts" in task_run.error
    assert WorkflowRun.objects.get(id=task_run.run_id).status == "failed"
    assert services.sweep(now=now + timedelta(minutes=5))["zombies"] == 0


def test_a_slow_task_that_still_beats_is_not_a_zombie(broker, tmp_path, settings):
    settings.AUTOMATION_TASK_LEASE_SECONDS = 3
    task_run = zombie(tmp_path)
    TaskRun.objects.filter(id=task_run.id).update(heartbeat_at=timezone.now())
    assert services.sweep()["zombies"] == 0
    task_run.refresh_from_db()
    assert task_run.status == "running" and task_run.attempts == []


# --- e) a pickle message on the queue ------------------------------------------------------------------------


class _CreatesFile:
    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickled_message_on_the_queue_is_refused_not_executed(start_worker, broker, tmp_path):
    marker = tmp_path / "unpickled"
    worker = start_worker("w1")
    body = pickle.dumps(((_CreatesFile(marker),), {}, {"callbacks": None, "errbacks": None, "chain": None,
                                                       "chord": None}))
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": "runs.execute_task", "id": task_id, "root_id": task_id, "parent_id": None,
               "group": None, "retries": 0, "eta": None, "expires": None, "argsrepr": "(evil,)",
               "kwargsrepr": "{}", "origin": "attacker", "ignore_result": True}
    with Connection(django_settings.CELERY_BROKER_URL) as conn:
        exchange = Exchange("default", type="direct")
        Producer(conn).publish(body, exchange=exchange, routing_key="default", headers=headers,
                               content_type="application/x-python-serialize", content_encoding="binary",
                               declare=[Queue("default", exchange, routing_key="default")])

    wait_for(lambda: "application/x-python-serialize" in worker.log() or "pickle" in worker.log(),
             timeout=20, message="the worker to refuse the message")
    time.sleep(1)
    assert not marker.exists(), "the pickle payload was executed"
    log = worker.log()
    assert "Refusing to deserialize" in log or "ContentDisallowed" in log or "untrusted content" in log, log[-2000:]
    assert broker.llen("default") == 0, "the refused message went back on the queue"

    workflow = chain_workflow("after pickle", tmp_path / "effects", steps=1, sleep=0)
    assert wait_for_run(create_runs(workflow, 1)[0]).status == "succeeded", "the worker stopped serving"


# --- f) CSRF on session-authenticated writes, no state change on GET -----------------------------------------


def test_session_writes_without_a_csrf_token_are_forbidden(operator, broker, tmp_path):
    workflow = chain_workflow("csrf", tmp_path / "effects", steps=1, sleep=0)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)

    created = browser.post("/api/workflows/", {"definition": {"name": "x", "tasks": {"a": {"run": "true"}}}},
                           content_type="application/json")
    assert created.status_code == 403
    assert "CSRF" in created.json()["errors"][0]["message"]
    started = browser.post(f"/api/workflows/{workflow.id}/run/", {}, content_type="application/json")
    assert started.status_code == 403
    assert WorkflowRun.objects.count() == 0

    browser.get("/accounts/login/")  # a page that hands out the CSRF cookie
    token = browser.cookies["csrftoken"].value
    allowed = browser.post(f"/api/workflows/{workflow.id}/run/", {}, content_type="application/json",
                           HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 202
    assert WorkflowRun.objects.count() == 1


def test_token_authenticated_writes_need_no_csrf_token(operator, broker, tmp_path):
    from rest_framework.authtoken.models import Token

    workflow = chain_workflow("token", tmp_path / "effects", steps=1, sleep=0)
    token = Token.objects.create(user=operator)
    response = Client(enforce_csrf_checks=True).post(f"/api/workflows/{workflow.id}/run/",
                                                     HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 202


def test_get_on_the_run_action_changes_nothing(api, broker, tmp_path):
    workflow = chain_workflow("get", tmp_path / "effects", steps=1, sleep=0)
    assert api.get(f"/api/workflows/{workflow.id}/run/").status_code == 405
    run_id = create_runs(workflow, 1)[0]
    WorkflowRun.objects.filter(id=run_id).update(status="failed")
    for path in (f"/api/runs/{run_id}/retry/", f"/api/runs/{run_id}/cancel/", f"/api/runs/{run_id}/rerun/"):
        assert api.get(path).status_code == 405, path
    assert WorkflowRun.objects.count() == 1
    assert WorkflowRun.objects.get(id=run_id).status == "failed"

"""Recovery in seconds with the shipped settings: a killed worker's task, a flushed broker's queued work, a message
that was never published; and no false alarm for a long silent task on a live worker (runs.workers heartbeat
rows, runs.recovery's look into the broker)."""
from __future__ import annotations

import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automation.testing import WorkerProcess, wait_for, worker_environment
from runs import recovery, services, workers
from runs.models import TaskRun, WorkerHeartbeat, WorkflowRun
from workflows.services import workflow_save

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
# The test suite's short recovery timings (automation.testing); these tests drop them to run on the defaults.
TEST_TIMINGS = ("AUTOMATION_TASK_LEASE_SECONDS", "AUTOMATION_HEARTBEAT_SECONDS", "AUTOMATION_SWEEP_SECONDS",
                "AUTOMATION_REQUEUE_AFTER_SECONDS")


@pytest.fixture
def default_worker(broker):
    """Start workers with the default lease, sweep and re-send timings; all are stopped when the test ends."""
    started: list[WorkerProcess] = []

    def start(name: str, *, concurrency: int = 1, **overrides: str) -> WorkerProcess:
        env = worker_environment(AUTOMATION_FILES_ROOT=str(settings.AUTOMATION_FILES_ROOT))
        for timing in TEST_TIMINGS:
            env.pop(timing)
        env.update(overrides)
        worker = WorkerProcess(name, concurrency=concurrency, env=env)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


def chain(effects: Path, *, first: str, steps: int = 2):
    """`steps` shell tasks in a chain, each appending '<run id> t<n>' to `effects`; t0 then runs `first`."""
    tasks = {}
    for index in range(steps):
        command = f"echo {{{{ run.id }}}} t{index} >> {effects}"
        tasks[f"t{index}"] = {"run": f"{command}; {first}" if index == 0 else command}
        if index:
            tasks[f"t{index}"]["depends_on"] = [f"t{index - 1}"]
    return workflow_save(source={"name": f"recovery-{uuid.uuid4().hex[:6]}", "tasks": tasks})


def start_runs(workflow, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        with transaction.atomic():
            ids.append(services.run_create(workflow=workflow).id)
    return ids


def finished_within(run_ids: list[int], seconds: float, since: float) -> list[WorkflowRun]:
    def done():
        runs = list(WorkflowRun.objects.filter(id__in=run_ids))
        return runs if all(r.status in {"succeeded", "failed", "cancelled"} for r in runs) else None

    runs = wait_for(done, timeout=seconds - (time.monotonic() - since), interval=0.1,
                    message=f"runs {run_ids} to finish within {seconds}s of the fault")
    print(f"recovered {time.monotonic() - since:.1f}s after the fault")
    return runs


def lines(effects: Path) -> list[str]:
    return effects.read_text().splitlines() if effects.exists() else []


# --- with real workers on the default settings --------------------------------------------------------------


def test_a_killed_workers_task_runs_again_within_15_seconds(default_worker, tmp_path):
    effects = tmp_path / "effects"
    [run_id] = start_runs(chain(effects, first="sleep 2"), 1)
    first = default_worker("w1")
    wait_for(lambda: lines(effects), timeout=30, message="t0 to be running")
    first.kill()  # the main process and its pool child, mid-task
    killed_at = time.monotonic()
    default_worker("w2")

    [run] = finished_within([run_id], 15, killed_at)
    assert run.status == "succeeded"
    t0 = TaskRun.objects.get(run_id=run_id, task_id="t0")
    assert [a["status"] for a in t0.attempts] == ["lost", "succeeded"]
    assert lines(effects) == [f"{run_id} t0", f"{run_id} t0", f"{run_id} t1"]  # t0 was cut short, then ran again


def test_queued_work_finishes_within_15_seconds_of_a_broker_flush(default_worker, broker, tmp_path):
    effects = tmp_path / "effects"
    run_ids = start_runs(chain(effects, first="sleep 1"), 3)
    default_worker("w1")  # one process: while it runs the first t0 the other runs wait in the broker
    wait_for(lambda: lines(effects), timeout=30, message="a task to run")
    broker.flushdb()  # the waiting start and task messages, the running one's unacked entry, the epoch key
    flushed_at = time.monotonic()

    runs = finished_within(run_ids, 15, flushed_at)
    assert {r.status for r in runs} == {"succeeded"}
    assert sorted(lines(effects)) == sorted(f"{rid} t{i}" for rid in run_ids for i in range(2)), "a task ran twice"


def test_a_long_silent_task_on_a_live_worker_is_not_run_again(default_worker, tmp_path):
    """No task heartbeat at all (it would come every 600 s) and a 3 s lease: only the worker's own beat says the
    task is in good hands, and that is enough."""
    effects = tmp_path / "effects"
    [run_id] = start_runs(chain(effects, first="sleep 12", steps=1), 1)
    default_worker("w1", AUTOMATION_HEARTBEAT_SECONDS="600", AUTOMATION_TASK_LEASE_SECONDS="3",
                   AUTOMATION_SWEEP_SECONDS="0.5")
    default_worker("w2", AUTOMATION_TASK_LEASE_SECONDS="3", AUTOMATION_SWEEP_SECONDS="0.5")  # sweeps too

    [run] = finished_within([run_id], 40, time.monotonic())
    assert run.status == "succeeded"
    task_run = TaskRun.objects.get(run_id=run_id)
    assert task_run.attempt == 1 and [a["status"] for a in task_run.attempts] == ["succeeded"]
    assert lines(effects) == [f"{run_id} t0"]


def test_a_cleanly_stopped_worker_leaves_no_heartbeat_row(default_worker):
    worker = default_worker("w1", concurrency=2)
    beating = wait_for(lambda: WorkerHeartbeat.objects.count() >= 3, timeout=10,
                       message="the main process and both pool children to beat")
    assert beating
    worker.stop()
    assert not WorkerHeartbeat.objects.exists()


# --- the sweep's decisions, on the real database and Redis ------------------------------------------------------


def running_task_run(worker: str, *, task_heartbeat_age: float) -> TaskRun:
    workflow = workflow_save(source={"name": f"sweep-{uuid.uuid4().hex[:6]}", "tasks": {"only": {"run": "true"}}})
    beat = timezone.now() - timedelta(seconds=task_heartbeat_age)
    run = WorkflowRun.objects.create(workflow=workflow, workflow_version=workflow.current_version,
                                     status="running", started_at=beat)
    return TaskRun.objects.create(run=run, task_id="only", status="running", attempt=1, started_at=beat,
                                  heartbeat_at=beat, queued_at=beat, worker=worker)


def test_a_dead_workers_task_is_recovered_at_once_and_a_live_workers_quiet_task_is_left(broker):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="elsewhere:1", beat_at=now - timedelta(seconds=6))  # dead: 6 s > 5 s
    WorkerHeartbeat.objects.create(name="elsewhere:2", beat_at=now)  # alive
    dead = running_task_run("elsewhere:1", task_heartbeat_age=0)  # its own heartbeat is fresh, the worker is not
    quiet = running_task_run("elsewhere:2", task_heartbeat_age=600)  # silent for 10 minutes, its worker beats
    old_style = running_task_run("elsewhere:3", task_heartbeat_age=600)  # no row: the lease decides

    assert services.sweep(now=now)["zombies"] == 2
    assert TaskRun.objects.get(id=dead.id).status == "queued"
    assert TaskRun.objects.get(id=quiet.id).status == "running"
    assert TaskRun.objects.get(id=old_style.id).status == "queued"


def test_a_worker_pid_gone_on_this_machine_is_dead_before_its_beat_is_old(broker):
    process = subprocess.Popen(["true"])
    process.wait()  # a pid that existed and is gone now
    name = f"{workers.process_name().rpartition(':')[0]}:{process.pid}"
    WorkerHeartbeat.objects.create(name=name, beat_at=timezone.now(), machine=workers.machine())
    task_run = running_task_run(name, task_heartbeat_age=0)

    assert services.sweep()["zombies"] == 1
    assert TaskRun.objects.get(id=task_run.id).status == "queued"


def queued_task_run(seconds_ago: float) -> TaskRun:
    workflow = workflow_save(source={"name": f"queued-{uuid.uuid4().hex[:6]}", "tasks": {"only": {"run": "true"}}})
    run = WorkflowRun.objects.create(workflow=workflow, workflow_version=workflow.current_version, status="running")
    return TaskRun.objects.create(run=run, task_id="only", status="queued",
                                  queued_at=timezone.now() - timedelta(seconds=seconds_ago))


def waiting_task_runs(broker) -> list[int]:
    return sorted(call[1] for call in map(recovery._call_of, broker.lrange("default", 0, -1))
                  if call and call[0] == "runs.execute_task")


def test_a_task_message_that_was_never_published_is_sent_within_seconds(broker):
    services.sweep()  # the broker's epoch key is written (the empty broker "lost" nothing yet)
    unsent = queued_task_run(seconds_ago=settings.AUTOMATION_LOST_MESSAGE_SECONDS + 1)  # its publish failed
    sent = queued_task_run(seconds_ago=settings.AUTOMATION_LOST_MESSAGE_SECONDS + 1)
    services.enqueue_task_run(sent.id, "default")  # waiting in the queue, behind a busy worker
    fresh = queued_task_run(seconds_ago=0)  # its message may still be on the way

    assert services.sweep()["requeued"] == 1
    assert waiting_task_runs(broker) == sorted([sent.id, unsent.id])
    assert services.sweep()["requeued"] == 0, "sent twice"
    assert fresh.id not in waiting_task_runs(broker)


def test_after_a_flush_every_queued_task_run_and_run_is_sent_again_once(broker):
    services.sweep()
    task_run = queued_task_run(seconds_ago=0)
    queued_run = WorkflowRun.objects.create(workflow=task_run.run.workflow,
                                            workflow_version=task_run.run.workflow_version)
    broker.flushdb()

    counts = services.sweep()
    assert (counts["requeued"], counts["restarted"]) == (1, 1)
    assert waiting_task_runs(broker) == [task_run.id]
    assert any(recovery._call_of(m) == ("runs.start_run", queued_run.id) for m in broker.lrange("default", 0, -1))
    assert services.sweep()["requeued"] == 0


def test_rows_of_workers_dead_for_an_hour_are_forgotten(broker, monkeypatch):
    monkeypatch.setattr(recovery, "_last_done", {})  # as in a worker whose sweeper did not forget yet
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="elsewhere:1", beat_at=now - workers.FORGET_AFTER - timedelta(minutes=1))
    WorkerHeartbeat.objects.create(name="elsewhere:2", beat_at=now - timedelta(minutes=10))  # dead, not forgotten
    services.sweep(now=now)
    assert set(WorkerHeartbeat.objects.values_list("name", flat=True)) == {"elsewhere:2"}

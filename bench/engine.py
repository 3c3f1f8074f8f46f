"""Engine overhead per task vs raw Celery, on the same Redis broker and the same worker processes.

    python bench/engine.py [--tasks 200,1000] [--repeat 3] [--concurrency 2]

Creates (and migrates) the PostgreSQL database `flowforge_bench_engine` (BENCH_ENGINE_DB overrides the name),
starts one prefork worker (`-c 2`, acks_late, prefetch 1), then measures, for each N of `--tasks`:
  - raw Celery: a chain of N tasks that each enqueue the next; N no-op tasks fanned out
  - engine: a workflow chain of N no-op tasks; a root fanned out to N - 2 tasks joined by one (N in all)
and prints wall time per task, the ratio engine / raw, and how the engine's per-task cost grows from the
smallest N to the largest (flat is 1.00).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_ENGINE_DB", "flowforge_bench_engine")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
os.environ["DJANGO_SETTINGS_MODULE"] = "automation.settings"


def prepare_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


def start_worker(concurrency: int) -> subprocess.Popen:
    log = open("/tmp/bench-engine-worker.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "worker", "-c", str(concurrency), "--pool", "prefork",
         "-l", "warning", "--include", "bench.celery_noop", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-Q", "default"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    return proc


def wait(predicate, timeout=120.0, interval=0.005):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(interval)


def raw_chain(n: int, client) -> float:
    from bench.celery_noop import hop

    key = f"bench:{uuid.uuid4()}"
    started = time.perf_counter()
    hop.delay(n - 1, key)
    wait(lambda: client.get(key))
    return (time.perf_counter() - started) / n


def raw_fanout(n: int, client) -> float:
    from bench.celery_noop import noop

    key = f"bench:{uuid.uuid4()}"
    started = time.perf_counter()
    for _ in range(n):
        noop.delay(key)
    wait(lambda: int(client.get(key) or 0) >= n)
    return (time.perf_counter() - started) / n


def engine_run(definition: dict, n_tasks: int) -> float:
    from django.db import transaction

    from runs.models import WorkflowRun
    from runs.services import run_create
    from workflows.services import workflow_save

    workflow = workflow_save(source=definition)
    with transaction.atomic():
        run = run_create(workflow=workflow, trigger={})
    # Poll slowly and time from the database's own timestamps, so polling does not steal the workers' CPU.
    wait(lambda: WorkflowRun.objects.filter(id=run.id, status__in=["succeeded", "failed"]).exists(), interval=0.1)
    run.refresh_from_db()
    assert run.status == "succeeded", f"benchmark run {run.id} ended {run.status}"
    return (run.finished_at - run.created_at).total_seconds() / n_tasks


NOOP = {"action": "transform.jinja", "inputs": {"value": "ok"}}


def chain_definition(n: int, tag: str) -> dict:
    tasks = {f"t{i}": {**NOOP, "depends_on": [f"t{i - 1}"]} if i else dict(NOOP) for i in range(n)}
    return {"name": f"bench chain {tag}", "tasks": tasks}


def fan_definition(n: int, tag: str) -> dict:
    """N tasks in all (the workflow limit is 1,000): a root, N - 2 tasks after it, one task joining them."""
    tasks = {"root": dict(NOOP)}
    tasks.update({f"f{i}": {**NOOP, "depends_on": ["root"]} for i in range(n - 2)})
    tasks["join"] = {**NOOP, "depends_on": [f"f{i}" for i in range(n - 2)]}
    return {"name": f"bench fan {tag}", "tasks": tasks}


SHAPES = ("chain", "fan-out/fan-in")


def measure(n: int, label: str, repeat: int, client) -> tuple[float, float]:
    """(raw Celery, engine) seconds per task for one shape at N tasks, each the median of `repeat`."""
    if label == "chain":
        raw, engine = (lambda: raw_chain(n, client)), chain_definition
    else:
        raw, engine = (lambda: raw_fanout(n, client)), fan_definition
    raw_times = [raw() for _ in range(repeat)]
    engine_times = [engine_run(engine(n, f"{n}-{i}"), n) for i in range(repeat)]
    return statistics.median(raw_times), statistics.median(engine_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="200,1000", help="comma-separated task counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    prepare_database()
    import django

    django.setup()
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    worker = start_worker(args.concurrency)
    try:
        from bench.celery_noop import noop

        key = f"bench:warm:{uuid.uuid4()}"
        noop.delay(key)
        wait(lambda: client.get(key), timeout=60)
        sizes = [int(size) for size in args.tasks.split(",")]
        rows = [(n, label, *measure(n, label, args.repeat, client)) for n in sizes for label in SHAPES]
        print(f"Engine overhead per task (median of {args.repeat}, 1 worker prefork -c {args.concurrency}, "
              f"Redis broker, PostgreSQL)")
        print(f"{'tasks':>6}  {'shape':<16}{'raw Celery ms/task':>20}{'engine ms/task':>16}{'ratio':>8}")
        for n, label, raw_s, engine_s in rows:
            print(f"{n:>6}  {label:<16}{raw_s * 1000:>20.2f}{engine_s * 1000:>16.2f}{engine_s / raw_s:>8.2f}")
        if len(sizes) > 1:
            engine_by = {(n, label): engine_s for n, label, _, engine_s in rows}
            for label in SHAPES:
                growth = engine_by[(sizes[-1], label)] / engine_by[(sizes[0], label)]
                print(f"{label}: engine ms/task at {sizes[-1]} / at {sizes[0]} = {growth:.2f}")
    finally:
        os.killpg(worker.pid, 15)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)


if __name__ == "__main__":
    main()

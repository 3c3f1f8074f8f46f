"""Run-history benchmark: are the runs list API and the admin runs list fast at 100k runs / 1M task runs?

    .venv/bin/python bench/history.py [--refill] [--runs 100000] [--tasks-per-run 10]

Creates (and migrates) the PostgreSQL database `flowforge_history_bench` next to the one in $BENCH_PG_URL
(default postgres://postgres@127.0.0.1:5432), fills it in a few seconds with set-based INSERT ... SELECT
FROM generate_series (no per-row Python), then times with an authenticated Django test client the median of
10 requests per page. Target: every page <= 150 ms. Exits 1 when a page is slower.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "flowforge_history_bench"
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
WORKFLOWS = 7  # coprime with the 1-in-10 failure pattern, so every workflow has failed runs
TARGET_MS = 150.0
SAMPLES = 10


def ensure_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            print(f"created database {DB_NAME}")


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def chain_definition(index: int, tasks: int) -> dict:
    steps = {f"t{n}": {"run": f"echo step {n}", **({"depends_on": [f"t{n - 1}"]} if n else {})}
             for n in range(tasks)}
    return {"name": f"bench {index}", "tasks": steps}


def fill(runs: int, tasks_per_run: int, refill: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from runs.models import TaskRun, WorkflowRun
    from workflows.models import Workflow
    from workflows.services import workflow_save

    have_runs = WorkflowRun.objects.count()
    if have_runs >= runs and not refill:
        print(f"database already holds {have_runs} runs and {TaskRun.objects.count()} task runs; --refill to redo")
        return
    started = time.perf_counter()
    users = get_user_model()
    owner = users.objects.filter(username="bench").first() or users.objects.create_superuser("bench", password="bench")
    for index in range(WORKFLOWS):
        workflow_save(source=chain_definition(index, tasks_per_run), owner=owner)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE runs_taskrun, runs_workflowrun RESTART IDENTITY CASCADE")
        # Runs: newest last, one every 30 s, spread over the workflows; 10% failed, ~3% cancelled,
        # the newest 100 still running.
        cursor.execute("""
            INSERT INTO runs_workflowrun (id, workflow_id, workflow_version_id, status, trigger_kind, trigger,
                                          reuse_tasks, created_at, started_at, finished_at, parent_id)
            SELECT g, w.id, w.current_version_id,
                   CASE WHEN g > %(n)s - 100 THEN 'running' WHEN g %% 10 = 3 THEN 'failed'
                        WHEN g %% 33 = 5 THEN 'cancelled' ELSE 'succeeded' END,
                   (ARRAY['manual', 'webhook', 'cron', 'poll'])[1 + g %% 4],
                   jsonb_build_object('body', jsonb_build_object('n', g, 'user', 'user-' || g)), '[]'::jsonb,
                   now() - make_interval(secs => (%(n)s - g) * 30),
                   now() - make_interval(secs => (%(n)s - g) * 30 - 1),
                   CASE WHEN g > %(n)s - 100 THEN NULL ELSE now() - make_interval(secs => (%(n)s - g) * 30 - 12) END,
                   NULL
            FROM generate_series(1, %(n)s) AS g
            JOIN (SELECT id, current_version_id, row_number() OVER (ORDER BY id) - 1 AS k
                  FROM workflows_workflow WHERE name LIKE 'bench %%') AS w ON w.k = g %% %(w)s
        """, {"n": runs, "w": WORKFLOWS})
        cursor.execute("SELECT setval(pg_get_serial_sequence('runs_workflowrun', 'id'), %s)", [runs])
        cursor.execute("""
            INSERT INTO runs_taskrun (run_id, task_id, status, attempt, queue, inputs, output, error, logs, attempts,
                                      queued_at, not_before, started_at, heartbeat_at, finished_at, worker)
            SELECT r.id, 't' || t,
                   CASE WHEN r.status = 'failed' AND t = 5 THEN 'failed'
                        WHEN r.status = 'failed' AND t > 5 THEN 'skipped'
                        WHEN r.status = 'cancelled' AND t > 5 THEN 'cancelled'
                        WHEN r.status = 'running' AND t = 5 THEN 'running'
                        WHEN r.status = 'running' AND t > 5 THEN 'pending'
                        ELSE 'succeeded' END,
                   1, 'default', jsonb_build_object('command', 'echo step ' || t),
                   jsonb_build_object('stdout', 'step ' || t || E'\n', 'stderr', '', 'exit_code', 0),
                   CASE WHEN r.status = 'failed' AND t = 5 THEN 'exit code 3' ELSE '' END,
                   repeat('[' || r.id || '/t' || t || '] working on it' || E'\n', 3), '[]'::jsonb,
                   r.started_at, NULL, r.started_at + make_interval(secs => t),
                   r.started_at + make_interval(secs => t),
                   CASE WHEN r.status = 'running' AND t >= 5 THEN NULL
                        ELSE r.started_at + make_interval(secs => t + 1) END,
                   'bench@host'
            FROM runs_workflowrun AS r CROSS JOIN generate_series(0, %(t)s - 1) AS t
        """, {"t": tasks_per_run})
        cursor.execute("ANALYZE runs_workflowrun")
        cursor.execute("ANALYZE runs_taskrun")
    print(f"filled {WorkflowRun.objects.count()} runs and {TaskRun.objects.count()} task runs "
          f"in {time.perf_counter() - started:.1f} s")


def median_ms(client, url: str) -> float:
    for _ in range(2):  # warm caches and the connection
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:500])
    samples = []
    for _ in range(SAMPLES):
        began = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples)


def measure() -> bool:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from runs.models import WorkflowRun
    from workflows.models import Workflow

    workflow = Workflow.objects.filter(name__startswith="bench ").order_by("id").first()
    failed_run = WorkflowRun.objects.filter(workflow=workflow, status="failed").order_by("-id").first()
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    pages = {
        "API  /api/runs/ (first page)": "/api/runs/",
        "API  /api/runs/?status=failed&workflow=..": f"/api/runs/?status=failed&workflow={workflow.id}",
        "API  /api/runs/?created_after=.. (last 24 h)": "/api/runs/?created_after="
                                                      + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400)),
        "API  /api/runs/<id>/ (10 task runs)": f"/api/runs/{failed_run.id}/",
        "admin runs changelist": "/admin/runs/workflowrun/",
        "admin runs changelist ?status=failed&workflow=..":
            f"/admin/runs/workflowrun/?status__exact=failed&workflow__id__exact={workflow.id}",
        "admin run page (10 task runs)": f"/admin/runs/workflowrun/{failed_run.id}/change/",
        "admin index (dashboard)": "/admin/",
        "admin workflows changelist (runs count, last status)": "/admin/workflows/workflow/",
        "admin workflow page (graph, storage used)": f"/admin/workflows/workflow/{workflow.id}/change/",
    }
    informational = {"admin workflow page (graph, storage used)"}  # sums a whole history; not a list page
    ok = True
    print(f"\nmedian of {SAMPLES} requests, authenticated Django test client (target <= {TARGET_MS:.0f} ms)")
    for label, url in pages.items():
        took = median_ms(client, url)
        verdict = "ok" if took <= TARGET_MS else ("(info)" if label in informational else "SLOW")
        ok &= took <= TARGET_MS or label in informational
        print(f"  {label:<54} {took:8.1f} ms  {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--tasks-per-run", type=int, default=10)
    parser.add_argument("--refill", action="store_true", help="empty the run tables and fill them again")
    args = parser.parse_args()
    ensure_database()
    setup_django()
    fill(args.runs, args.tasks_per_run, args.refill)
    return 0 if measure() else 1


if __name__ == "__main__":
    sys.exit(main())

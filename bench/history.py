"""Run-history benchmark: are the runs API and the admin pages fast at 1M runs / 10M task runs?

    .venv/bin/python bench/history.py [--refill] [--runs 1000000] [--tasks-per-run 10]

Creates (and migrates) the PostgreSQL database `flowforge_history_bench` next to the one in $BENCH_PG_URL
(default postgres://postgres@127.0.0.1:5432) and fills it with set-based INSERT ... SELECT FROM generate_series
(no per-row Python; secondary indexes and foreign-key checks off during the fill, rebuilt after, then VACUUM
ANALYZE). A database that already holds enough runs is reused; --refill empties and fills it again. Then times
every page with a Django test client (a superuser, and two owners who see only their own runs): median and max
of 10 requests. Target: every page's median <= 150 ms; exits 1 when one is slower. The dashboard reads queue
depths from the Redis in $BENCH_REDIS_URL (default redis://127.0.0.1:6379/7).
"""
from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "flowforge_history_bench"
SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
WORKFLOWS = 7  # coprime with the 1-in-10 failure pattern, so every workflow has failed runs
RARE_RUNS = 20  # the oldest runs, given to an owner who has nothing newer: their list must not walk the history
TARGET_MS = 150.0
SAMPLES = 10
TABLES = ("runs_workflowrun", "runs_taskrun")


def ensure_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            print(f"created database {DB_NAME}")


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automation.settings")
    os.environ["CELERY_BROKER_URL"] = REDIS
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def chain_definition(index: int, tasks: int) -> dict:
    steps = {f"t{n}": {"run": f"echo step {n}", **({"depends_on": [f"t{n - 1}"]} if n else {})}
             for n in range(tasks)}
    return {"name": f"bench {index}", "tasks": steps}


INSERT_RUNS = """
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
          FROM workflows_workflow WHERE name LIKE 'bench %%' AND owner_id = %(owner)s) AS w
      ON w.k = g %% %(w)s
"""
# Runs: newest last, one every 30 s, spread over the workflows; 10% failed, ~3% cancelled, the newest 100 still
# running (half of them with a waiting task). Ten task runs per run, as a chain would leave them.
INSERT_TASK_RUNS = """
    INSERT INTO runs_taskrun (run_id, task_id, status, attempt, queue, inputs, output, error, logs, attempts,
                              queued_at, not_before, started_at, heartbeat_at, finished_at, worker)
    SELECT r.id, 't' || t,
           CASE WHEN r.status = 'failed' AND t = 5 THEN 'failed'
                WHEN r.status = 'failed' AND t > 5 THEN 'skipped'
                WHEN r.status = 'cancelled' AND t > 5 THEN 'cancelled'
                WHEN r.status = 'running' AND t = 5 THEN (CASE WHEN r.id %% 2 = 0 THEN 'waiting' ELSE 'running' END)
                WHEN r.status = 'running' AND t > 5 THEN 'pending'
                ELSE 'succeeded' END,
           1, 'default', jsonb_build_object('command', 'echo step ' || t),
           jsonb_build_object('stdout', 'step ' || t || E'\\n', 'stderr', '', 'exit_code', 0),
           CASE WHEN r.status = 'failed' AND t = 5 THEN 'exit code 3' ELSE '' END,
           repeat('[' || r.id || '/t' || t || '] working on it' || E'\\n', 3), '[]'::jsonb,
           r.started_at, NULL, r.started_at + make_interval(secs => t),
           r.started_at + make_interval(secs => t),
           CASE WHEN r.status = 'running' AND t >= 5 THEN NULL
                ELSE r.started_at + make_interval(secs => t + 1) END,
           'bench@host'
    FROM runs_workflowrun AS r CROSS JOIN generate_series(0, %(t)s - 1) AS t
"""


def secondary_indexes(cursor) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the run tables' indexes that back no constraint: dropped around the fill."""
    cursor.execute("""
        SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index AS x
        JOIN pg_class AS i ON i.oid = x.indexrelid JOIN pg_class AS t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.oid)
    """, [list(TABLES)])
    return cursor.fetchall()


def fill(runs: int, tasks_per_run: int, refill: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from runs.models import WorkflowRun
    from workflows.models import Workflow
    from workflows.services import workflow_save

    have_runs = WorkflowRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if have_runs >= runs and not refill:
        print(f"database already holds {have_runs} runs; --refill to fill it again")
        return
    started = time.perf_counter()
    users = get_user_model()
    owner = users.objects.filter(username="bench").first() or users.objects.create_superuser("bench", password="bench")
    Workflow.objects.filter(name__startswith="bench ").update(owner=owner)  # scoped_users() lent one out
    existing = {workflow.name: workflow for workflow in Workflow.objects.filter(owner=owner)}
    for index in range(WORKFLOWS):  # a create never updates: an existing one gets a new version if it changed
        workflow_save(source=chain_definition(index, tasks_per_run), owner=owner,
                      workflow=existing.get(f"bench {index}"))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE runs_taskrun, runs_workflowrun RESTART IDENTITY CASCADE")
        indexes = secondary_indexes(cursor)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # Bench database only: no foreign-key trigger per row (the rows are made consistent by construction).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(INSERT_RUNS, {"n": runs, "w": WORKFLOWS, "owner": owner.id})
        cursor.execute("SELECT setval(pg_get_serial_sequence('runs_workflowrun', 'id'), %s)", [runs])
        cursor.execute(INSERT_TASK_RUNS, {"t": tasks_per_run})
        cursor.execute("SET session_replication_role = DEFAULT")
        inserted = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, create in indexes:
            cursor.execute(create)
        indexed = time.perf_counter()
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"filled {runs} runs and {runs * tasks_per_run} task runs in {time.perf_counter() - started:.1f} s "
          f"(insert {inserted - started:.1f} s, {len(indexes)} indexes {indexed - inserted:.1f} s, "
          f"vacuum analyze {time.perf_counter() - indexed:.1f} s)")


def scoped_users() -> tuple:
    """Two owners who are not superusers: one owns a busy workflow, one owns only the oldest few runs."""
    from django.contrib.auth import get_user_model

    from runs.models import WorkflowRun
    from workflows.models import Workflow
    from workflows.services import workflow_save

    users = get_user_model()
    busy = users.objects.filter(username="bench-owner").first() or users.objects.create_user("bench-owner")
    rare = users.objects.filter(username="bench-rare").first() or users.objects.create_user("bench-rare")
    Workflow.objects.filter(name="bench 0").update(owner=busy)
    workflow = Workflow.objects.filter(owner=rare).first()
    if workflow is None:
        workflow = workflow_save(source=chain_definition(99, 2) | {"name": "rare"}, owner=rare)
    WorkflowRun.objects.filter(id__lte=RARE_RUNS).update(workflow=workflow,
                                                         workflow_version_id=workflow.current_version_id)
    return busy, rare


def cursor_at(position: int) -> str:
    """A runs-list cursor (DRF CursorPagination) that starts below run `position`: a deep page."""
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


def timed_ms(client, url: str) -> list[float]:
    for _ in range(2):  # warm caches and the connection
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:500])
    samples = []
    for _ in range(SAMPLES):
        began = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples


def pages(runs: int) -> list[tuple[str, str, str]]:
    """(who, label, url) of every page that reads the run history."""
    from runs.models import WorkflowRun
    from workflows.models import Workflow

    workflow = Workflow.objects.filter(name="bench 1").get()
    failed_run = WorkflowRun.objects.filter(workflow=workflow, status="failed").order_by("-id").first()
    old_run = WorkflowRun.objects.filter(workflow=workflow, status="failed", id__lt=runs // 2).order_by("-id").first()
    day_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    hundred_days_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 100 * 86400))
    deep = f"cursor={cursor_at(runs // 2)}"
    runs_admin = "/admin/runs/workflowrun/"
    return [
        ("bench", "API  runs (first page)", "/api/runs/"),
        ("bench", "API  runs, deep page (cursor at the middle)", f"/api/runs/?{deep}"),
        ("bench", "API  runs ?status=failed", "/api/runs/?status=failed"),
        ("bench", "API  runs ?workflow=..", f"/api/runs/?workflow={workflow.id}"),
        ("bench", "API  runs ?status=failed&workflow=..", f"/api/runs/?status=failed&workflow={workflow.id}"),
        ("bench", "API  runs ?status=failed&workflow=.., deep", f"/api/runs/?status=failed&workflow={workflow.id}"
                                                                f"&{deep}"),
        ("bench", "API  runs ?status=waiting", "/api/runs/?status=waiting"),
        ("bench", "API  runs ?trigger_kind=webhook", "/api/runs/?trigger_kind=webhook"),
        ("bench", "API  runs ?created_after=.. (last 24 h)", f"/api/runs/?created_after={day_ago}"),
        ("bench", "API  runs ?created_before=2000-01-01 (none)", "/api/runs/?created_before=2000-01-01"),
        ("bench", "API  runs ?created_before=.. (100 days ago)", f"/api/runs/?created_before={hundred_days_ago}"),
        ("bench", "API  runs ?status=failed&created_before=..",
         f"/api/runs/?status=failed&created_before={hundred_days_ago}"),
        ("bench", "API  runs ?page_size=500", "/api/runs/?page_size=500"),
        ("bench", "API  run detail (10 task runs)", f"/api/runs/{failed_run.id}/"),
        ("bench", "API  run detail, an old run", f"/api/runs/{old_run.id}/"),
        ("bench", "API  task logs", f"/api/runs/{failed_run.id}/tasks/t5/logs/"),
        ("bench-owner", "API  runs, owner of 1 of 7 workflows", "/api/runs/"),
        ("bench-owner", "API  runs, that owner ?status=failed", "/api/runs/?status=failed"),
        ("bench-rare", f"API  runs, owner of the {RARE_RUNS} oldest runs only", "/api/runs/"),
        ("bench-rare", "API  runs, that owner ?status=failed", "/api/runs/?status=failed"),
        ("bench", "admin runs changelist", runs_admin),
        ("bench", "admin runs changelist ?status=failed", f"{runs_admin}?status__exact=failed"),
        ("bench", "admin runs changelist ?workflow=..", f"{runs_admin}?workflow__id__exact={workflow.id}"),
        ("bench", "admin runs changelist ?status=failed&workflow=..",
         f"{runs_admin}?status__exact=failed&workflow__id__exact={workflow.id}"),
        ("bench", "admin runs changelist ?trigger_kind=cron", f"{runs_admin}?trigger_kind=cron"),
        ("bench", "admin runs changelist, created since yesterday",
         f"{runs_admin}?created_at__gte={day_ago}+00:00:00%2B00:00"),
        ("bench", "admin runs changelist, search by id", f"{runs_admin}?q={old_run.id}"),
        ("bench", "admin runs changelist, page 200", f"{runs_admin}?p=200"),
        ("bench", "admin runs changelist, page 10000 (offset 500k)", f"{runs_admin}?p=10000"),
        ("bench", "admin runs changelist sorted by status", f"{runs_admin}?o=2"),
        ("bench", "admin runs changelist sorted by workflow", f"{runs_admin}?o=3"),
        ("bench", "admin runs changelist sorted by trigger", f"{runs_admin}?o=4"),
        ("bench", "admin runs changelist sorted by created", f"{runs_admin}?o=5"),
        ("bench", "admin runs changelist sorted by started desc", f"{runs_admin}?o=-6"),
        ("bench", "admin run page (10 task runs)", f"{runs_admin}{failed_run.id}/change/"),
        ("bench", "admin run page, live refresh", f"{runs_admin}{failed_run.id}/live/"),
        ("bench", "admin task logs", f"{runs_admin}{failed_run.id}/tasks/t5/logs/"),
        ("bench", "admin index (dashboard)", "/admin/"),
        ("bench", "admin workflows changelist (runs count, last status)", "/admin/workflows/workflow/"),
        ("bench", "admin workflow page (graph, storage used)", f"/admin/workflows/workflow/{workflow.id}/change/"),
    ]


def measure(runs: int) -> bool:
    from django.contrib.auth import get_user_model
    from django.test import Client

    scoped_users()
    clients = {}
    for user in get_user_model().objects.filter(username__startswith="bench"):
        clients[user.username] = Client()
        clients[user.username].force_login(user)
    informational = {"admin workflow page (graph, storage used)"}  # sums a whole history; not a list page
    ok = True
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"\n{SAMPLES} requests per page, Django test client (target: median <= {TARGET_MS:.0f} ms); "
          f"load average {load} on {os.cpu_count()} cores (a shared machine is noisy)")
    print(f"  {'page':<58} {'user':<12} {'median':>8} {'max':>8}")
    for who, label, url in pages(runs):
        samples = timed_ms(clients[who], url)
        took = statistics.median(samples)
        verdict = "ok" if took <= TARGET_MS else ("(info)" if label in informational else "SLOW")
        ok &= took <= TARGET_MS or label in informational
        print(f"  {label:<58} {who:<12} {took:6.1f} ms {max(samples):6.1f} ms  {verdict}", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--tasks-per-run", type=int, default=10)
    parser.add_argument("--refill", action="store_true", help="empty the run tables and fill them again")
    args = parser.parse_args()
    ensure_database()
    setup_django()
    fill(args.runs, args.tasks_per_run, args.refill)
    return 0 if measure(args.runs) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Fault trials against real PostgreSQL + Redis with two Celery workers; prints what was accepted, finished,
lost and which side effects happened more than once.

    .venv/bin/python bench/faults.py [--trials 20] [--runs 4] [--scenarios sigkill,flush,pgdrop] [--test-settings]

Uses a throw-away database `flowforge_faults` (dropped and migrated here) and Redis db 8. Each run is a chain
of three http.request tasks that POST {run, task} to a local server on 127.0.0.1, which counts them: a count
above one is a repeated side effect. A repeat whose task run recorded a `lost` attempt is the documented
at-least-once window (the effect happened, the worker died or lost its database before recording it).
The server also groups the calls by their Idempotency-Key header (SPEC §10): a receiver that honours the key
applies each key once, so "applied twice by key" (a logical call under a second key, or under none) is the
number that must stay 0.
Workers run with the shipped recovery settings (lease, sweep, re-send delays of automation/settings.py), so
"recovery s" (from the fault to the trial's last run finishing, median and max per scenario) is what an
installation sees; `--test-settings` uses the test suite's short ones instead (automation.testing).
Everything started here is killed in `finally`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FINAL = {"succeeded", "failed", "cancelled"}
# The test suite's short recovery timings (automation.testing.worker_environment); dropped unless --test-settings.
TEST_TIMINGS = ("AUTOMATION_TASK_LEASE_SECONDS", "AUTOMATION_HEARTBEAT_SECONDS", "AUTOMATION_SWEEP_SECONDS",
                "AUTOMATION_REQUEUE_AFTER_SECONDS")


class EffectServer:
    """Counts POSTs per (run, task); answers after `delay` seconds so a task is in flight for a while."""

    def __init__(self, delay: float):
        self.counts: Counter = Counter()
        self.keys: dict[tuple[int, str], set] = {}  # (run, task) -> the Idempotency-Keys it arrived with
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                call = (int(body["run"]), body["task"])
                with outer.lock:
                    outer.counts[call] += 1
                    outer.keys.setdefault(call, set()).add(self.headers.get("Idempotency-Key"))
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a worker killed mid-request leaves a broken pipe behind; that is the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/effect"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prepare_environment(args) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "automation.settings",
        "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
        "CELERY_BROKER_URL": args.broker,
        "AUTOMATION_HTTP_ALLOW_PRIVATE": "1",
        "AUTOMATION_ALLOW_SHELL": "1",
        "LOG_LEVEL": "WARNING",
    })


def recreate_database(args) -> None:
    import psycopg

    with psycopg.connect(f"{args.postgres.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--runs", type=int, default=4, help="runs accepted per trial")
    parser.add_argument("--scenarios", default="sigkill,flush,pgdrop")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="flowforge_faults")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--trial-timeout", type=float, default=90.0)
    parser.add_argument("--max-minutes", type=float, default=30.0, help="stop starting trials after this")
    parser.add_argument("--test-settings", action="store_true",
                        help="workers use the test suite's short lease/sweep/re-send timings, not the defaults")
    args = parser.parse_args()
    if "127.0.0.1" not in args.postgres or "127.0.0.1" not in args.broker:
        parser.error("this bench only talks to services on 127.0.0.1")

    prepare_environment(args)
    recreate_database(args)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return Bench(args).run()


class Bench:
    def __init__(self, args):
        import redis

        self.args = args
        self.redis = redis.Redis.from_url(args.broker)
        self.effects = EffectServer(delay=0.4)
        self.workers: list = []
        self.worker_seq = 0

    # --- processes ------------------------------------------------------------------------------------------

    def start_worker(self):
        from automation.testing import WorkerProcess, worker_environment

        self.worker_seq += 1
        env = worker_environment(LOG_LEVEL="INFO")
        if not self.args.test_settings:
            for name in TEST_TIMINGS:
                env.pop(name)
                os.environ.pop(name, None)  # nor inherited from the shell
        worker = WorkerProcess(f"bench{self.worker_seq}", concurrency=1, env=env)
        self.workers.append(worker)
        return worker.wait_ready()

    def live_workers(self) -> list:
        return [w for w in self.workers if w.process.poll() is None]

    def ensure_two_workers(self) -> None:
        missing = 2 - len(self.live_workers())
        for _ in range(missing):
            self.start_worker()

    # --- scenarios ------------------------------------------------------------------------------------------

    def fault_sigkill(self) -> None:
        random.choice(self.live_workers()).kill()

    def fault_flush(self) -> None:
        self.redis.flushdb()

    def fault_pgdrop(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    # --- one trial ------------------------------------------------------------------------------------------

    def workflow(self):
        from workflows.services import workflow_save

        tasks = {}
        for index in range(3):
            task = {"action": "http.request", "inputs": {
                "method": "POST", "url": self.effects.url, "json": {"run": "{{ run.id }}", "task": f"t{index}"}}}
            if index:
                task["depends_on"] = [f"t{index - 1}"]
            tasks[f"t{index}"] = task
        return workflow_save(source={"name": "fault bench", "tasks": tasks})

    def trial(self, scenario: str, workflow) -> dict:
        from django.db import close_old_connections, transaction

        from automation.testing import wait_for
        from runs.models import TaskRun, WorkflowRun
        from runs.services import run_create

        self.ensure_two_workers()
        run_ids = []
        for _ in range(self.args.runs):
            with transaction.atomic():
                run_ids.append(run_create(workflow=workflow).id)
        running = 1 if scenario != "sigkill" else 2
        try:
            wait_for(lambda: TaskRun.objects.filter(run_id__in=run_ids, status="running").count() >= running,
                     timeout=30, interval=0.02, message="tasks to run")
        except AssertionError:
            pass  # the fault still hits queued work
        getattr(self, f"fault_{scenario}")()
        fault_at = time.monotonic()
        close_old_connections()
        if scenario == "sigkill":
            self.ensure_two_workers()

        deadline = time.monotonic() + self.args.trial_timeout
        recovery = None
        while time.monotonic() < deadline:
            try:
                states = dict(WorkflowRun.objects.filter(id__in=run_ids).values_list("id", "status"))
            except Exception:  # noqa: BLE001 - our own connection may have been one of those dropped
                close_old_connections()
                continue
            if all(s in FINAL for s in states.values()):
                recovery = round(time.monotonic() - fault_at, 1)
                break
            time.sleep(0.1)
        finished = sum(1 for s in states.values() if s in FINAL)
        succeeded = sum(1 for s in states.values() if s == "succeeded")
        lost_attempts = {(t.run_id, t.task_id) for t in TaskRun.objects.filter(run_id__in=run_ids)
                         if any(a.get("status") == "lost" for a in t.attempts)}
        with self.effects.lock:
            counts = {key: n for key, n in self.effects.counts.items() if key[0] in set(run_ids)}
            keys = {call: set(seen) for call, seen in self.effects.keys.items() if call[0] in set(run_ids)}
        applied_twice = sum(len(seen) - 1 + (None in seen) for seen in keys.values())
        repeated = {key: n for key, n in counts.items() if n > 1}
        unexplained = {key: n for key, n in repeated.items() if key not in lost_attempts}
        return {"accepted": len(run_ids), "finished": finished, "succeeded": succeeded,
                "lost": len(run_ids) - finished, "duplicates": sum(n - 1 for n in repeated.values()),
                "unexplained": sum(n - 1 for n in unexplained.values()), "lost_attempts": len(lost_attempts),
                "applied_twice_by_key": applied_twice, "recovery_s": recovery}

    def run(self) -> int:
        started = time.monotonic()
        results: dict[str, list[dict]] = {}
        try:
            workflow = self.workflow()
            for scenario in self.args.scenarios.split(","):
                results[scenario] = []
                for number in range(self.args.trials):
                    if time.monotonic() - started > self.args.max_minutes * 60:
                        print(f"[bench] time limit reached in {scenario} after {number} trials", flush=True)
                        break
                    outcome = self.trial(scenario, workflow)
                    results[scenario].append(outcome)
                    print(f"[bench] {scenario} #{number + 1}: {outcome}", flush=True)
        finally:
            for worker in self.workers:
                worker.stop()
            self.effects.close()
        self.report(results, time.monotonic() - started)
        bad = any(t["lost"] or t["unexplained"] or t["applied_twice_by_key"]
                  for trials in results.values() for t in trials)
        return 1 if bad else 0

    @staticmethod
    def report(results: dict[str, list[dict]], elapsed: float) -> None:
        header = ("scenario", "trials", "runs accepted", "runs finished", "runs succeeded", "runs lost",
                  "duplicated side effects", "of which unexplained", "lost attempts", "applied twice by key",
                  "recovery s median", "recovery s max")
        rows = []
        for scenario, trials in results.items():
            total = lambda key: sum(t[key] for t in trials)  # noqa: E731
            rows.append((scenario, len(trials), total("accepted"), total("finished"), total("succeeded"),
                         total("lost"), total("duplicates"), total("unexplained"), total("lost_attempts"),
                         total("applied_twice_by_key"), *Bench.recovery_figures(trials)))
        widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
        print()
        for row in (header, *rows):
            print(" | ".join(str(x).rjust(w) for x, w in zip(row, widths)))
        print(f"\n{elapsed:.0f}s. Duplicates are explained when the task run recorded a lost attempt "
              f"(at-least-once: the effect happened, the result was not recorded). Applied twice by key: "
              f"repeats a receiver honouring Idempotency-Key would still apply (target 0). Recovery: seconds "
              f"from the fault to the trial's last run finishing ('-' when one did not finish).")

    @staticmethod
    def recovery_figures(trials: list[dict]) -> tuple[str, str]:
        """Median and max seconds from the fault to the trial's runs all finishing; '-' if a trial never did."""
        seconds = sorted(t["recovery_s"] for t in trials if t["recovery_s"] is not None)
        if not seconds or len(seconds) < len(trials):
            return ("-", "-") if not seconds else (f"{statistics.median(seconds):.1f}", "-")
        return f"{statistics.median(seconds):.1f}", f"{seconds[-1]:.1f}"


if __name__ == "__main__":
    sys.exit(main())

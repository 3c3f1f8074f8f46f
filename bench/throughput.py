"""End-to-end throughput: runs accepted by the HTTP API and finished by Celery workers, per second, with latency.

    .venv/bin/python bench/throughput.py [--backend both|pg|embedded] [--shape both|one|ten] [--seconds 30]
        [--warmup 8] [--workers 2] [--concurrency N] [--web-workers N] [--inflight 8]

For each backend, on a fresh database: (pg) PostgreSQL `flowforge_throughput` + Redis db 4; (embedded) the default
of bin/start, SQLite + Celery's filesystem broker in a temporary AUTOMATION_VAR_DIR, no server. It starts the
processes bin/start starts, with its commands (automation.supervisor.stack_commands): gunicorn, `--workers` Celery
workers (each `-c` WORKER_CONCURRENCY, i.e. bin/start's default unless --concurrency) and beat. Then for each shape
(`one`: a single task; `ten`: a chain of ten tasks, each a transform.jinja no-op) it runs a CLOSED loop: a client
keeps `--inflight` runs accepted but not yet finished, POSTing /api/workflows/<id>/run/ with a token whenever one
finishes. After `--warmup` seconds it measures `--seconds` seconds and prints, from the database's own timestamps:
runs finished per second in that window, tasks per second, and the latency from accept (run created_at) to finish
(finished_at) p50/p99 of the runs that finished in it; also the API's accept latency. Every run must succeed.
Everything it starts is stopped by process group, on failure too. The machine's load is printed: the figures are
only comparable back to back on the same box.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.supervisor import stack_commands  # noqa: E402  (no Django import: safe before settings)

PG_DB = os.environ.get("BENCH_THROUGHPUT_DB", "flowforge_throughput")
PG_BROKER = os.environ.get("BENCH_THROUGHPUT_BROKER", "redis://127.0.0.1:6379/4")
FINAL = ("succeeded", "failed", "cancelled")
NOOP = {"action": "transform.jinja", "inputs": {"value": "ok"}}
SHAPES = {
    "one": {"tasks": {"t0": NOOP}},
    "ten": {"tasks": {f"t{i}": {**NOOP, "depends_on": [f"t{i - 1}"]} if i else NOOP for i in range(10)}},
}

SETUP = """
import json, os, django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from workflows.services import workflow_save
user = get_user_model().objects.create_user("throughput", is_staff=True)
shapes = json.loads(os.environ["BENCH_SHAPES"])
ids = {name: workflow_save(owner=user, source={"name": f"throughput {name}", **source}).id
       for name, source in shapes.items()}
print(json.dumps({"token": Token.objects.create(user=user).key, "workflows": ids}))
"""


@dataclass
class Backend:
    name: str
    env: dict
    folder: Path
    connect: Callable[[], Any]  # a DB-API connection (autocommit) reading the runs table
    _conn: Any = None

    def query(self, sql: str) -> list[tuple]:
        if self._conn is None:
            self._conn = self.connect()
        cursor = self._conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def finished(self, workflow_id: int) -> int:
        return self.query("SELECT count(*) FROM runs_workflowrun WHERE finished_at IS NOT NULL "
                          f"AND workflow_id = {int(workflow_id)}")[0][0]

    def rows(self, workflow_id: int) -> list[tuple]:
        """(status, created_at, finished_at) of every run of a workflow, timestamps as epoch seconds."""
        rows = self.query(f"SELECT status, created_at, finished_at FROM runs_workflowrun WHERE workflow_id = "
                          f"{int(workflow_id)}")
        return [(status, _epoch(created), _epoch(finished)) for status, created, finished in rows]


def _epoch(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite: naive UTC text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def base_env(folder: Path, port: int, args: argparse.Namespace) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "automation.settings", "DEBUG": "0", "LOG_LEVEL": "WARNING",
        "AUTOMATION_VAR_DIR": str(folder / "var"), "AUTOMATION_FILES_ROOT": str(folder / "files"),
        "STATIC_ROOT": str(folder / "static"), "BIND": "127.0.0.1", "PORT": str(port),
        # The default user throttle (3000/min) would cap the client, not measure the engine.
        "API_THROTTLE_USER": "10000000/minute",
    })
    if args.concurrency:
        env["WORKER_CONCURRENCY"] = str(args.concurrency)
    if args.web_workers:
        env["WEB_WORKERS"] = str(args.web_workers)
    (folder / "var").mkdir(parents=True, exist_ok=True)
    return env


def pg_backend(folder: Path, port: int, args: argparse.Namespace) -> Backend:
    import psycopg
    import redis

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
    redis.Redis.from_url(PG_BROKER).flushdb()
    env = base_env(folder, port, args)
    env.update({"DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{PG_DB}", "CELERY_BROKER_URL": PG_BROKER})
    return Backend("PostgreSQL + Redis", env, folder,
                   lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{PG_DB}", autocommit=True))


def embedded_backend(folder: Path, port: int, args: argparse.Namespace) -> Backend:
    import sqlite3

    env = base_env(folder, port, args)
    database = folder / "db.sqlite3"
    env["DATABASE_URL"] = f"sqlite:///{database}"
    return Backend("embedded (SQLite + filesystem broker)", env, folder,
                   lambda: sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stack(backend: Backend, workers: int) -> dict[str, subprocess.Popen]:
    """The processes of bin/start with its commands, `workers` Celery workers instead of one; each its own group."""
    commands = _commands(backend.env)
    named = {"web": commands["web"], "beat": commands["beat"]}
    for i in range(workers):
        named[f"worker{i + 1}"] = [*commands["worker"], "-n", f"throughput{i + 1}@%h"]
    processes = {}
    for name, command in named.items():
        log = open(backend.folder / f"{name}.log", "w")
        processes[name] = subprocess.Popen(command, cwd=ROOT, env=backend.env, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return processes


def _commands(env: dict) -> dict[str, list[str]]:
    """stack_commands() as bin/start would compute it under `env` (it reads the variables from os.environ)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return stack_commands(python=sys.executable)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stop_stack(processes: dict[str, subprocess.Popen], grace: float = 10.0) -> None:
    for process in processes.values():
        _killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes.values():
        _killpg(process.pid, signal.SIGKILL)  # what is left of the group: pool children, gunicorn workers
        process.wait()


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def wait_until_up(port: int, processes: dict[str, subprocess.Popen], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode} while starting")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the web server did not answer /healthz within {timeout:.0f} s")


def accept(port: int, token: str, workflow_id: int) -> float:
    """POST one run through the API; the seconds it took. Anything but 202 aborts the benchmark."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/api/workflows/{workflow_id}/run/", body=b'{"source": "throughput"}',
                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 202:
        raise SystemExit(f"accept answered {response.status}: {body[:500]!r}")
    return time.perf_counter() - began


@dataclass
class Result:
    shape: str
    tasks: int
    window: tuple[float, float]
    accept_seconds: list[float] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)


def closed_loop(backend: Backend, port: int, token: str, workflow_id: int, args: argparse.Namespace,
                shape: str, processes: dict[str, subprocess.Popen]) -> Result:
    """Keep `inflight` runs unfinished until warm-up + window are over, then let the last ones drain.

    The POSTs go through a pool of `inflight` threads, so the client's own accept latency does not cap the rate.
    """
    submitted, began = 0, time.time()
    window = (began + args.warmup, began + args.warmup + args.seconds)
    result = Result(shape, len(SHAPES[shape]["tasks"]), window)
    with ThreadPoolExecutor(max_workers=args.inflight) as pool:
        pending: list[Future] = []
        while time.time() < window[1]:
            finished = backend.finished(workflow_id)
            while submitted - finished < args.inflight:
                pending.append(pool.submit(accept, port, token, workflow_id))
                submitted += 1
            pending = _collect(pending, result)
            check_alive(processes, backend.folder)
            time.sleep(args.poll)
        for future in pending:
            result.accept_seconds.append(future.result())
    drain_deadline = time.monotonic() + 120
    while backend.finished(workflow_id) < submitted and time.monotonic() < drain_deadline:
        time.sleep(args.poll)
    result.rows = backend.rows(workflow_id)
    return result


def _collect(pending: list[Future], result: Result) -> list[Future]:
    """Record the accept latency of the POSTs done (re-raising a failed one); the ones still pending."""
    for future in pending:
        if future.done():
            result.accept_seconds.append(future.result())
    return [future for future in pending if not future.done()]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else float("nan")


def report(result: Result) -> bool:
    """Print one line for a shape; False when a run did not succeed or did not finish."""
    start, end = result.window
    in_window = [(created, finished) for status, created, finished in result.rows
                 if finished is not None and start <= finished < end]
    latencies = [finished - created for created, finished in in_window]
    per_second = len(in_window) / (end - start)
    statuses: dict[str, int] = {}
    for status, _created, _finished in result.rows:
        statuses[status] = statuses.get(status, 0) + 1
    print(f"  {result.shape:3} ({result.tasks:2} task{'s' if result.tasks > 1 else ' '}): "
          f"{per_second:6.1f} runs/s finished = {per_second * result.tasks:6.1f} tasks/s; "
          f"accept->finish ms p50 {percentile(latencies, 50):7.1f} p99 {percentile(latencies, 99):7.1f}; "
          f"API accept ms p50 {percentile(result.accept_seconds, 50):5.1f} "
          f"p99 {percentile(result.accept_seconds, 99):5.1f}; runs {statuses}", flush=True)
    return set(statuses) <= {"succeeded"} and len(result.rows) == len(result.accept_seconds)


def bench_backend(kind: str, args: argparse.Namespace) -> bool:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-throughput-{kind}-"))
    port = free_port()
    backend = (pg_backend if kind == "pg" else embedded_backend)(folder, port, args)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=backend.env,
                   check=True)
    shapes = {name: SHAPES[name] for name in (("one", "ten") if args.shape == "both" else (args.shape,))}
    setup = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, capture_output=True, text=True,
                           env={**backend.env, "BENCH_SHAPES": json.dumps(shapes)})
    if setup.returncode:
        raise SystemExit(f"preparing the workflows failed:\n{setup.stderr[-3000:]}")
    prepared = json.loads(setup.stdout.strip().splitlines()[-1])
    processes = {}
    ok = True
    try:
        processes = start_stack(backend, args.workers)
        wait_until_up(port, processes)
        worker = _commands(backend.env)["worker"]
        web = _commands(backend.env)["web"]
        concurrency = worker[worker.index("-c") + 1]
        web_workers = web[web.index("--workers") + 1]
        print(f"{backend.name}: gunicorn {web_workers} workers, {args.workers} Celery workers -c {concurrency}, "
              f"beat; closed loop, {args.inflight} runs in flight, {args.warmup:g} s warm-up then "
              f"{args.seconds:g} s measured; load average {_load()}", flush=True)
        for shape in shapes:
            result = closed_loop(backend, port, prepared["token"], prepared["workflows"][shape], args, shape,
                                 processes)
            ok = report(result) and ok
    finally:
        stop_stack(processes)
        backend.close()
    if ok and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"  logs and files kept in {folder}")
    return ok


def check_alive(processes: dict[str, subprocess.Popen], folder: Path) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}; its log is in {folder}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("both", "pg", "embedded"), default="both")
    parser.add_argument("--shape", choices=("both", "one", "ten"), default="both")
    parser.add_argument("--seconds", type=float, default=30, help="measured window per shape")
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=0, help="-c of each worker (default: bin/start's)")
    parser.add_argument("--web-workers", type=int, default=0, help="gunicorn workers (default: bin/start's)")
    parser.add_argument("--inflight", type=int, default=8, help="runs accepted and not yet finished")
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between checks of the finished count")
    parser.add_argument("--keep", action="store_true", help="keep the logs and the SQLite files")
    args = parser.parse_args()
    print(f"bench/throughput.py on {os.cpu_count()} CPUs, load average {_load()}", flush=True)
    ok = True
    for kind in (("pg", "embedded") if args.backend == "both" else (args.backend,)):
        ok = bench_backend(kind, args) and ok
    print(f"done; load average {_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

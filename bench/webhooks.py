"""Webhook accept-path benchmark: gunicorn (4 sync workers) + PostgreSQL + Redis, 10,000 runs already queued and
no Celery worker running, an open-loop load of signed JSON POSTs on 127.0.0.1.

    .venv/bin/python bench/webhooks.py [--rate 200[,300,400]] [--seconds 15] [--workers 4] [--floor]

Open loop: request i is due at start + i/rate whatever happened to the earlier ones, and its latency is
measured from that due time, so a stalled server shows up in the percentiles instead of slowing the client.
Targets (issue 15): p99 <= 20 ms at 200/s and <= 30 ms at 400/s.

`--floor` also finds the saturation throughput (closed loop: `--clients` connections each sending its next
request as soon as the last one is answered) of the webhook gateway and, in the same run on the same gunicorn
settings, of a bare Django view doing one INSERT and one LPUSH (bench/webhook_floor.py), and prints the ratio
(target >= 70%).

BENCH_WEBHOOKS_DB and BENCH_WEBHOOKS_REDIS choose the database and Redis (defaults below), so benchmarks run
side by side do not share state.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_WEBHOOKS_DB", "flowforge_bench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
BROKER_URL = os.environ.get("BENCH_WEBHOOKS_REDIS", "redis://127.0.0.1:6379/5")
SECRET = "bench-secret"
QUEUED_RUNS = 10_000

ENV = {
    **os.environ,
    "DATABASE_URL": DATABASE_URL,
    "CELERY_BROKER_URL": BROKER_URL,
    "DJANGO_SETTINGS_MODULE": "automation.settings",
    "DEBUG": "0",
    "LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=ENV, check=True)


def prepare_data() -> str:
    """A signed webhook workflow with QUEUED_RUNS queued runs; returns its token."""
    os.environ.update({k: ENV[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import redis

    from runs.models import WorkflowRun
    from workflows.models import Workflow
    from workflows.services import workflow_save

    WorkflowRun.objects.filter(workflow__name="bench-webhook").delete()  # runs protect their versions
    Workflow.objects.filter(name="bench-webhook").delete()
    workflow = workflow_save(source={
        "name": "bench-webhook",
        "triggers": [{"type": "webhook", "secret": SECRET, "rate_limit": "100000/m"}],
        "tasks": {"echo": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body.n }}"}}},
    })
    WorkflowRun.objects.bulk_create(
        [WorkflowRun(workflow=workflow, workflow_version_id=workflow.current_version_id,
                     trigger={"kind": "webhook", "body": {"n": n}}, trigger_kind="webhook")
         for n in range(QUEUED_RUNS)],
        batch_size=2000,
    )
    redis.Redis.from_url(BROKER_URL).delete("default")
    from django.db import connection

    connection.close()
    return workflow.webhook_token


def start_gunicorn(port: int, workers: int, app: str = "automation.wsgi:application") -> subprocess.Popen:
    command = [str(ROOT / ".venv/bin/gunicorn"), "--workers", str(workers), "--worker-class", "sync",
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning", app]
    return subprocess.Popen(command, cwd=ROOT, env=ENV, start_new_session=True)


def stop_gunicorn(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/bench-probe")
            if conn.getresponse().status == 404:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 30 s")


def request_bytes(token: str, n: int) -> bytes:
    body = json.dumps({"n": n, "user": {"id": n, "email": f"user{n}@example.com"}, "items": list(range(10))}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (f"POST /hooks/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


async def post(port: int, payload: bytes) -> int:
    """One request on a fresh connection (sync workers close every connection, as most senders expect)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        response = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        status_line = response.split(b"\r\n", 1)[0].split()
        return int(status_line[1]) if len(status_line) > 1 else 0
    except (OSError, asyncio.TimeoutError, ValueError):
        return 0


async def _drive(port: int, token: str, rate: float, seconds: float) -> dict:
    """Open loop on one event loop: request i is sent at start + i/rate; latency counts from that due time."""
    total = int(rate * seconds)
    payloads = [request_bytes(token, n) for n in range(total)]
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter = Counter()
    loop = asyncio.get_running_loop()

    async def one(n: int, due: float) -> None:
        lags.append(loop.time() - due)
        status = await post(port, payloads[n])
        latencies.append(loop.time() - due)
        statuses[status] += 1

    start = loop.time() + 0.05
    pending = []
    for n in range(total):
        due = start + n / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*pending)
    elapsed = loop.time() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {"requests": total, "elapsed": elapsed, "rps": total / elapsed, "p50": pct(50), "p95": pct(95),
            "p99": pct(99), "max": latencies[-1] * 1000, "statuses": dict(statuses),
            "send_lag_max": max(lags) * 1000}


def drive(port: int, token: str, rate: float, seconds: float) -> dict:
    return asyncio.run(_drive(port, token, rate, seconds))


async def _saturate(port: int, token: str, clients: int, seconds: float) -> dict:
    """Closed loop: `clients` senders, each posting again as soon as its last request was answered."""
    payloads = [request_bytes(token, n) for n in range(1000)]
    latencies: list[float] = []
    statuses: Counter = Counter()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def sender(offset: int) -> None:
        n = offset
        while loop.time() < end:
            sent = loop.time()
            statuses[await post(port, payloads[n % len(payloads)])] += 1
            latencies.append(loop.time() - sent)
            n += clients

    start = loop.time()
    await asyncio.gather(*(sender(i) for i in range(clients)))
    elapsed = loop.time() - start
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[int(0.99 * len(latencies))] * 1000, "statuses": dict(statuses)}


def saturate(port: int, token: str, clients: int, seconds: float) -> dict:
    return asyncio.run(_saturate(port, token, clients, seconds))


def serving(app: str, workers: int):
    """A started gunicorn for `app` (stopped by the caller) and its port, warmed up."""
    port = free_port()
    server = start_gunicorn(port, workers, app)
    try:
        wait_until_up(port, server)
    except BaseException:
        stop_gunicorn(server)
        raise
    return server, port


def measure_rates(token: str, rates: list[float], seconds: float, workers: int) -> list[dict]:
    server, port = serving("automation.wsgi:application", workers)
    try:
        drive(port, token, rate=50, seconds=2)  # warm-up: DB connections, broker connections, compiled spec
        results = []
        for rate in rates:
            results.append({"rate": rate, **drive(port, token, rate=rate, seconds=seconds)})
            time.sleep(1)  # let the server settle between steps
        return results
    finally:
        stop_gunicorn(server)


def measure_floor(token: str, workers: int, clients: int, seconds: float) -> tuple[dict, dict]:
    """(gateway, bare view) saturation, each on its own gunicorn with the same settings, one after the other."""
    measured = []
    for app in ("automation.wsgi:application", "bench.webhook_floor:application"):
        server, port = serving(app, workers)
        try:
            saturate(port, token, clients, 1)  # warm-up
            measured.append(saturate(port, token, clients, seconds))
        finally:
            stop_gunicorn(server)
    return measured[0], measured[1]


def prepare_floor() -> None:
    subprocess.run([sys.executable, "-c", "import bench.webhook_floor as f; f.create_table()"], cwd=ROOT, env=ENV,
                   check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="200", help="requests per second, or several: 200,300,400")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--floor", action="store_true", help="saturation of the gateway vs a bare view, and ratio")
    parser.add_argument("--floor-only", action="store_true", help="only the --floor measurement")
    parser.add_argument("--clients", type=int, default=8, help="concurrent senders for --floor")
    parser.add_argument("--floor-seconds", type=float, default=10)
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rate.split(",")]

    prepare_database()
    token = prepare_data()
    print(f"gunicorn {args.workers} sync workers, PostgreSQL + Redis, {QUEUED_RUNS} runs queued beforehand, "
          f"no Celery worker; load average {os.getloadavg()[0]:.2f} (a shared machine is noisy)")
    met = True
    if not args.floor_only:
        for result in measure_rates(token, rates, args.seconds, args.workers):
            met &= report_rate(result, args.seconds)
    if args.floor or args.floor_only:
        prepare_floor()
        gateway, floor = measure_floor(token, args.workers, args.clients, args.floor_seconds)
        ratio = gateway["rps"] / floor["rps"]
        for name, result in (("webhook gateway", gateway), ("bare view (1 INSERT + 1 LPUSH)", floor)):
            print(f"saturation, {args.clients} closed-loop clients for {args.floor_seconds:.0f} s, {name}: "
                  f"{result['rps']:.0f} req/s  p50 {result['p50']:.2f}  p99 {result['p99']:.2f} ms  "
                  f"answers {result['statuses']}")
        print(f"gateway / floor = {ratio:.0%} (target >= 70%): {'met' if ratio >= 0.7 else 'NOT met'}")
        met &= ratio >= 0.7

    import redis

    from runs.models import WorkflowRun

    queued = WorkflowRun.objects.filter(workflow__name="bench-webhook", status="queued").count()
    in_redis = redis.Redis.from_url(BROKER_URL).llen("default")
    print(f"queued runs now {queued}; start messages in Redis 'default': {in_redis}")
    return 0 if met else 1


def report_rate(result: dict, seconds: float) -> bool:
    errors = {status: count for status, count in result["statuses"].items() if status != 202}
    rate = result["rate"]
    print(f"offered {rate:.0f} req/s for {seconds:.0f} s: {result['requests']} requests in "
          f"{result['elapsed']:.2f} s = {result['rps']:.1f} req/s achieved")
    print(f"  accept latency ms: p50 {result['p50']:.2f}  p95 {result['p95']:.2f}  p99 {result['p99']:.2f}  "
          f"max {result['max']:.2f}; client send lag max {result['send_lag_max']:.2f} ms")
    print(f"  answers: {result['statuses']}  errors: {sum(errors.values())} {errors or ''}")
    target = 20 if rate <= 200 else 30
    met = result["p99"] <= target and not errors
    print(f"  target p99 <= {target} ms with no errors: {'met' if met else 'NOT met'}")
    return met


if __name__ == "__main__":
    sys.exit(main())

"""Soak: mixed webhook + manual (API) + cron load on PostgreSQL + Redis with 2 Celery workers, bounded in time.

    .venv/bin/python bench/soak.py [--seconds 600] [--webhook-rate 40] [--manual-rate 2]

Starts gunicorn (4 sync workers), two `celery worker` processes (-c 1) and `celery beat` on a fresh database
`flowforge_soak` and Redis db 6; a cron workflow fires every minute. Prints throughput, accept latency
percentiles, the resident memory of the web and worker process trees after warm-up and at the end, runs accepted
per second vs finished per second during the load (finished >= accepted means the workers keep up), and after a
drain window (--drain, 300 s) the runs accepted, finished, unfinished and lost, each counted apart:
  - lost: answered 202 but no run row exists, or a run ended in a state other than succeeded;
  - unfinished: the run row exists but is still queued/running when the drain window closed (a backlog, not a loss).
Exit status 0 when nothing is lost or unfinished and memory grew at most 10%; 1 when a run was lost or memory grew;
2 when only unfinished runs remain. Everything it starts is stopped (by process group) before it exits.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import SECRET, free_port, request_bytes, wait_until_up  # noqa: E402

DB_NAME = "flowforge_soak"
ENV = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
       "CELERY_BROKER_URL": "redis://127.0.0.1:6379/6", "DJANGO_SETTINGS_MODULE": "automation.settings",
       "LOG_LEVEL": "WARNING", "AUTOMATION_ALLOW_SHELL": "1"}
FINAL = ("succeeded", "failed", "cancelled")


def prepare() -> tuple[str, int, str]:
    """Fresh database with a webhook, a manual and a cron workflow; returns (hook token, manual id, API token)."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)
    os.environ.update({k: ENV[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")})
    import django

    django.setup()
    import redis
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from workflows.services import workflow_save

    redis.Redis.from_url(ENV["CELERY_BROKER_URL"]).flushdb()
    user = get_user_model().objects.create_user("soak", is_staff=True)
    hook = workflow_save(owner=user, source={
        "name": "soak webhook", "triggers": [{"type": "webhook", "secret": SECRET, "rate_limit": "100000/m"}],
        "tasks": {"greet": {"action": "transform.jinja", "inputs": {"value": "hi {{ trigger.body.user.email }}"}},
                  "count": {"action": "transform.jinja", "depends_on": ["greet"],
                            "inputs": {"value": "{{ trigger.body['items'] | length }}"}}}})
    manual = workflow_save(owner=user, source={"name": "soak manual", "tasks": {
        "a": {"run": "echo a"}, "b": {"run": "echo b", "depends_on": ["a"]},
        "c": {"action": "transform.jinja", "depends_on": ["a"], "inputs": {"value": "{{ steps.a.output.stdout }}"}},
        "d": {"run": "echo d", "depends_on": ["b", "c"]}}})
    workflow_save(owner=user, source={"name": "soak cron", "triggers": [{"type": "cron", "cron": "* * * * *"}],
                                      "tasks": {"tick": {"run": "date"}}})
    return hook.webhook_token, manual.id, Token.objects.create(user=user).key


def start(name: str, command: list[str]) -> subprocess.Popen:
    log = open(f"/tmp/soak-{name}.log", "w")
    return subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def tree_rss_mib(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        rss[int(entry.name)] = next((int(line.split()[1]) for line in status.splitlines()
                                     if line.startswith("VmRSS:")), 0)
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 1024


def manual_request(token: str, workflow_id: int, api_token: str) -> bytes:
    body = json.dumps({"source": "soak"}).encode()
    return (f"POST /api/workflows/{workflow_id}/run/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {api_token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


async def post(port: int, payload: bytes) -> tuple[int, int | None]:
    """One request on a fresh connection: (HTTP status or 0 on a transport error, the run id a 202 names)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        response = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    except (OSError, asyncio.TimeoutError):
        return 0, None
    head, _, body = response.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    status_line = head.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
    try:
        run_id = json.loads(body).get("run_id") if status == 202 else None
    except (ValueError, AttributeError):
        run_id = None
    return status, run_id


def dechunk(body: bytes) -> bytes:
    """The payload of a chunked HTTP/1.1 body (a response without Content-Length)."""
    payload = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        length = int(size.split(b";")[0] or b"0", 16)
        if not length:
            break
        payload, body = payload + body[:length], body[length + 2:]
    return payload


async def load(port: int, hook_token: str, manual_id: int, api_token: str, seconds: float, webhook_rate: float,
               manual_rate: float) -> dict:
    """Two open-loop streams on one event loop; latency counts from each request's due time."""
    loop = asyncio.get_running_loop()
    latencies: dict[str, list[float]] = {"webhook": [], "manual": []}
    statuses: dict[str, Counter] = {"webhook": Counter(), "manual": Counter()}
    run_ids: list[int | None] = []  # one per 202: None when its body named no run

    async def one(kind: str, payload: bytes, due: float) -> None:
        status, run_id = await post(port, payload)
        latencies[kind].append(loop.time() - due)
        statuses[kind][status] += 1
        if status == 202:
            run_ids.append(run_id)

    async def stream(kind: str, rate: float, make) -> None:
        start, n, tasks = loop.time(), 0, []
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            tasks.append(asyncio.create_task(one(kind, make(n), due)))
            n += 1
        await asyncio.gather(*tasks)

    await asyncio.gather(stream("webhook", webhook_rate, lambda n: request_bytes(hook_token, n)),
                         stream("manual", manual_rate, lambda n: manual_request(api_token, manual_id, api_token)))
    return {"latencies": latencies, "statuses": statuses, "run_ids": run_ids}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--webhook-rate", type=float, default=40)
    parser.add_argument("--manual-rate", type=float, default=2)
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument("--drain", type=float, default=300, help="seconds allowed after the load to finish runs")
    args = parser.parse_args()

    hook_token, manual_id, api_token = prepare()
    port = free_port()
    celery = [sys.executable, "-m", "celery", "-A", "automation"]
    processes = {
        "web": start("web", [str(ROOT / ".venv/bin/gunicorn"), "--workers", "4", "--worker-class", "sync",
                             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "automation.wsgi:application"]),
        "worker1": start("worker1", [*celery, "worker", "-n", "soak1@%h", "-c", "1", "-l", "warning"]),
        "worker2": start("worker2", [*celery, "worker", "-n", "soak2@%h", "-c", "1", "-l", "warning"]),
        "beat": start("beat", [*celery, "beat", "-l", "warning", "-s", "/tmp/soak-beat-schedule"]),
    }
    try:
        wait_until_up(port, processes["web"])
        warmup = asyncio.run(load(port, hook_token, manual_id, api_token, args.warmup, args.webhook_rate,
                                  args.manual_rate))
        memory_start = {name: tree_rss_mib(p.pid) for name, p in processes.items() if name != "beat"}
        began, began_at = time.monotonic(), datetime.now(timezone.utc)
        result = asyncio.run(load(port, hook_token, manual_id, api_token, args.seconds, args.webhook_rate,
                                  args.manual_rate))
        load_seconds = time.monotonic() - began
        load_end_at = began_at + timedelta(seconds=load_seconds)
        memory_end = {name: tree_rss_mib(p.pid) for name, p in processes.items() if name != "beat"}

        from django.db.models import Count

        from runs.models import WorkflowRun

        def counts():
            return dict(WorkflowRun.objects.values_list("status").annotate(n=Count("id")))

        finished_in_load = WorkflowRun.objects.filter(finished_at__gte=began_at, finished_at__lt=load_end_at).count()
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and any(s not in FINAL for s in counts()):
            time.sleep(1)
        drained = time.monotonic() - began - load_seconds
        by_status = counts()
        by_workflow = dict(WorkflowRun.objects.values_list("workflow__name").annotate(n=Count("id")))
        accepted_ids = [i for i in warmup["run_ids"] + result["run_ids"] if i is not None]
        stored_ids = set(WorkflowRun.objects.filter(id__in=accepted_ids).values_list("id", flat=True))
        missing = len(accepted_ids) - len(stored_ids) + (warmup["run_ids"] + result["run_ids"]).count(None)
        failed = dict(WorkflowRun.objects.filter(status__in=[s for s in FINAL if s != "succeeded"])
                      .values_list("status").annotate(n=Count("id")))
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    accepted = sum(result["statuses"][k][202] for k in ("webhook", "manual"))
    finished = sum(by_status.get(s, 0) for s in FINAL)
    stored = sum(by_status.values())
    unfinished = stored - finished
    print(f"soak: {args.seconds:.0f} s of load after {args.warmup:.0f} s warm-up; gunicorn 4 sync workers, "
          f"2 Celery workers (-c 1), beat; PostgreSQL + Redis")
    for kind, rate in (("webhook", args.webhook_rate), ("manual", args.manual_rate)):
        values, answers = result["latencies"][kind], result["statuses"][kind]
        print(f"{kind:8} offered {rate:g}/s: {len(values)} requests, answers {dict(answers)}, accept ms p50 "
              f"{percentile(values, 50):.1f} p99 {percentile(values, 99):.1f} max {percentile(values, 100):.1f}")
    print(f"runs by workflow: {by_workflow}")
    verdict = ("nothing accepted" if not accepted else
               "keeping up" if finished_in_load >= accepted else "falling behind")
    print(f"during the load: accepted {accepted / load_seconds:.1f}/s, "
          f"finished {finished_in_load / load_seconds:.1f}/s "
          f"({verdict}: finished >= accepted is the goal)")
    print(f"runs by status: {by_status}; throughput {finished / (load_seconds + drained):.1f} runs/s over load and "
          f"drain; " + (f"backlog drained {drained:.0f} s after the load stopped" if not unfinished else
                        f"backlog NOT drained within the {args.drain:.0f} s drain window"))
    for name in memory_start:
        growth = (memory_end[name] / memory_start[name] - 1) * 100
        print(f"memory {name:8} {memory_start[name]:7.1f} MiB -> {memory_end[name]:7.1f} MiB ({growth:+.1f}%)")
    # Runs created during warm-up count too: every accepted request and cron fire must be stored and succeed.
    lost = missing + sum(failed.values())
    print(f"accepted {accepted} (+ {len(warmup['run_ids'])} in warm-up, and cron), stored {stored}, "
          f"finished {finished}, unfinished at the drain deadline {unfinished}, lost {lost} "
          f"({missing} accepted without a run row, {sum(failed.values())} ended {failed or 'otherwise'})")
    growth_ok = all(memory_end[n] <= memory_start[n] * 1.10 for n in memory_start)
    if lost or not growth_ok:
        return 1
    return 2 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main())

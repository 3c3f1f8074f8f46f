"""SPEC §11 limits benchmark: what hostile definitions and templates cost before they are refused.

    .venv/bin/python bench/limits.py

Definitions go through the web API (gunicorn, 1 sync worker, a throw-away SQLite database): POST
/api/workflows/validate/, timed at the client, the worker's RSS read from /proc (VmRSS before; VmHWM, reset
first, after).
Templates are executed through the attempt executor in a fresh Python process each (time, peak RSS).
Targets: every refusal under 1 s and under +50 MB RSS; a valid 1,000-task DAG validates in under 0.5 s.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import free_port  # noqa: E402

MB = 2**20
TEMPLATES = {
    "replace blow-up": ("{{ ('a' * 1000000)|replace('a', 'a' * 100) }}", 300),
    "2-level range loop, timeout 2": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", 2),
}


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def alias_bomb() -> str:
    lines = ["name: bomb", "l0: &l0 [" + ", ".join("x" * 10) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 7)]
    return "\n".join([*lines, "tasks: {a: {run: 'true'}}", ""])


def definitions() -> dict[str, object]:
    steps = lambda n: {"name": "steps", "steps": [{"name": f"s{i}", "run": "t"} for i in range(n)]}  # noqa: E731
    dag = {"name": "dag", "tasks": {
        f"t{i}": {"action": "http.request", "depends_on": [f"t{d}" for d in range(max(0, i - 3), i)],
                  "inputs": {"method": "GET", "url": "https://example.com/{{ run.id }}/" + str(i)}}
        for i in range(1000)}}
    return {"60-alias YAML bomb (%d bytes)" % len(alias_bomb()): alias_bomb(), "10k steps": steps(10_000),
            "30k steps": steps(30_000), "1,001 short steps": steps(1001), "1,000-task valid DAG": dag,
            "YAML text nested 10,000 deep": "name: deep\ntasks: {a: {run: t}}\nx: " + "[" * 10_000 + "]" * 10_000}


def prepare(db_name: str) -> str:
    os.environ.update({"DATABASE_URL": f"sqlite:///{db_name}", "DJANGO_SETTINGS_MODULE": "automation.settings",
                       "DEBUG": "0", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    call_command("migrate", "--noinput", verbosity=0)
    user = User.objects.create_user("bench", password="bench")
    return Token.objects.create(user=user).key


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def post(port: int, token: str, definition: object) -> tuple[int, float, str]:
    body = json.dumps({"definition": definition})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("POST", "/api/workflows/validate/", body,
                 {"Content-Type": "application/json", "Authorization": f"Token {token}"})
    response = conn.getresponse()
    text = response.read().decode()
    return response.status, time.perf_counter() - started, text


def bench_definitions() -> list[tuple]:
    db_fd, db_name = tempfile.mkstemp(prefix="ff-bench-limits-", suffix=".sqlite3")
    os.close(db_fd)
    token = prepare(db_name)
    port = free_port()
    server = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "--workers", "1", "--worker-class", "sync",
                               "--timeout", "120", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                               "automation.wsgi:application"], cwd=ROOT, env=dict(os.environ),
                              start_new_session=True)
    rows = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                post(port, token, {"name": "warm", "tasks": {"a": {"run": "t"}}})
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start")
                time.sleep(0.2)
        for label, definition in definitions().items():
            pid = worker_pid(server.pid)
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM (the peak) to the current RSS
            rss_before = proc_kb(pid, "VmRSS")
            status, seconds, text = post(port, token, definition)
            peak = proc_kb(pid, "VmHWM")
            answer = "valid" if status == 200 else json.loads(text)["errors"][0]["message"][:70] if status == 400 \
                else text[:70]
            rows.append((label, status, seconds, max(peak - rss_before, 0) / 1024, answer))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
        for path in (db_name, f"{db_name}-wal", f"{db_name}-shm"):
            Path(path).unlink(missing_ok=True)
    return rows


def run_template(label: str) -> None:
    """In a fresh process: execute one task whose input is the template; print a JSON line."""
    from connectors.base import ActionConfig
    from connectors.registry import default_registry
    from runs.executor import execute_attempt, template_context
    from workflows.definition import TaskSpec

    template, timeout = TEMPLATES[label]
    registry = default_registry()
    registry.get_class("transform.jinja")
    task = TaskSpec(id="t", action="transform.jinja", inputs={"value": template}, timeout=timeout)
    rss_before = proc_kb(os.getpid(), "VmRSS")
    started = time.perf_counter()
    result = execute_attempt(task, template_context=template_context(trigger={}, task_results={}, run={"id": 1}),
                             registry=registry, config=ActionConfig(), run_id=1)
    seconds = time.perf_counter() - started
    time.sleep(0.3)  # the render thread stops by itself soon after the deadline
    import threading

    print(json.dumps({"seconds": seconds, "peak_mb": (proc_kb(os.getpid(), "VmHWM") - rss_before) / 1024,
                      "status": str(result.status), "error": result.error[:70],
                      "threads_left": threading.active_count() - 1}))


def bench_templates() -> list[tuple]:
    rows = []
    for label in TEMPLATES:
        out = subprocess.run([sys.executable, __file__, "--template", label], cwd=ROOT, capture_output=True,
                             text=True, check=True, env={**os.environ, "DJANGO_SETTINGS_MODULE": "automation.settings"})
        data = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((label, data["status"], data["seconds"], data["peak_mb"],
                     f"{data['error']} (threads left: {data['threads_left']})"))
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--template":
        run_template(sys.argv[2])
        return
    template_rows = bench_templates()
    definition_rows = bench_definitions()
    print(f"{'case':<34}{'result':>8}{'seconds':>9}{'+MB':>8}  answer")
    failures = 0
    for label, status, seconds, peak_mb, answer in definition_rows + template_rows:
        limit = 0.5 if label.startswith("1,000-task") else (2.5 if "timeout 2" in label else 1.0)
        ok = seconds < limit and peak_mb < 50
        failures += not ok
        print(f"{label:<34}{status!s:>8}{seconds:>9.3f}{peak_mb:>8.1f}  {answer}{'' if ok else '  <-- OVER'}")
    print(f"targets: refusals < 1 s and < +50 MB; valid 1,000-task DAG < 0.5 s; range loop ends at its 2 s "
          f"timeout: {'all met' if not failures else f'{failures} over'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""Builder page weight and time to interactive with a 50-node workflow, in Debian's headless Chromium.

    python bench/builder.py [--nodes 50] [--loads 5] [--keep]

1. Prints the size of the committed bundle (builder.js + builder.css), raw and gzipped (target: JS < 400 kB gz).
2. Migrates a throw-away SQLite database (/tmp/ff-bench-builder-*.sqlite3), creates a user and a workflow of
   N shell.run / http.request tasks in layers, starts gunicorn on a free port of 127.0.0.1 with that database,
   and loads /builder/<id>/ --loads times, each in a fresh browser context (empty HTTP cache, logged in by the
   session cookie). Interactive = every task node rendered and visible on the canvas and the Save button
   enabled, timed by a MutationObserver in the page against performance.now() (0 = navigation start).
3. Prints each load and the median (target: < 1000 ms). The server is killed by its pid in any case.
"""
from __future__ import annotations

import argparse
import gzip
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "builder_ui" / "static" / "builder_ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
JS_GZIP_LIMIT = 400 * 1024
INTERACTIVE_LIMIT_MS = 1000.0

# Installed before any page script: records performance.now() the first time the builder is usable.
READY_PROBE = """
(() => {
  const expected = %d;
  function ready() {
    const nodes = document.querySelectorAll('.react-flow__node');
    if (nodes.length < expected) return false;
    for (const n of nodes) if (getComputedStyle(n).visibility === 'hidden') return false;
    const save = document.querySelector('[data-testid="save"]');
    return !!save && !save.disabled;
  }
  const observer = new MutationObserver(() => {
    if (window.__ffReady === undefined && ready()) {
      window.__ffReady = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(document, {subtree: true, childList: true, attributes: true,
                              attributeFilter: ['style', 'class', 'disabled']});
})();
"""


def kb(size: int) -> str:
    return f"{size / 1024:.1f} kB"


def bundle_sizes() -> bool:
    print("Bundle (builder_ui/static/builder_ui/)")
    ok = True
    for name in ("builder.js", "builder.css"):
        data = (STATIC / name).read_bytes()
        zipped = len(gzip.compress(data, compresslevel=9))
        verdict = ""
        if name.endswith(".js"):
            ok = zipped < JS_GZIP_LIMIT
            verdict = f"  (target < {kb(JS_GZIP_LIMIT)} gz: {'ok' if ok else 'OVER'})"
        print(f"  {name:<12} {kb(len(data)):>10} raw {kb(zipped):>10} gzip{verdict}")
    return ok


def layered_definition(n: int) -> dict:
    """n tasks in layers of five; each depends on one or two tasks of the layer before; every 7th is HTTP."""
    tasks: dict[str, dict] = {}
    width = 5
    for i in range(n):
        layer, slot = divmod(i, width)
        task: dict = ({"action": "http.request", "inputs": {"url": "https://example.com/items", "method": "GET"}}
                      if i % 7 == 6 else {"run": f"echo 'task {i}'"})
        if layer:
            previous = (layer - 1) * width
            task["depends_on"] = sorted({f"task_{previous + slot}", f"task_{previous + (slot + 1) % width}"})
        tasks[f"task_{i}"] = task
    return {"name": f"Bench builder {n} nodes", "tasks": tasks}


def prepare(n_nodes: int) -> tuple[int, str]:
    """Migrate the throw-away database; answer (workflow id, session cookie value)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from workflows.services import workflow_save

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench", is_staff=True, is_superuser=True)
    workflow = workflow_save(source=layered_definition(n_nodes), owner=user)
    client = Client()
    client.force_login(user)  # a database session, which the server process reads from the same file
    return workflow.id, client.cookies["sessionid"].value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "automation.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(url: str, server: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited early:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer {url} within {timeout}s")
            time.sleep(0.1)


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def measure(base_url: str, workflow_id: int, session: str, n_nodes: int, loads: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads + 1):  # the first load warms the server and the OS file cache; not counted
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                try:
                    context.add_cookies([{"name": "sessionid", "value": session, "url": base_url}])
                    context.add_init_script(READY_PROBE % n_nodes)
                    page = context.new_page()
                    page.goto(f"{base_url}/builder/{workflow_id}/")
                    page.wait_for_function("window.__ffReady !== undefined", timeout=30_000)
                    results.append(page.evaluate("""() => {
                        const nav = performance.getEntriesByType('navigation')[0];
                        const api = performance.getEntriesByType('resource').filter(r => r.name.includes('/api/'));
                        return {ready: window.__ffReady, html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd,
                                api: Math.max(...api.map(r => r.responseEnd)), requests: api.length};
                    }"""))
                finally:
                    context.close()
        finally:
            browser.close()
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and the server log")
    args = parser.parse_args()

    bundle_ok = bundle_sizes()

    db_fd, db_name = tempfile.mkstemp(prefix="ff-bench-builder-", suffix=".sqlite3")
    os.close(db_fd)
    log_path = Path(db_name).with_suffix(".log")
    os.environ.update({"DATABASE_URL": f"sqlite:///{db_name}", "DJANGO_SETTINGS_MODULE": "automation.settings",
                       "DEBUG": "0", "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    workflow_id, session = prepare(args.nodes)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(port, log_path)
    try:
        wait_until_up(f"{base_url}/accounts/login/", server, log_path)
        results = measure(base_url, workflow_id, session, args.nodes, args.loads)
    finally:
        stop_server(server)
        if not args.keep:
            for path in (db_name, f"{db_name}-wal", f"{db_name}-shm", log_path):
                Path(path).unlink(missing_ok=True)

    print(f"\nTime to interactive, /builder/<id>/ with {args.nodes} nodes (fresh context each load, gunicorn "
          f"-w 2 on 127.0.0.1, SQLite, headless Chromium)")
    print(f"  {'load':<6}{'HTML ms':>10}{'DOMContentLoaded ms':>22}{'API answered ms':>18}{'interactive ms':>17}")
    for i, r in enumerate(results, 1):
        print(f"  {i:<6}{r['html']:>10.0f}{r['dcl']:>22.0f}{r['api']:>18.0f}{r['ready']:>17.0f}  ({r['requests']} API requests)")
    median = statistics.median(r["ready"] for r in results)
    fast = median < INTERACTIVE_LIMIT_MS
    print(f"  median of {len(results)}: {median:.0f} ms (target < {INTERACTIVE_LIMIT_MS:.0f} ms: "
          f"{'ok' if fast else 'OVER'})")
    sys.exit(0 if bundle_ok and fast else 1)


if __name__ == "__main__":
    main()

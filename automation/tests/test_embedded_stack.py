"""The embedded default (`bin/start`: SQLite + Celery's filesystem broker) end to end, and how it stops.

The integration test starts the real stack through bin/start and its supervisor in temporary folders, walks what a
newcomer touches first (login, dashboard, workflow list, a workflow page, Run now, a run page, the builder, a webhook,
a cron trigger) and stops it by signal. Every test owns the session it starts and SIGKILLs what is left of it.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from automation.testing import ROOT, free_port, wait_for

STOP_WITHIN_SECONDS = 10.0


# --- processes of a session ---------------------------------------------------------------------------------------

def session_processes(session: int, *, zombies: bool = False) -> dict[int, int]:
    """{pid: process group} of the live (and with `zombies`, the exited but unreaped) processes in `session`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp, sid = stat.rsplit(")", 1)[1].split()[:4]
        if int(sid) == session and (zombies or state != "Z"):
            found[int(entry.name)] = int(pgrp)
    return found


def kill_session(session: int) -> None:
    for pid in session_processes(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def assert_all_gone(session: int, signalled_at: float) -> None:
    wait_for(lambda: not session_processes(session), timeout=STOP_WITHIN_SECONDS, interval=0.1,
             message="every process of the stack to exit")
    assert time.monotonic() - signalled_at <= STOP_WITHIN_SECONDS


def ignoring_sigint() -> None:
    # What a non-interactive bash does to `cmd &`: the job starts with SIGINT (and SIGQUIT) ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


# --- the supervisor alone: fast, no Django ------------------------------------------------------------------------

FAKE_STACK = """
import sys
from automation.supervisor import supervise
sys.exit(supervise({
    "web": ["sh", "-c", "sleep 300 & sleep 300 & wait"],           # a master with workers in its group
    "worker": [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                    "print('ready', flush=True); time.sleep(300)"],   # refuses to stop
    "beat": ["sleep", "300"],
}, grace=1.0))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_supervisor_stops_every_child_and_grandchild_on_int_term_and_hup_even_when_started_ignoring_sigint(
        signum):
    supervisor = subprocess.Popen([sys.executable, "-c", FAKE_STACK], cwd=ROOT, start_new_session=True,
                                  preexec_fn=ignoring_sigint, stdout=subprocess.PIPE, text=True)
    try:
        def stack_up() -> bool:
            # Six processes (the supervisor, sh and its two sleeps, the worker, beat) in four groups: the
            # supervisor's own and one per child. A child just forked is still in the supervisor's group.
            processes = session_processes(supervisor.pid)
            return len(processes) >= 6 and len(set(processes.values())) == 4

        wait_for(stack_up, timeout=10, message="the fake stack in its four process groups")
        started = time.monotonic()
        os.kill(supervisor.pid, signum)
        assert supervisor.wait(timeout=STOP_WITHIN_SECONDS) == 128 + signum
        assert_all_gone(supervisor.pid, started)
        assert f"{signal.Signals(signum).name} received" in supervisor.stdout.read()
    finally:
        kill_session(supervisor.pid)


ORPHANING_STACK = """
import sys
from automation.supervisor import supervise
sys.exit(supervise({
    # A subshell starts a short job and exits at once: the job is orphaned inside web's group and exits later.
    "web": ["sh", "-c", "(sleep 1.5 &); exec sleep 300"],
    "beat": ["sleep", "300"],
}, grace=1.0))
"""


def parent_of(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


def test_the_supervisor_adopts_and_reaps_processes_orphaned_in_its_groups_so_a_stopped_group_is_really_gone():
    # A container's pid 1 often reaps late or never, and an unreaped exit is still a member of its process group.
    supervisor = subprocess.Popen([sys.executable, "-c", ORPHANING_STACK], cwd=ROOT, start_new_session=True,
                                  stdout=subprocess.PIPE, text=True)
    try:
        def orphan() -> int | None:
            return next((pid for pid in session_processes(supervisor.pid)
                         if (Path("/proc") / str(pid) / "cmdline").read_bytes() == b"sleep\x001.5\x00"), None)

        orphaned = wait_for(orphan, timeout=10, message="the orphaned job")
        wait_for(lambda: parent_of(orphaned) in (supervisor.pid, 1), timeout=1, interval=0.05,
                 message="the subshell that started it to exit")
        assert parent_of(orphaned) == supervisor.pid  # adopted by the supervisor, not by pid 1
        groups = set(session_processes(supervisor.pid).values()) - {supervisor.pid}
        wait_for(lambda: orphaned not in session_processes(supervisor.pid, zombies=True), timeout=3, interval=0.05,
                 message="the orphan to exit and be reaped")
        os.kill(supervisor.pid, signal.SIGTERM)
        assert supervisor.wait(timeout=STOP_WITHIN_SECONDS) == 128 + signal.SIGTERM
        for pgid in groups:
            with pytest.raises(ProcessLookupError):  # no member left, not even an unreaped one
                os.killpg(pgid, 0)
    finally:
        kill_session(supervisor.pid)


def test_when_one_child_dies_the_supervisor_stops_the_others_and_fails():
    program = ("import sys\nfrom automation.supervisor import supervise\n"
               "sys.exit(supervise({'web': ['sleep', '300'], 'beat': ['sh', '-c', 'exit 3']}, grace=1.0))")
    supervisor = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, start_new_session=True,
                                  stdout=subprocess.PIPE, text=True)
    try:
        assert supervisor.wait(timeout=STOP_WITHIN_SECONDS) == 3
        assert not session_processes(supervisor.pid)
        assert "beat exited with status 3; stopping the others" in supervisor.stdout.read()
    finally:
        kill_session(supervisor.pid)


STACK_ON_CPUS = """
import json, os, sys
os.sched_setaffinity(0, set(json.loads(sys.argv[1])))   # what a container's cpuset or taskset leaves us
from automation.supervisor import stack_commands
print(json.dumps(stack_commands(python="python")))
"""


def commands_on_cpus(cpus: set[int], **env: str) -> dict[str, list[str]]:
    clean = {k: v for k, v in os.environ.items() if k not in ("WORKER_CONCURRENCY", "WEB_WORKERS")}
    out = subprocess.run([sys.executable, "-c", STACK_ON_CPUS, json.dumps(sorted(cpus))], cwd=ROOT,
                         env={**clean, **env}, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_bin_start_sizes_the_worker_pool_and_the_web_workers_to_the_cpus_it_may_use_unless_told():
    one = commands_on_cpus({0})
    assert option(one["worker"], "-c") == "1" and option(one["web"], "--workers") == "3"
    every = len(os.sched_getaffinity(0))
    assert option(commands_on_cpus(os.sched_getaffinity(0))["worker"], "-c") == str(every)
    told = commands_on_cpus({0}, WORKER_CONCURRENCY="5", WEB_WORKERS="2")
    assert option(told["worker"], "-c") == "5" and option(told["web"], "--workers") == "2"


# --- the real stack -----------------------------------------------------------------------------------------------

CRON_WORKFLOW = """\
name: "Every minute"
triggers:
  - {type: cron, cron: "* * * * *"}
tasks:
  tick: {run: "echo tick"}
"""


class Stack:
    """`bin/start` started like `bin/start &` from a script, in temporary folders, on a free port."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path, self.pid_path = folder / "start.log", folder / "start.pid"
        self.files = folder / "files"
        env = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "FLOWFORGE_ADMIN_PASSWORD")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "automation.settings",
            "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "AUTOMATION_VAR_DIR": str(folder / "var"), "STATIC_ROOT": str(folder / "static"),
            "AUTOMATION_FILES_ROOT": str(self.files), "PORT": str(self.port),
            "WEB_WORKERS": "1", "WORKER_CONCURRENCY": "2", "PYTHONUNBUFFERED": "1",
        })
        # The shell backgrounds bin/start exactly as a user's script would; bin/start's pid is the supervisor's.
        self.shell = subprocess.Popen(
            ["bash", "-c", 'bin/start >"$0" 2>&1 & echo $! >"$1"; wait $!', str(self.log_path), str(self.pid_path)],
            cwd=ROOT, env=env, start_new_session=True)
        self.session = self.shell.pid
        self.http = requests.Session()

    @property
    def pid(self) -> int:
        return int(wait_for(lambda: self.pid_path.exists() and self.pid_path.read_text().strip(), timeout=5,
                            message="bin/start's pid"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_healthy(self, timeout: float = 90) -> None:
        def healthy():
            if self.shell.poll() is not None:
                raise AssertionError(f"bin/start exited early:\n{self.log()[-4000:]}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still importing Django
                return False

        wait_for(healthy, timeout=timeout, interval=0.25, message=f"{self.url}/healthz")

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.http.get(self.url + path, timeout=10, **kwargs)
        assert response.status_code == 200, (path, response.status_code, response.text[:2000])
        return response

    def post_form(self, path: str, data: dict) -> requests.Response:
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.http.post(self.url + path, data={"csrfmiddlewaretoken": token, **data},
                              headers={"Referer": self.url + path}, timeout=10, allow_redirects=False)

    def run(self, run_id: int) -> dict:
        return self.get(f"/api/runs/{run_id}/").json()

    def wait_run(self, run_id: int, timeout: float = 30) -> dict:
        return wait_for(lambda: (run := self.run(run_id))["status"] in ("succeeded", "failed", "cancelled") and run,
                        timeout=timeout, interval=0.2, message=f"run {run_id} to finish")

    def kill(self) -> None:
        kill_session(self.session)
        self.shell.wait(timeout=10)


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    started = Stack(tmp_path)
    try:
        yield started
    finally:
        started.kill()


def workflow_ids(stack: Stack) -> dict[str, int]:
    return {w["name"]: w["id"] for w in stack.get("/api/workflows/").json()["results"]}


@pytest.mark.integration
def test_bin_start_serves_a_newcomers_first_hour_on_sqlite_and_the_filesystem_broker_and_stops_on_sigint(stack):
    began = time.monotonic()
    stack.wait_healthy()
    login = stack.post_form("/admin/login/?next=/admin/", {"username": "admin", "password": "admin"})
    assert login.status_code == 302, login.text[:2000]
    assert "Operations" in stack.get("/admin/").text  # the dashboard

    # A cron workflow added in the admin first, so its first fire (the next minute) overlaps the other checks.
    added = stack.post_form("/admin/workflows/workflow/add/", {
        "name": "", "definition_text": CRON_WORKFLOW, "enabled": "on", "owner": "", "retention_days": "",
        "retention_max_runs": "", "based_on_version": ""})
    assert added.status_code == 302, added.text[:3000]
    listing = stack.get("/admin/workflows/workflow/").text
    ids = workflow_ids(stack)
    assert len(ids) >= 7 and {"Data Pipeline", "Webhook to file", "Every minute"} <= set(ids)
    for name in ids:
        assert f">{name}<" in listing

    page = stack.get(f"/admin/workflows/workflow/{ids['Webhook to file']}/change/").text
    hook_path = re.search(r'id="ff-webhook-url" data-path="([^"]+)"', page).group(1)
    hooked = requests.post(stack.url + hook_path, json={"user": {"name": "Ada"}, "items": [1, 2]}, timeout=10)
    assert hooked.status_code == 202, hooked.text
    hook_run = stack.wait_run(hooked.json()["run_id"])
    assert hook_run["status"] == "succeeded", hook_run
    greeting = stack.files / "greetings" / f"{hook_run['id']}.txt"
    assert greeting.read_text() == "Hello Ada, you sent 2 items"

    ran = stack.post_form(f"/admin/workflows/workflow/{ids['Data Pipeline']}/run/", {"payload": "{}"})
    assert ran.status_code == 302, ran.text[:3000]
    run_id = int(re.search(r"/workflowrun/(\d+)/change/", ran.headers["Location"]).group(1))
    assert stack.wait_run(run_id)["status"] == "succeeded"
    run_page = stack.get(ran.headers["Location"]).text
    assert "ff-status-succeeded" in run_page and "Finalizing" in run_page
    assert stack.get(f"/builder/{ids['Data Pipeline']}/").status_code == 200

    def cron_run():
        runs = stack.get(f"/api/runs/?workflow={ids['Every minute']}").json()["results"]
        return next((run for run in runs if run["trigger_kind"] == "cron"), None)

    fired = wait_for(cron_run, timeout=75, interval=0.5, message="the cron trigger's first run")
    assert stack.wait_run(fired["id"])["status"] == "succeeded"
    assert len(stack.get(f"/api/runs/?workflow={ids['Every minute']}").json()["results"]) == 1

    pid = stack.pid
    processes = session_processes(stack.session)
    assert len(set(processes.values())) >= 4, processes  # the script's shell + supervisor, web, worker, beat
    stopped = time.monotonic()
    os.kill(pid, signal.SIGINT)
    assert stack.shell.wait(timeout=STOP_WITHIN_SECONDS) == 128 + signal.SIGINT  # `wait` passes bin/start's on
    assert_all_gone(stack.session, stopped)
    for pgid in set(processes.values()):
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    assert "SIGINT received, stopping" in stack.log()
    print(f"\nembedded stack: started, exercised and stopped in {time.monotonic() - began:.1f} s "
          f"(stopped in {time.monotonic() - stopped:.1f} s)")

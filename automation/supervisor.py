"""`python -m automation.supervisor`: run web (gunicorn), Celery worker and Celery beat together; `bin/start` execs it.

Each child runs in its own process group, so gunicorn's and Celery's own children are reached too. INT, TERM and
HUP stop everything: each child is asked to stop (SIGTERM to it, which stops its own children), and whatever is left of its process group after the
grace period is killed. If one child exits by itself the others are stopped as well, and the exit status says so.

Why a Python process and not a bash `trap`: a non-interactive bash starts `cmd &` with SIGINT ignored, and a signal
ignored on entry cannot be trapped by bash, so `bin/start &` then `kill -INT` used to leave every process running.
Python installs its handlers whatever the disposition it inherited, and the children start with default ones.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from automation.env import env_int, env_str

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_SECONDS = 7.0  # every child gets this long to stop cleanly; the rest of its group is then killed
POLL_SECONDS = 0.1


def stack_commands(*, python: str = sys.executable) -> dict[str, list[str]]:
    """The three processes of a one-machine installation, tuned by the variables bin/start documents."""
    var_dir = env_str("AUTOMATION_VAR_DIR", "var")
    bind = f"{env_str('BIND', '127.0.0.1')}:{env_int('PORT', 8000)}"
    return {
        "worker": [python, "-m", "celery", "-A", "automation", "worker", "-l", "info",
                   "-c", str(env_int("WORKER_CONCURRENCY", 2)), "-Q", env_str("WORKER_QUEUES", "default")],
        "beat": [python, "-m", "celery", "-A", "automation", "beat", "-l", "info", "--pidfile=",
                 "-s", os.path.join(var_dir, "celerybeat-schedule")],
        "web": [python, "-m", "gunicorn", "automation.wsgi:application", "--bind", bind,
                "--workers", str(env_int("WEB_WORKERS", 2)), "--graceful-timeout", "5", "--access-logfile", "-"],
    }


def supervise(commands: Mapping[str, Sequence[str]], *, grace: float = GRACE_SECONDS) -> int:
    """Start `commands`, wait for a stop signal or for one of them to exit, stop them all; the exit status."""
    received: list[int] = []
    for signum in STOP_SIGNALS:
        # Only noted here: raising from a handler could interrupt Popen between fork and bookkeeping.
        signal.signal(signum, lambda signum, frame: received.append(signum))
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            if received:
                break
            children[name] = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, process_group=0)
            print(f"supervisor: started {name} (pid {children[name].pid})", flush=True)
        status = _wait(children, received)
    finally:
        _stop_all(children, grace=grace)
    return status


def _wait(children: Mapping[str, subprocess.Popen], received: list[int]) -> int:
    while not received:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                print(f"supervisor: {name} exited with status {code}; stopping the others", flush=True)
                return code or 1
        time.sleep(POLL_SECONDS)
    print(f"supervisor: {signal.Signals(received[0]).name} received, stopping", flush=True)
    return 128 + received[0]


def _stop_all(children: Mapping[str, subprocess.Popen], *, grace: float) -> None:
    for child in children.values():
        # The leader stops its own workers/pool cleanly; a group whose leader already exited is asked directly.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        else:
            _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(child) for child in children.values()):
        time.sleep(POLL_SECONDS)
    for name, child in children.items():
        if _group_alive(child):
            print(f"supervisor: {name} did not stop within {grace:.0f} s; killing its process group", flush=True)
            _signal_group(child.pid, signal.SIGKILL)
        child.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _group_alive(child: subprocess.Popen) -> bool:
    """True while the child or anything left in its process group (pool processes, gunicorn workers) runs."""
    child.poll()  # reap the leader, so a finished one does not count as a member
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    return supervise(stack_commands())


if __name__ == "__main__":
    sys.exit(main())

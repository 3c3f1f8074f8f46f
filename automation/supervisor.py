"""`python -m automation.supervisor`: run web (gunicorn), Celery worker and Celery beat together; `bin/start` execs it.

Each child runs in its own process group, so gunicorn's and Celery's own children are reached too. INT, TERM and
HUP stop everything within GRACE_SECONDS: each child gets SIGTERM (it then stops its own workers or pool), what is
left of its process group is told directly halfway through and killed at the end. If one child exits by itself,
the others are stopped as well and the exit status says so.

Why a Python process and not a bash `trap`: a non-interactive bash starts `cmd &` with SIGINT ignored, and a signal
ignored on entry cannot be trapped by bash, so `bin/start &` then `kill -INT` used to leave every process running.
Python installs its handlers whatever the disposition it inherited, and the children start with default ones.

The supervisor is also its children's subreaper (Linux): a process orphaned inside a group (a gunicorn worker whose
master died first, a command a shell step left running in the background) is reparented to it instead of to pid 1,
and reaped. A container's pid 1 is often not an init and never reaps, and an unreaped exit still counts as a
member of its process group, so a stopped group would never look empty.
"""
from __future__ import annotations

import ctypes
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
REAP_AFTER_KILL_SECONDS = 2.0  # how long SIGKILLed members may take to exit and be reaped
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def cpu_count() -> int:
    """The CPUs this process may run on (a container's cpuset or `taskset`, not the whole host)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_worker_concurrency() -> int:
    """One pool process per CPU: on 2 CPUs bench/throughput.py finished more runs per second with 2 than with 1
    (an engine task mostly waits on the database) or 4 (the pool then takes the CPU from the web workers)."""
    return cpu_count()


def default_web_workers() -> int:
    """gunicorn's usual 2 x CPUs + 1: a sync worker idles while its request waits on the database, and a
    synchronous webhook holds one for up to 30 s, which must not leave the UI without a free worker."""
    return 2 * cpu_count() + 1


def stack_commands(*, python: str = sys.executable) -> dict[str, list[str]]:
    """The three processes of a one-machine installation, tuned by the variables bin/start documents."""
    var_dir = env_str("AUTOMATION_VAR_DIR", "var")
    bind = f"{env_str('BIND', '127.0.0.1')}:{env_int('PORT', 8000)}"
    return {
        # Gossip and mingle only serve remote control between workers, which nothing here uses: skip their traffic.
        "worker": [python, "-m", "celery", "-A", "automation", "worker", "-l", "info",
                   "-c", str(env_int("WORKER_CONCURRENCY", default_worker_concurrency())),
                   "-Q", env_str("WORKER_QUEUES", "default"), "--without-gossip", "--without-mingle"],
        "beat": [python, "-m", "celery", "-A", "automation", "beat", "-l", "info", "--pidfile=",
                 "-s", os.path.join(var_dir, "celerybeat-schedule")],
        "web": [python, "-m", "gunicorn", "automation.wsgi:application", "--bind", bind,
                "--workers", str(env_int("WEB_WORKERS", default_web_workers())), "--graceful-timeout", "5",
                "--access-logfile", "-",
                # A synchronous webhook (respond: on_finish) holds its worker up to 30 s: more than gunicorn's 30 s.
                "--timeout", "60"],
    }


def supervise(commands: Mapping[str, Sequence[str]], *, grace: float = GRACE_SECONDS) -> int:
    """Start `commands`, wait for a stop signal or for one of them to exit, stop them all; the exit status."""
    received: list[int] = []
    for signum in STOP_SIGNALS:
        # Only noted here: raising from a handler could interrupt Popen between fork and bookkeeping.
        signal.signal(signum, lambda signum, frame: received.append(signum))
    _become_subreaper()
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
        _reap_orphans(children)
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                print(f"supervisor: {name} exited with status {code}; stopping the others", flush=True)
                return code or 1
        time.sleep(POLL_SECONDS)
    print(f"supervisor: {signal.Signals(received[0]).name} received, stopping", flush=True)
    return 128 + received[0]


def _stop_all(children: Mapping[str, subprocess.Popen], *, grace: float) -> None:
    """SIGTERM each leader; at half the grace SIGTERM what is left of its group; at the end SIGKILL the group.

    The leader first, so gunicorn and Celery stop their workers in order; an idle prefork Celery worker still
    needs about 8 s for a warm shutdown, so its pool is then told directly (an interrupted task is redelivered:
    acks_late with reject_on_worker_lost).
    """
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        else:
            _signal_group(child.pid, signal.SIGTERM)  # its leader already exited: what is left of the group
    began, hurried = time.monotonic(), False
    running = dict(children)
    while running and time.monotonic() < began + grace:
        _reap_orphans(children)
        if not hurried and time.monotonic() >= began + grace / 2:
            hurried = True
            for child in running.values():
                _signal_group(child.pid, signal.SIGTERM)
        for name, child in list(running.items()):
            if not _group_alive(child):
                print(f"supervisor: {name} stopped after {time.monotonic() - began:.1f} s", flush=True)
                del running[name]
        time.sleep(POLL_SECONDS)
    for name, child in running.items():
        if _group_alive(child):
            print(f"supervisor: {name} did not stop within {grace:.0f} s; killing its process group", flush=True)
            _signal_group(child.pid, signal.SIGKILL)
    for child in children.values():
        child.wait()
    reap_until = time.monotonic() + REAP_AFTER_KILL_SECONDS
    while any(_group_alive(child) for child in children.values()) and time.monotonic() < reap_until:
        _reap_orphans(children)
        time.sleep(POLL_SECONDS)


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl: orphans then go to pid 1 as before
        pass


def _reap_orphans(children: Mapping[str, subprocess.Popen]) -> None:
    """Reap exited processes reparented to us; our own children are left to their Popen, which needs the status."""
    own = {child.pid for child in children.values()}
    while True:
        try:
            exited = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # no children at all
            return
        if exited is None or exited.si_pid in own:
            return
        os.waitpid(exited.si_pid, 0)


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

"""shell.run: run a command through /bin/sh and capture what it printed.

The command dies with the attempt that started it (SPEC §10): otherwise a worker killed mid-command leaves the
shell running, and the retry runs the side effect a second time next to the orphan. The command gets its own
process group; on Linux its shell gets SIGKILL when the worker thread that started it dies
(prctl PR_SET_PDEATHSIG), and a watchdog (`sh -c 'read; kill -KILL -<group>'`, reading a pipe only the worker
holds) kills the whole group, grandchildren included, once that pipe closes: when the worker dies however it
dies, or when the command is done. A timeout kills the group too.
"""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys

from connectors.base import Action, ActionContext, ActionError

OUTPUT_LIMIT = 1024 * 1024
_PR_SET_PDEATHSIG = 1


# Looked up once here: the child between fork and exec must not load libraries (another thread may hold locks).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with(parent_pid: int) -> None:
    """In the child between fork and exec: SIGKILL when the thread that forked it exits (or already has)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(137)


def _watch_group(pgid: int) -> subprocess.Popen | None:
    """A watchdog that kills process group `pgid` when the returned process's stdin closes without "done"."""
    try:
        return subprocess.Popen(["/bin/sh", "-c", f'read -r line; [ "$line" = done ] || kill -KILL -{pgid}'],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        return None


def _release(watchdog: subprocess.Popen | None, pgid: int, *, kill: bool) -> None:
    """End the command's group (what it left behind in the background too) and stop the watchdog."""
    if kill:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if watchdog is not None:
        try:
            watchdog.communicate(b"done\n", timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            watchdog.kill()
            watchdog.wait()


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n[... output truncated ...]"


class ShellRun(Action):
    shell_quoted_inputs = ("command",)
    name = "shell.run"
    title = "Run shell command"
    description = "Runs a command with /bin/sh; fails when it exits non-zero. Output: stdout, stderr, exit_code."
    input_schema = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "description": "The command line, run by /bin/sh -c"},
            "cwd": {"type": "string", "description": "Working directory"},
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Extra environment variables",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"stdout": {"type": "string"}, "stderr": {"type": "string"}, "exit_code": {"type": "integer"}},
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict:
        if not context.config.allow_shell:
            raise ActionError(
                "shell.run is disabled for web-triggered runs; set AUTOMATION_ALLOW_SHELL=1 to allow it",
                retryable=False,
            )
        env = {**os.environ, **inputs.get("env", {})}
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", inputs["command"]],
                cwd=inputs.get("cwd") or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,  # its own process group, so a timeout kills its children too
                preexec_fn=functools.partial(_die_with, os.getpid()) if _prctl else None,
            )
        except OSError as exc:
            raise ActionError(f"could not start the command: {exc}", retryable=False) from None
        watchdog = _watch_group(proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=context.timeout)
        except subprocess.TimeoutExpired:
            _release(watchdog, proc.pid, kill=True)
            stdout, stderr = proc.communicate()
            output = {"stdout": _clip(stdout), "stderr": _clip(stderr), "exit_code": None}
            raise ActionError(f"timed out after {context.timeout:g}s", output=output) from None
        except BaseException:
            _release(watchdog, proc.pid, kill=True)
            raise
        _release(watchdog, proc.pid, kill=False)
        output = {"stdout": _clip(stdout), "stderr": _clip(stderr), "exit_code": proc.returncode}
        for line in stdout.splitlines():
            context.log(line)
        for line in stderr.splitlines():
            context.log(f"[stderr] {line}")
        if proc.returncode != 0:
            last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
            detail = f": {last}" if last else ""
            raise ActionError(f"exit code {proc.returncode}{detail}", output=output)
        return output

"""shell.run: run a command through /bin/sh and capture what it printed."""
from __future__ import annotations

import os
import signal
import subprocess

from connectors.base import Action, ActionContext, ActionError

OUTPUT_LIMIT = 1024 * 1024


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
            )
        except OSError as exc:
            raise ActionError(f"could not start the command: {exc}", retryable=False) from None
        try:
            stdout, stderr = proc.communicate(timeout=context.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            output = {"stdout": _clip(stdout), "stderr": _clip(stderr), "exit_code": None}
            raise ActionError(f"timed out after {context.timeout:g}s", output=output) from None
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

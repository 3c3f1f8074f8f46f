"""`python manage.py runworkflow FILE [--input JSON] [--owner USERNAME]`: run a definition in this process, no broker
needed. `{{ secrets.NAME }}` reads the vault of --owner (default: the first superuser)."""
from __future__ import annotations

import json
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from connectors.platform import action_config
from connectors.registry import default_registry
from connectors.secrets import secret_value
from runs.executor import AttemptResult, RecordingSecrets
from runs.local import LocalRunner, needs_server_message, server_only_tasks
from runs.states import RunStatus, TaskStatus, TriggerKind
from workflows.definition import InvalidDefinition, compile_definition
from workflows.graph import format_plan


class ConsoleReporter:
    """Prints the seed's format: [PLAN], [RUNNING], [SUCCESS], [FAILED], [SKIPPED], with each task's output."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def plan(self, levels: list[list[str]]) -> None:
        self._print(f"[PLAN] Execution order: {format_plan(levels)}")

    def task_started(self, task_id: str, attempt: int) -> None:
        suffix = f" (attempt {attempt})" if attempt > 1 else ""
        self._print(f"[RUNNING] Task {task_id}{suffix}")

    def task_finished(self, task_id: str, result: AttemptResult, will_retry: bool) -> None:
        lines = []
        if result.status == TaskStatus.SUCCEEDED:
            lines.append(f"[SUCCESS] Task {task_id}")
        elif result.status == TaskStatus.SKIPPED:
            lines.append(f"[SKIPPED] Task {task_id}: `when` was false")
        else:
            retry = " (will retry)" if will_retry else ""
            lines.append(f"[FAILED] Task {task_id}: {result.error}{retry}")
        lines.extend("    " + line for line in _output_lines(result.output))
        self._print("\n".join(lines))

    def task_skipped(self, task_id: str, reason: str) -> None:
        self._print(f"[SKIPPED] Task {task_id}")


def _output_lines(output: dict) -> list[str]:
    if not output:
        return []
    if set(output) >= {"stdout", "stderr"}:
        lines = output["stdout"].rstrip("\n").splitlines()
        lines += [f"[stderr] {line}" for line in (output["stderr"] or "").rstrip("\n").splitlines()]
        return lines
    return json.dumps(output, indent=2, default=str).splitlines()


class Command(BaseCommand):
    help = "Run a workflow definition file in-process and print each task's progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="YAML or JSON workflow definition")
        parser.add_argument("--input", default=None, help="JSON payload, available as trigger.body")
        parser.add_argument("--owner", default=None,
                            help="username whose secrets the run reads (default: the first superuser)")

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            self._fail(f"cannot read {path}: {exc.strerror}")
        try:
            body = json.loads(options["input"]) if options["input"] else {}
        except json.JSONDecodeError as exc:
            self._fail(f"--input is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
        lookup = self._secret_lookup(options["owner"])
        registry = default_registry()
        try:
            spec = compile_definition(source, registry)
        except InvalidDefinition as exc:
            self._fail("\n".join(f"[INVALID] {path}: {problem}" for problem in exc.problems))
        refused = server_only_tasks(spec)
        if refused:
            self._fail("\n".join(f"[REFUSED] Task {task_id}: {needs_server_message(action)}"
                                 for task_id, action in refused.items()))
        runner = LocalRunner(
            spec,
            registry=registry,
            config=action_config(allow_shell=True),
            reporter=ConsoleReporter(self.stdout),
            trigger={"body": body, "kind": TriggerKind.CLI.value},
            secrets=RecordingSecrets(lookup),
            max_items=settings.AUTOMATION_MAX_ITEMS,
        )
        result = runner.run()
        self.stdout.write(f"[RUN] {spec.name}: {result.status}")
        self.stdout.flush()
        sys.exit(0 if result.status == RunStatus.SUCCEEDED else 1)

    def _secret_lookup(self, username: str | None) -> Callable[[str], str | None]:
        users = get_user_model().objects
        if username is not None:
            owner_id = users.filter(username=username).values_list("id", flat=True).first()
            if owner_id is None:
                self._fail(f"--owner: no user named {username!r}")
            return lambda name: secret_value(name, owner_id=owner_id)

        # Without --owner the database is only touched once a template reads a secret, so definitions without
        # secrets run with no database at all.
        @cache
        def first_superuser_id() -> int | None:
            return users.filter(is_superuser=True).order_by("id").values_list("id", flat=True).first()

        return lambda name: secret_value(name, owner_id=first_superuser_id())

    def _fail(self, message: str) -> None:
        self.stderr.write(message)
        sys.exit(2)


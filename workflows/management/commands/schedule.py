"""`python manage.py schedule --config FILE [--max-runs N]`: the seed's standalone cron daemon (SPEC §5).

Thin wiring only: the config checks and the loop live in workflows.scheduler_daemon.
"""
from __future__ import annotations

import argparse
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workflows.scheduler_daemon import ConfigError, Scheduler, load_config


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class Command(BaseCommand):
    help = "Run the shell commands of a YAML `jobs:` file on their cron schedules until Ctrl+C or SIGTERM."
    # A daemon that only runs shell commands needs neither the project checks nor the database.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", required=True, help="YAML file with a `jobs:` list of name, cron, command")
        parser.add_argument(
            "--max-runs", type=_positive_int, default=None, help="stop after this many executions in total"
        )

    def handle(self, *args: Any, config: str, max_runs: int | None, **options: Any) -> None:
        try:
            jobs = load_config(config)
        except ConfigError as exc:
            for line in exc.errors:
                self.stderr.write(line)
            self.stderr.flush()
            raise SystemExit(2) from None

        scheduler = Scheduler(jobs, write=self._print, max_runs=max_runs)
        previous = {
            signum: signal.signal(signum, lambda *_: scheduler.stop()) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            scheduler.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _print(self, line: str) -> None:
        # Flush every line: the daemon's stdout is usually a pipe to a log collector.
        self.stdout.write(line)
        self.stdout.flush()

"""`python manage.py importworkflow FILE...`: create or update workflows by name and sync their triggers."""
from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from workflows.definition import InvalidDefinition
from workflows.services import workflow_save


class Command(BaseCommand):
    help = "Create or update workflows from YAML/JSON files (matched by name)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+")
        parser.add_argument("--owner", help="username of the owner for newly created workflows")

    def handle(self, *args, **options) -> None:
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                self.stderr.write(f"[ERROR] unknown user '{options['owner']}'")
                sys.exit(2)
        failed = 0
        for name in options["files"]:
            path = Path(name)
            try:
                source = path.read_text(encoding="utf-8")
                workflow = workflow_save(source=source, owner=owner)
            except OSError as exc:
                self.stderr.write(f"[ERROR] {path}: {exc.strerror}")
                failed += 1
                continue
            except InvalidDefinition as exc:
                for problem in exc.problems:
                    self.stderr.write(f"[INVALID] {path}: {problem}")
                failed += 1
                continue
            self.stdout.write(f"[IMPORTED] {path}: '{workflow.name}' at version {workflow.version}")
        if failed:
            sys.exit(1)

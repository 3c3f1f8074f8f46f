"""`python manage.py importworkflow [--owner USERNAME] FILE...`: create or update workflows by name within one
owner (default: the first superuser) and sync their triggers."""
from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from workflows.definition import InvalidDefinition
from workflows.management.owners import OwnerNotFound, command_owner
from workflows.services import workflow_import


class Command(BaseCommand):
    help = "Create or update workflows from YAML/JSON files (matched by name within the owner's workflows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+")
        parser.add_argument("--owner", help="username of the owner (default: the first superuser)")

    def handle(self, *args, **options) -> None:
        try:
            owner = command_owner(options["owner"])
        except OwnerNotFound as exc:
            self.stderr.write(f"[ERROR] {exc}")
            sys.exit(2)
        if owner is None:
            self.stderr.write("[WARN] there is no user yet: the workflows are imported without an owner (only "
                              "superusers see them, and they read no secrets); pass --owner USERNAME to choose one")
        failed = 0
        for name in options["files"]:
            path = Path(name)
            try:
                source = path.read_text(encoding="utf-8")
                workflow = workflow_import(source=source, owner=owner)
            except OSError as exc:
                self.stderr.write(f"[ERROR] {path}: {exc.strerror}")
                failed += 1
                continue
            except InvalidDefinition as exc:
                for problem in exc.problems:
                    self.stderr.write(f"[INVALID] {path}: {problem}")
                failed += 1
                continue
            whose = owner.get_username() if owner else "no owner"
            self.stdout.write(f"[IMPORTED] {path}: '{workflow.name}' of {whose} at version {workflow.version}")
        if failed:
            sys.exit(1)

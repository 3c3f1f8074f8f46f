"""`python manage.py exportworkflow [--owner USERNAME] NAME`: print the workflow's definition as it was written
(comments and layout kept; YAML rendered from the definition when it arrived as an object), re-importing
identically."""
from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandParser

from workflows.management.owners import OwnerNotFound, command_owner
from workflows.models import Workflow, workflow_name_key
from workflows.services import workflow_export


class Command(BaseCommand):
    help = "Print a workflow's definition as written (YAML or JSON), ready for importworkflow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", help="username of the owner; needed only when several users have a "
                                            "workflow of that name")

    def handle(self, *args, **options) -> None:
        matches = Workflow.objects.filter(name_key=workflow_name_key(options["name"]))
        if options["owner"]:
            try:
                matches = matches.filter(owner=command_owner(options["owner"]))
            except OwnerNotFound as exc:
                self.stderr.write(f"[ERROR] {exc}")
                sys.exit(2)
        found = list(matches.select_related("owner")[:2])
        if not found:
            self.stderr.write(f"[ERROR] no workflow named '{options['name']}'")
            sys.exit(2)
        if len(found) > 1:
            self.stderr.write(f"[ERROR] several users have a workflow named '{options['name']}'; "
                              "pass --owner USERNAME")
            sys.exit(2)
        self.stdout.write(workflow_export(workflow=found[0]), ending="")

"""`python manage.py exportworkflow [--owner USERNAME] NAME`: print the workflow's definition as YAML that
re-imports identically."""
from __future__ import annotations

import sys

import yaml
from django.core.management.base import BaseCommand, CommandParser

from workflows.management.owners import OwnerNotFound, command_owner
from workflows.models import Workflow, workflow_name_key


class Command(BaseCommand):
    help = "Print a workflow's definition as YAML."

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
        workflow = found[0]
        definition = {"name": workflow.name, **{k: v for k, v in workflow.definition.items() if k != "name"}}
        self.stdout.write(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True), ending="")

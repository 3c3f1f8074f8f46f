"""`python manage.py exportworkflow NAME`: print the workflow's definition as YAML that re-imports identically."""
from __future__ import annotations

import sys

import yaml
from django.core.management.base import BaseCommand, CommandParser

from workflows.models import Workflow


class Command(BaseCommand):
    help = "Print a workflow's definition as YAML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args, **options) -> None:
        workflow = Workflow.objects.filter(name=options["name"]).first()
        if workflow is None:
            self.stderr.write(f"[ERROR] no workflow named '{options['name']}'")
            sys.exit(2)
        definition = {"name": workflow.name, **{k: v for k, v in workflow.definition.items() if k != "name"}}
        self.stdout.write(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True), ending="")

"""`manage.py bootstrap_demo [FOLDER]`: a first-start helper. Creates the demo superuser `admin` when there is no
superuser yet, and imports the example workflows of FOLDER (skipping `invalid-*` and `schedule.yaml`).

Safe to run on every start: the user is left alone once it exists, and an example that already exists is never
touched again, so the operator's edits (nodes added in the builder, triggers, enabled flag) and its version stay.
Only examples that are missing are created.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from workflows.definition import InvalidDefinition
from workflows.services import definition_validate, workflow_name_taken, workflow_save

SKIPPED_FILES = {"schedule.yaml"}  # the cron daemon's config, not a workflow
SUFFIXES = {".yaml", ".yml", ".json"}


class Command(BaseCommand):
    help = "Create the demo admin user (if there is no superuser) and import the example workflows."

    def add_arguments(self, parser):
        parser.add_argument("folder", nargs="?", help="A folder of example workflow files (YAML or JSON)")

    def handle(self, *args, folder: str | None = None, **options):
        admin = self._ensure_admin()
        if folder:
            self._import(Path(folder), owner=admin)

    def _ensure_admin(self):
        users = get_user_model()
        existing = users.objects.filter(is_superuser=True).order_by("id").first()
        if existing is not None:
            self.stdout.write(f"Superuser '{existing.get_username()}' exists; no demo user created.")
            return existing
        password = os.environ.get("FLOWFORGE_ADMIN_PASSWORD")
        if not password:
            password = "admin"
            self.stderr.write(self.style.WARNING(
                "WARNING: FLOWFORGE_ADMIN_PASSWORD is not set; the demo user 'admin' has the password 'admin'. "
                "Change it before this instance is reachable by anyone else."))
        user = users.objects.create_superuser("admin", email="admin@localhost", password=password)
        self.stdout.write(self.style.SUCCESS("Created superuser 'admin'."))
        return user

    def _import(self, folder: Path, *, owner) -> None:
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        for path in sorted(folder.iterdir()):
            if path.suffix not in SUFFIXES or path.name in SKIPPED_FILES or path.name.startswith("invalid-"):
                continue
            source = path.read_text(encoding="utf-8")
            try:
                _, spec = definition_validate(source)
                if workflow_name_taken(name=spec.name, owner=owner):
                    self.stdout.write(f"{path.name}: '{spec.name}' exists; left as it is")
                    continue
                workflow = workflow_save(source=source, owner=owner)  # creates; never updates an existing one
            except InvalidDefinition as exc:
                self.stderr.write(self.style.ERROR(f"{path.name}: not imported: {exc}"))
                continue
            self.stdout.write(f"{path.name}: '{workflow.name}' imported")

"""Signals of the triggers app, wired once from `TriggersConfig.ready()` (the way django-celery-beat wires its own).

The workflows layer below announces a save (`workflows.signals.workflow_saved`, sent inside `workflow_save`'s
transaction) and Django announces a delete (`pre_delete`); this layer listens and keeps the periodic tasks in
step, so the workflows layer never imports the layer that schedules its triggers.
"""
from __future__ import annotations

from django.db.models.signals import pre_delete

from workflows.definition import WorkflowSpec
from workflows.models import Workflow
from workflows.signals import workflow_saved

from .schedules import remove_triggers, sync_triggers


def _sync_triggers(sender, *, workflow: Workflow, spec: WorkflowSpec, **kwargs) -> None:
    sync_triggers(workflow, spec)


def _remove_triggers(sender, instance: Workflow, **kwargs) -> None:
    # Every way a workflow disappears (service, admin, cascade, shell) must take its beat schedules with it.
    remove_triggers(instance)


def connect() -> None:
    workflow_saved.connect(_sync_triggers, dispatch_uid="flowforge-workflow-sync-triggers")
    pre_delete.connect(_remove_triggers, sender=Workflow, dispatch_uid="flowforge-workflow-remove-triggers")

"""Model signals of the workflows app, wired once from `WorkflowsConfig.ready()`."""
from __future__ import annotations

from django.db.models.signals import pre_delete


def _remove_triggers(sender, instance, **kwargs) -> None:
    # Every way a workflow disappears (admin, cascade, shell) must take its beat schedules with it.
    from .triggers import remove_triggers

    remove_triggers(instance)


def connect() -> None:
    from .models import Workflow

    pre_delete.connect(_remove_triggers, sender=Workflow, dispatch_uid="flowforge-workflow-remove-triggers")

"""Saving workflows (validated, versioned, triggers synced) and compiling stored versions."""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from django.db import transaction

from connectors.registry import default_registry
from workflows.definition import InvalidDefinition, Problem, WorkflowSpec, compile_definition, parse_source

from .models import Workflow, WorkflowVersion


class VersionConflict(Exception):
    """The workflow changed since the version the edit was based on (the API answers 409)."""

    def __init__(self, current: int):
        self.current = current
        super().__init__(f"the workflow is at version {current}; reload it and apply your change again")


def definition_validate(source: str | bytes | Mapping) -> tuple[dict, WorkflowSpec]:
    """Parse and validate; returns the definition as a JSON-able dict and its compiled spec."""
    data = parse_source(source)
    return data, compile_definition(data, default_registry())


@transaction.atomic
def workflow_save(*, source: str | bytes | Mapping, name: str | None = None, owner=None,
                  workflow: Workflow | None = None, expected_version: int | None = None,
                  enabled: bool | None = None) -> Workflow:
    """Create or update a workflow. A changed definition bumps the version and keeps the old one."""
    definition, spec = definition_validate(source)
    name = (name or spec.name).strip()
    if workflow is None:
        workflow = Workflow.objects.filter(name=name).first()
    else:
        workflow = Workflow.objects.select_for_update().get(id=workflow.id)
        clash = Workflow.objects.filter(name=name).exclude(id=workflow.id).exists()
        if clash:
            raise InvalidDefinition([Problem("name", f"a workflow named '{name}' already exists")])
    if workflow is not None and expected_version is not None and workflow.version != expected_version:
        raise VersionConflict(workflow.version)
    if workflow is None:
        workflow = Workflow.objects.create(name=name, owner=owner, definition=definition, version=1,
                                           enabled=spec.enabled if enabled is None else enabled)
        created_version = WorkflowVersion.objects.create(workflow=workflow, version=1, definition=definition,
                                                         created_by=owner)
    else:
        created_version = None
        if workflow.definition != definition or workflow.current_version_id is None:
            workflow.version += 1 if workflow.current_version_id else 0
            created_version = WorkflowVersion.objects.create(workflow=workflow, version=workflow.version,
                                                             definition=definition, created_by=owner)
        workflow.name, workflow.definition = name, definition
        if enabled is not None:
            workflow.enabled = enabled
        elif created_version is not None:
            workflow.enabled = spec.enabled
    if created_version is not None:
        workflow.current_version = created_version
    workflow.save()
    from workflows import triggers

    triggers.sync_triggers(workflow, spec)
    return workflow


def workflow_delete(*, workflow: Workflow) -> None:
    from workflows import triggers

    with transaction.atomic():
        triggers.remove_triggers(workflow)
        workflow.delete()


@lru_cache(maxsize=512)
def spec_for_version(version_id: int) -> WorkflowSpec:
    """The compiled definition of a stored version; versions never change, so this caches per process."""
    definition = WorkflowVersion.objects.values_list("definition", flat=True).get(id=version_id)
    return compile_definition(definition, default_registry())

"""Saving workflows (validated, versioned, announced to the layers above) and compiling stored versions."""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import yaml
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from connectors.registry import default_registry

from .definition import InvalidDefinition, Problem, WorkflowSpec, compile_definition, parse_source
from .limits import LimitExceeded, check_storable
from .models import NAME_KEY_MAX_LENGTH, Workflow, WorkflowVersion, workflow_name_key
from .signals import workflow_deleting, workflow_saved


class VersionConflict(Exception):
    """The workflow changed since the version the edit was based on (the API answers 409)."""

    def __init__(self, current: int):
        self.current = current
        super().__init__(f"the workflow is at version {current}; reload it and apply your change again")


class WorkflowBusy(Exception):
    """The workflow has queued or running runs, so it cannot be deleted yet (the API answers 409)."""

    def __init__(self, run_ids: list[int]):
        self.run_ids = run_ids
        shown = ", ".join(str(run_id) for run_id in run_ids[:20]) + (", ..." if len(run_ids) > 20 else "")
        super().__init__(f"the workflow has active runs ({shown}); cancel them first")


def definition_validate(source: str | bytes | Mapping) -> tuple[dict, WorkflowSpec]:
    """Parse and validate; returns the definition as a JSON-able dict and its compiled spec."""
    data = parse_source(source)
    return data, compile_definition(data, default_registry())


def definition_yaml(definition: Mapping) -> str:
    """A definition rendered as YAML, for one that arrived as an object and so has no source text."""
    return yaml.safe_dump(dict(definition), sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=100)


def definition_source_text(*, definition: Mapping, source: str) -> str:
    """What an editor shows: the source as written, else the definition rendered as YAML."""
    return source or definition_yaml(definition)


def workflow_export(*, workflow: Workflow) -> str:
    """YAML (or the JSON text it was written in) that re-imports to this workflow's definition under its name.

    The source as written, comments included, unless the workflow was renamed apart from its definition's
    `name`: then the rendered definition with the workflow's name, so the import updates this workflow.
    """
    if workflow.source and workflow_name_key(str(workflow.definition.get("name", ""))) == workflow.name_key:
        return workflow.source
    return definition_yaml({"name": workflow.name, **{k: v for k, v in workflow.definition.items() if k != "name"}})


def _source_text(source: str | bytes | Mapping) -> str | None:
    """The text to keep beside the parsed definition; None for a mapping (no text to keep)."""
    if isinstance(source, Mapping):
        return None
    text = source.decode("utf-8") if isinstance(source, bytes) else source  # parse_source refused non-UTF-8
    try:
        check_storable(text)
    except LimitExceeded as exc:
        raise InvalidDefinition([Problem("", exc.message)]) from None
    return text


def workflow_name_clean(name: str) -> str:
    """The name as stored (surrounding whitespace stripped); InvalidDefinition at `name` when unusable."""
    name = name.strip()
    problem = None
    if not name:
        problem = "must not be empty"
    else:
        try:
            check_storable(name)
        except LimitExceeded as exc:
            problem = exc.message
    if problem is None and len(workflow_name_key(name)) > NAME_KEY_MAX_LENGTH:
        problem = "too long once normalised"
    if problem:
        raise InvalidDefinition([Problem("name", problem)])
    return name


def workflow_name_taken(*, name: str, owner: AbstractBaseUser | None, exclude_id: int | None = None) -> bool:
    """Whether `owner` already has another workflow whose name compares equal to `name` (SPEC §11)."""
    clash = Workflow.objects.filter(owner=owner, name_key=workflow_name_key(name))
    return clash.exclude(id=exclude_id).exists() if exclude_id else clash.exists()


def _name_taken_error(name: str) -> InvalidDefinition:
    return InvalidDefinition([Problem("name", f"a workflow named '{name}' already exists")])


@transaction.atomic
def workflow_save(*, source: str | bytes | Mapping, owner: AbstractBaseUser | None = None, name: str | None = None,
                  workflow: Workflow | None = None, expected_version: int | None = None,
                  enabled: bool | None = None, author: AbstractBaseUser | None = None) -> Workflow:
    """Create a workflow (`workflow` None) or update `workflow`; a create never updates an existing one.

    `owner` owns a new workflow; on an update a user moves the workflow to them and None keeps its owner.
    `author` is recorded on a new version (default: the owner). A name the owner already uses (compared
    after normalising) raises InvalidDefinition at `name`, also when a concurrent save wins the race.
    A changed definition bumps the version and keeps the old one. Text (YAML/JSON) is kept as written beside the
    parsed definition; a mapping equal to the stored definition keeps the stored text, a different one drops it.
    """
    definition, spec = definition_validate(source)
    text = _source_text(source)
    name = workflow_name_clean(name or spec.name)
    if workflow is None:
        return _create(definition, spec, text or "", name=name, owner=owner, enabled=enabled, author=author)
    workflow = Workflow.objects.select_for_update().get(id=workflow.id)
    if expected_version is not None and workflow.version != expected_version:
        raise VersionConflict(workflow.version)
    if owner is not None:
        workflow.owner = owner
    created_version = None
    if workflow.definition != definition or workflow.current_version_id is None:
        workflow.version += 1 if workflow.current_version_id else 0
        created_version = WorkflowVersion.objects.create(workflow=workflow, version=workflow.version,
                                                         definition=definition, source=text or "",
                                                         created_by=author or workflow.owner)
        workflow.current_version = created_version
        workflow.source = text or ""
    elif text is not None and text != workflow.source:
        # Only comments or layout changed: same definition, so no new version; the current one shows the new text.
        WorkflowVersion.objects.filter(id=workflow.current_version_id).update(source=text)
        workflow.source = text
    workflow.name, workflow.definition = name, definition
    if enabled is not None:
        workflow.enabled = enabled
    elif created_version is not None:
        workflow.enabled = spec.enabled
    _store(workflow)
    workflow_saved.send(sender=Workflow, workflow=workflow, spec=spec)
    return workflow


def _create(definition: dict, spec: WorkflowSpec, source: str, *, name: str, owner, enabled: bool | None,
            author) -> Workflow:
    workflow = Workflow(name=name, owner=owner, definition=definition, source=source, version=1,
                        enabled=spec.enabled if enabled is None else enabled)
    _store(workflow)
    workflow.current_version = WorkflowVersion.objects.create(workflow=workflow, version=1, definition=definition,
                                                              source=source, created_by=author or owner)
    workflow.save(update_fields=["current_version"])
    workflow_saved.send(sender=Workflow, workflow=workflow, spec=spec)
    return workflow


def _store(workflow: Workflow) -> None:
    # The unique (owner, name_key) constraint decides: no check-then-write window for a racing save.
    try:
        with transaction.atomic():
            workflow.save()
    except IntegrityError:
        if workflow_name_taken(name=workflow.name, owner=workflow.owner, exclude_id=workflow.pk):
            raise _name_taken_error(workflow.name) from None
        raise


def workflow_import(*, source: str | bytes | Mapping, owner: AbstractBaseUser) -> Workflow:
    """`importworkflow`: update `owner`'s workflow of the same (normalised) name, else create one."""
    _, spec = definition_validate(source)
    existing = Workflow.objects.filter(owner=owner, name_key=workflow_name_key(workflow_name_clean(spec.name)))
    return workflow_save(source=source, owner=owner, workflow=existing.first())


@transaction.atomic
def workflow_delete(*, workflow: Workflow) -> None:
    """Delete the workflow with its versions and finished runs; WorkflowBusy while runs are queued or running.

    The runs app refuses through `workflow_deleting`; the triggers app removes the schedules on `pre_delete`.
    """
    workflow = Workflow.objects.select_for_update().get(id=workflow.id)
    workflow_deleting.send(sender=Workflow, workflow=workflow)
    try:
        with transaction.atomic():
            workflow.runs.all().delete()
            workflow.delete()
    except ProtectedError:
        # A run was created between the check and the delete (a webhook does not lock the workflow row).
        raise WorkflowBusy(list(workflow.runs.order_by("id").values_list("id", flat=True))) from None


@lru_cache(maxsize=512)
def spec_for_version(version_id: int) -> WorkflowSpec:
    """The compiled definition of a stored version; versions never change, so this caches per process."""
    definition = WorkflowVersion.objects.values_list("definition", flat=True).get(id=version_id)
    return compile_definition(definition, default_registry())

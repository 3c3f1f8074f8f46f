"""The one registry of trigger types: built-ins listed here, third-party ones from the `flowforge.triggers` entry point.

A trigger type is a spec class (Django-free, `workflows.trigger_specs.TriggerSpec`: its keys, defaults and
path-named problems) and a handler here in the triggers app (what to schedule when a workflow is saved, how to
fire). A new type is one module holding both plus one line below (or, from a package, one entry point):

    [project.entry-points."flowforge.triggers"]
    "acme_tick" = "acme_triggers:TickHandler"

Handlers are imported lazily, on first use. `TriggersConfig.ready()` installs the registry as the parser's
trigger catalog, so `triggers: [{type: acme_tick}]` validates like a built-in.
"""
from __future__ import annotations

import importlib
from datetime import datetime
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

from workflows.trigger_specs import BUILTIN_TRIGGER_SPECS, ManualTrigger, TriggerSpec, WebhookTrigger

ENTRY_POINT_GROUP = "flowforge.triggers"
# Celery task beat sends for a scheduled trigger without a task of its own (kwargs: workflow_id, trigger_index).
FIRE_TASK = "triggers.fire"

BUILTIN_TRIGGERS: dict[str, str] = {
    "webhook": "triggers.registry:WebhookHandler",
    "cron": "triggers.schedules:CronHandler",
    "poll": "triggers.polling:PollHandler",
    "manual": "triggers.registry:ManualHandler",
}


class UnknownTrigger(LookupError):
    pass


class TriggerHandler:
    """What the triggers app does for one trigger type. A type that needs no schedule keeps the defaults."""

    spec: ClassVar[type[TriggerSpec]]
    scheduled: ClassVar[bool] = False  # whether beat fires it (then `schedule` says when)
    task_name: ClassVar[str] = FIRE_TASK

    def schedule(self, trigger: Any, *, state: Any) -> dict | None:
        """The beat schedule (`interval`, `crontab`, `start_time` of a PeriodicTask) to keep while the workflow
        exists, or None for a type nothing schedules. `state`: the trigger's `TriggerState` (armed_at...)."""
        return None

    def state_identity(self, trigger: Any) -> dict:
        """What the trigger watches: editing it starts a fresh `TriggerState`."""
        return {name: getattr(trigger, name) for name in trigger.__dataclass_fields__}

    def fire(self, *, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
        """Start the runs due now for the workflow's trigger at `trigger_index`; returns their ids."""
        return []


class WebhookHandler(TriggerHandler):
    """Fired by requests to /hooks/<token> (triggers.hooks); nothing to schedule."""

    spec = WebhookTrigger


class ManualHandler(TriggerHandler):
    """Runs start through the API, the admin or the CLI; nothing to schedule."""

    spec = ManualTrigger


def _import(dotted: str) -> type[TriggerHandler]:
    module_name, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class TriggerRegistry:
    """kind → handler; also the parser's `TriggerCatalog` (kind → spec class)."""

    def __init__(self, paths: dict[str, str] | None = None, *, use_entry_points: bool = True):
        self._paths = dict(BUILTIN_TRIGGERS if paths is None else paths)
        if use_entry_points:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._paths.setdefault(ep.name, ep.value)
        self._handlers: dict[str, TriggerHandler] = {}

    def kinds(self) -> list[str]:
        return list(self._paths)

    def __contains__(self, kind: object) -> bool:
        return kind in self._paths

    def register(self, kind: str, dotted: str) -> None:
        self._paths[kind] = dotted
        self._handlers.pop(kind, None)

    def unregister(self, kind: str) -> None:
        self._paths.pop(kind, None)
        self._handlers.pop(kind, None)

    def handler(self, kind: str) -> TriggerHandler:
        if kind not in self._paths:
            raise UnknownTrigger(kind)
        if kind not in self._handlers:
            self._handlers[kind] = _import(self._paths[kind])()
        return self._handlers[kind]

    def spec_class(self, kind: str) -> type[TriggerSpec] | None:
        if kind not in self._paths:
            return None
        builtin = BUILTIN_TRIGGER_SPECS.get(kind)
        # A built-in kind's spec is known without importing its handler (and the models that come with it).
        return builtin if builtin is not None and self._paths[kind] == BUILTIN_TRIGGERS.get(kind) \
            else self.handler(kind).spec


@lru_cache(maxsize=1)
def default_registry() -> TriggerRegistry:
    return TriggerRegistry()

"""A test-only trigger type, `tick`: one module (spec + handler) and one registry line, as a plug-in would add.

`every` seconds beat sends `triggers.fire`; each fire starts one run with `trigger.body.label`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from runs.services import run_create
from triggers.registry import TriggerHandler
from triggers.schedules import interval_every, trigger_at
from workflows.models import Workflow
from workflows.trigger_specs import SpecChecker, TriggerSpec


@dataclass(frozen=True)
class TickTrigger(TriggerSpec):
    type: ClassVar[str] = "tick"
    keys: ClassVar[frozenset[str]] = frozenset({"type", "every", "label"})

    every: float = 60
    label: str = "tick"

    @classmethod
    def parse(cls, raw: Mapping[str, Any], path: str, check: SpecChecker) -> TickTrigger:
        label = raw.get("label", cls.label)
        if not isinstance(label, str):
            check.add(f"{path}.label", f"must be a string, got {label!r}")
            label = cls.label
        return cls(every=check.number(raw, "every", path, cls.every, minimum=1), label=label)


class TickHandler(TriggerHandler):
    spec = TickTrigger
    scheduled = True

    def schedule(self, trigger: TickTrigger, *, state) -> dict:
        return {"interval": interval_every(trigger.every), "crontab": None, "start_time": None}

    def fire(self, *, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
        workflow = Workflow.objects.get(id=workflow_id)
        trigger = trigger_at(workflow, trigger_index, TickTrigger)
        run = run_create(workflow=workflow, trigger_kind="tick", trigger={"kind": "tick", "body": {"label": trigger.label}})
        return [run.id]

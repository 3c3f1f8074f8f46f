"""Poll triggers: run the poll action, split `items`, start one run per item whose `key` was never seen.

Keys live in `PollSeenKey` (unique per workflow, trigger and key), so a restart of any process never replays
old items, and two polls racing for one item start one run: the key INSERT and the run INSERT share a
transaction, and only the poll whose INSERT created the key starts the run.

First poll of a trigger (Zapier's behaviour, deliberately not n8n's): it only records the keys of the items
present and starts no run. Pointing a trigger at a feed means "tell me about new items", not "re-run the
backlog". `trigger_key` includes the action, inputs, items and key templates, so pointing the trigger at a
different source primes it again.

Bounded memory: per trigger the 10,000 most recently *seen* keys are kept. Keys still present in the feed are
refreshed on every poll, so pruning only forgets items the source itself has dropped; an item that vanishes
and comes back after 10,000 newer ones would run again.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DataError, transaction
from django.utils import timezone

from connectors.platform import action_config
from connectors.registry import default_registry
from connectors.secrets import secret_value
from runs.executor import RecordingSecrets, execute_attempt, template_context
from runs.models import TriggerKind
from runs.services import run_create
from runs.states import TaskStatus
from workflows.definition import TaskSpec
from workflows.models import Workflow
from workflows.templating import TemplateRenderError, render_value
from workflows.trigger_specs import PollTrigger

from .models import PollSeenKey, TriggerState
from .registry import TriggerHandler
from .schedules import TASK_NAMES, interval_every, trigger_at, trigger_key

log = logging.getLogger(__name__)

KEEP_KEYS = 10_000
MAX_ITEMS_PER_POLL = KEEP_KEYS  # a larger feed is cut, so what one poll sees is never pruned by it
MAX_KEY_LENGTH = 255


@dataclass
class PollOutcome:
    run_ids: list[int] = field(default_factory=list)
    items: int = 0
    primed: bool = False  # the first poll: keys recorded, no run started
    error: str = ""


def poll_fire(*, workflow_id: int, trigger_index: int, now: datetime | None = None) -> PollOutcome:
    """Poll once for the workflow's poll trigger at `trigger_index`; never raises for a failing source."""
    now = now or timezone.now()
    workflow = Workflow.objects.filter(id=workflow_id).only("id", "enabled", "current_version_id", "name",
                                                            "owner_id", "updated_at").first()
    if workflow is None or not workflow.enabled:
        return PollOutcome(error="workflow missing or disabled")
    trigger = trigger_at(workflow, trigger_index, PollTrigger)
    if trigger is None:
        log.warning("workflow %s has no poll trigger at index %s; stale periodic task?", workflow_id, trigger_index)
        return PollOutcome(error=f"no poll trigger at index {trigger_index}")
    try:
        items = _fetch_items(workflow, trigger, trigger_index)
        keyed = _keyed(items, trigger)
    except PollError as exc:
        log.warning("poll trigger %s of workflow %s failed: %s", trigger_index, workflow_id, exc)
        return PollOutcome(error=str(exc))
    return _record(workflow, trigger_key(trigger), keyed, now)


class PollError(Exception):
    pass


def _fetch_items(workflow: Workflow, trigger: PollTrigger, index: int) -> list:
    task = TaskSpec(id=f"poll_{index}", action=trigger.action, inputs=dict(trigger.inputs), timeout=trigger.timeout)
    secrets = RecordingSecrets(lambda name: secret_value(name, owner_id=workflow.owner_id))
    context = template_context(trigger={"kind": TriggerKind.POLL.value}, task_results={}, secrets=secrets,
                               run={"id": None, "workflow": workflow.name, "started_at": None})
    result = execute_attempt(task, template_context=context, registry=default_registry(),
                             config=action_config(), run_id=f"poll:{workflow.id}:{index}",
                             workflow=workflow.name, owner_id=workflow.owner_id)
    if result.status != TaskStatus.SUCCEEDED:
        raise PollError(f"{trigger.action} failed: {result.error}")
    try:
        items = render_value(trigger.items_template, {"output": result.output}, "items")
    except TemplateRenderError as exc:
        raise PollError(f"items: {exc}") from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise PollError(f"items must render to a list, got {type(items).__name__}")
    if len(items) > MAX_ITEMS_PER_POLL:
        log.warning("poll trigger %s of workflow %s returned %d items; keeping the first %d",
                    index, workflow.id, len(items), MAX_ITEMS_PER_POLL)
        items = items[:MAX_ITEMS_PER_POLL]
    return items


def _keyed(items: list, trigger: PollTrigger) -> dict[str, Any]:
    """{key: item} in feed order; the first item wins a duplicated key."""
    template = trigger.key
    keyed: dict[str, Any] = {}
    for position, item in enumerate(items):
        if template is None:
            key = "sha256:" + hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()
        else:
            try:
                value = render_value(template, {"item": item}, "key")
            except TemplateRenderError as exc:
                raise PollError(f"key of item {position}: {exc}") from None
            if value is None or value == "":
                raise PollError(f"key of item {position} rendered empty")
            key = str(value)
            if len(key) > MAX_KEY_LENGTH or "\x00" in key:
                key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        keyed.setdefault(key, item)
    return keyed


def _record(workflow: Workflow, key: str, keyed: dict[str, Any], now: datetime) -> PollOutcome:
    outcome = PollOutcome(items=len(keyed))
    state, _ = TriggerState.objects.get_or_create(workflow=workflow, trigger_key=key, defaults={"armed_at": now})
    seen = PollSeenKey.objects.filter(workflow=workflow, trigger_key=key)
    with transaction.atomic():
        # Only the poll that flips "never polled" primes; a racing first poll then finds the keys recorded.
        if TriggerState.objects.filter(id=state.id, last_fired_at__isnull=True).update(last_fired_at=now):
            PollSeenKey.objects.bulk_create(
                [PollSeenKey(workflow=workflow, trigger_key=key, key=k, first_seen_at=now, last_seen_at=now)
                 for k in keyed], ignore_conflicts=True, batch_size=1000)
            outcome.primed = True
    if not outcome.primed:
        keys = list(keyed)
        known: set[str] = set()
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            known.update(seen.filter(key__in=chunk).values_list("key", flat=True))
            seen.filter(key__in=chunk).update(last_seen_at=now)
        for item_key in keys:
            if item_key in known:
                continue
            try:
                with transaction.atomic():
                    _, created = PollSeenKey.objects.get_or_create(
                        workflow=workflow, trigger_key=key, key=item_key,
                        defaults={"first_seen_at": now, "last_seen_at": now})
                    if created:
                        run = run_create(workflow=workflow, trigger_kind=TriggerKind.POLL,
                                         trigger={"item": keyed[item_key], "key": item_key, "kind": TriggerKind.POLL.value})
                        outcome.run_ids.append(run.id)
            except DataError:  # an item PostgreSQL cannot store (NUL characters...): skip it, keep polling
                log.warning("poll item %r of workflow %s cannot be stored; skipped", item_key, workflow.id)
        TriggerState.objects.filter(id=state.id).update(last_fired_at=now)
    _prune(seen)
    return outcome


def _prune(seen) -> None:
    cutoff = seen.order_by("-last_seen_at", "-id").values_list("last_seen_at", "id")[KEEP_KEYS:KEEP_KEYS + 1]
    for last_seen_at, key_id in cutoff:
        (seen.filter(last_seen_at__lt=last_seen_at) | seen.filter(last_seen_at=last_seen_at, id__lte=key_id)).delete()


class PollHandler(TriggerHandler):
    spec = PollTrigger
    scheduled = True
    task_name = TASK_NAMES[TriggerKind.POLL.value]

    def schedule(self, trigger: PollTrigger, *, state: TriggerState) -> dict:
        return {"interval": interval_every(trigger.every), "crontab": None, "start_time": None}

    def state_identity(self, trigger: PollTrigger) -> dict:
        # `inputs`, `items` and `key` as written (None when absent): keys stored before typed specs still match.
        return {"action": trigger.action, "inputs": trigger.inputs or None, "items": trigger.items, "key": trigger.key}

    def fire(self, *, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
        return poll_fire(workflow_id=workflow_id, trigger_index=trigger_index, now=now).run_ids

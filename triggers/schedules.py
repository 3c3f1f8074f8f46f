"""Keep a workflow's cron and poll triggers in step with its definition, and fire cron triggers.

Every trigger whose handler is `scheduled` (`triggers.registry`: cron, poll, and any registered type) becomes a
django-celery-beat periodic task named `flowforge:<workflow id>:<type>:<index>` (task `workflows.fire_cron` /
`workflows.fire_poll`, names kept from before this app, see `triggers.tasks`, else `triggers.fire`; kwargs
`{"workflow_id", "trigger_index"}`) with the schedule the handler asks for; webhooks need no state beyond the
workflow's token. `sync_triggers`
runs inside `workflow_save`'s transaction (on its `workflow_saved` signal) and `remove_triggers` on the
workflow's `pre_delete`, so the service's delete, the admin's and cascades leave no schedule behind (wired in
`triggers.signals`).

One cron engine (`workflows.cron`): beat never interprets a cron expression. A cron trigger's periodic task has
`start_time` = its next fire instant, computed by `workflows.cron`, so beat wakes at exactly that instant
(also the second 01:30 of a fall-back night and the end of a spring-forward gap, which celery's crontab
misses or runs late); its interval (`RETRY_SECONDS`) only matters if a fire message is lost. `cron_fire` runs
the instants due at `now`, records the last in `TriggerState` with a compare-and-swap (a duplicate or stale
beat message creates no second run), and moves `start_time` to the next instant. A clocked one-off task was
the other candidate: beat disables a one-off after its run and its own bookkeeping write races the
worker's rescheduling, so a trigger could go silent.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from runs.models import TriggerKind
from runs.services import run_create
from workflows import cron as cron_maths
from workflows.definition import WorkflowSpec
from workflows.trigger_specs import CronTrigger, TriggerSpec
from workflows.models import Workflow
from workflows.services import spec_for_version

from .models import PollSeenKey, TriggerState
from .registry import TriggerHandler, default_registry

log = logging.getLogger(__name__)

TASK_NAMES = {TriggerKind.CRON.value: "workflows.fire_cron", TriggerKind.POLL.value: "workflows.fire_poll"}
# A worker whose clock runs slightly behind beat's must still see the instant beat woke up for.
CLOCK_SKEW = timedelta(seconds=5)
# A cron task whose start_time has passed is re-sent this often until a fire moves start_time on; fires are at
# least a minute apart, so this never delays a fire, it only retries a lost message.
RETRY_SECONDS = 30


def task_prefix(workflow_id: int) -> str:
    return f"flowforge:{workflow_id}:"


def trigger_key(trigger: TriggerSpec) -> str:
    """Identity of a trigger's state: what it watches, not where it sits in the list.

    Editing a cron expression or zone, or a poll's action/inputs/items/key, starts a fresh state (a new cron
    trigger is armed from the edit; a new poll source is primed again); changing `every`, `catchup` or the
    order of the triggers keeps it.
    """
    identity = default_registry().handler(trigger.type).state_identity(trigger)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f"{trigger.type}:{digest}"


# --- sync ------------------------------------------------------------------------------------------------------


def sync_triggers(workflow: Workflow, spec: WorkflowSpec) -> None:
    """Create, update or remove the periodic tasks of `workflow` so they match `spec.triggers`."""
    now = timezone.now()
    prefix = task_prefix(workflow.id)
    existing = {task.name: task for task in PeriodicTask.objects.filter(name__startswith=prefix)}
    schedules_before = _schedule_ids(existing.values())
    wanted: set[str] = set()
    keys: set[str] = set()
    registry = default_registry()
    for index, trigger in enumerate(spec.triggers):
        handler = registry.handler(trigger.type)
        if not handler.scheduled:
            continue
        name = f"{prefix}{trigger.type}:{index}"
        key = trigger_key(trigger)
        wanted.add(name)
        keys.add(key)
        previous = existing.get(name)
        state, created = TriggerState.objects.get_or_create(workflow=workflow, trigger_key=key,
                                                            defaults={"armed_at": now})
        reenabled = previous is not None and not previous.enabled and workflow.enabled
        if reenabled and not created:
            # Fires missed while the workflow was disabled are not caught up: it was off on purpose.
            TriggerState.objects.filter(id=state.id).update(armed_at=now)
            state.armed_at = now
        _save_periodic_task(previous, name=name, task=handler.task_name, enabled=workflow.enabled,
                            kwargs={"workflow_id": workflow.id, "trigger_index": index},
                            **handler.schedule(trigger, state=state))
    for name, task in existing.items():
        if name not in wanted:
            task.delete()  # one by one, so django-celery-beat's signal tells beat to reload
    TriggerState.objects.filter(workflow=workflow).exclude(trigger_key__in=keys).delete()
    PollSeenKey.objects.filter(workflow=workflow).exclude(trigger_key__in=keys).delete()
    _delete_unused_schedules(*schedules_before)


def remove_triggers(workflow: Workflow) -> None:
    """Delete every periodic task of `workflow` (its trigger state goes with the workflow's rows)."""
    tasks = list(PeriodicTask.objects.filter(name__startswith=task_prefix(workflow.id)))
    schedules_before = _schedule_ids(tasks)
    for task in tasks:
        task.delete()
    _delete_unused_schedules(*schedules_before)


def _save_periodic_task(existing: PeriodicTask | None, *, name: str, kwargs: dict, **fields) -> None:
    kwargs_json = json.dumps(kwargs, sort_keys=True)
    if existing is None:
        PeriodicTask.objects.create(name=name, kwargs=kwargs_json, **fields)
        return
    changed = existing.kwargs != kwargs_json or any(getattr(existing, f) != v for f, v in fields.items())
    if not changed:
        return  # saving would make beat re-read every schedule for nothing
    existing.kwargs = kwargs_json
    for field, value in fields.items():
        setattr(existing, field, value)
    existing.solar = existing.clocked = None
    existing.save()


def interval_every(seconds: float) -> IntervalSchedule:
    """The shared IntervalSchedule of `seconds` (rounded up to whole seconds, at least 1)."""
    return _interval(max(1, math.ceil(seconds)))


def _interval(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    return schedule


def _schedule_ids(tasks) -> tuple[set[int], set[int]]:
    tasks = list(tasks)
    return ({t.crontab_id for t in tasks if t.crontab_id}, {t.interval_id for t in tasks if t.interval_id})


def _delete_unused_schedules(crontab_ids: set[int], interval_ids: set[int]) -> None:
    """Delete the schedules our tasks used before this change that no periodic task uses any more."""
    if crontab_ids:
        CrontabSchedule.objects.filter(id__in=crontab_ids, periodictask__isnull=True).delete()
    if interval_ids:
        IntervalSchedule.objects.filter(id__in=interval_ids, periodictask__isnull=True).delete()


def _cron_floor(state: TriggerState) -> datetime:
    """Instants at or before this have run (or predate the trigger) and never run again."""
    return max(state.last_fired_at or state.armed_at, state.armed_at)


def _next_cron_fire(trigger: CronTrigger, *, after: datetime) -> datetime | None:
    fire = cron_maths.next_fire_time(trigger.cron, trigger.timezone, after=after)
    return None if fire is None else fire.astimezone(dt_timezone.utc)


# --- cron ------------------------------------------------------------------------------------------------------


def trigger_at(workflow: Workflow, index: int, spec_class: type[TriggerSpec]) -> TriggerSpec | None:
    """The current definition's trigger at `index` when it is a `spec_class`, else None (a stale schedule)."""
    if workflow.current_version_id is None:
        return None
    triggers = spec_for_version(workflow.current_version_id).triggers
    if not 0 <= index < len(triggers) or not isinstance(triggers[index], spec_class):
        return None
    return triggers[index]


def cron_fire(*, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
    """Start the run(s) due for a cron trigger at `now`; returns the new run ids (none when already fired).

    The run's `trigger.scheduled_at` is the most recent fire time <= now in the trigger's zone (DST policy of
    `workflows.cron`). With `catchup: true` it is every fire time missed since the last one, at most
    `max_catchup` (default 1), oldest first. Fire times before the trigger was armed (created, edited or
    re-enabled) never run. Either way the periodic task's `start_time` moves to the next fire time.
    """
    now = now or timezone.now()
    workflow = Workflow.objects.filter(id=workflow_id).only("id", "enabled", "current_version_id", "name",
                                                            "updated_at").first()
    if workflow is None or not workflow.enabled:
        return []
    trigger = trigger_at(workflow, trigger_index, CronTrigger)
    if trigger is None:
        log.warning("workflow %s has no cron trigger at index %s; stale periodic task?", workflow_id, trigger_index)
        return []
    zone = trigger.timezone
    state, _ = TriggerState.objects.get_or_create(workflow=workflow, trigger_key=trigger_key(trigger),
                                                  defaults={"armed_at": workflow.updated_at})
    floor = _cron_floor(state)
    due = cron_maths.missed_fire_times(trigger.cron, zone, last_run=floor, now=now + CLOCK_SKEW,
                                       limit=trigger.catchup_limit)
    runs = []
    if due:
        with transaction.atomic():
            # Compare-and-swap on the value read above: of two fires racing for these instants, one wins.
            guard = ({"last_fired_at__isnull": True} if state.last_fired_at is None
                     else {"last_fired_at": state.last_fired_at})
            if TriggerState.objects.filter(id=state.id, **guard).update(last_fired_at=due[-1]):
                runs = [
                    run_create(workflow=workflow, trigger_kind=TriggerKind.CRON,
                               trigger={"scheduled_at": instant.isoformat(), "timezone": zone, "kind": TriggerKind.CRON.value})
                    for instant in due
                ]
        floor = max(floor, due[-1].astimezone(dt_timezone.utc))
    _advance_start_time(workflow_id, trigger_index, _next_cron_fire(trigger, after=floor))
    return [run.id for run in runs]


def _advance_start_time(workflow_id: int, trigger_index: int, start_time: datetime | None) -> None:
    """Point beat at the next fire instant; a queryset update leaves beat's own bookkeeping fields alone."""
    name = f"{task_prefix(workflow_id)}cron:{trigger_index}"
    updated = (PeriodicTask.objects.filter(name=name, task=TASK_NAMES[TriggerKind.CRON.value]).exclude(start_time=start_time)
               .update(start_time=start_time))
    if updated:
        PeriodicTasks.update_changed()  # beat re-reads its schedule on its next tick


def cron_preview(workflow: Workflow, trigger_index: int, count: int = 10, *,
                 after: datetime | None = None) -> list[datetime]:
    """The next `count` fire times of a cron trigger, as aware datetimes in the trigger's zone.

    Raises LookupError when the workflow's current definition has no cron trigger at `trigger_index`.
    """
    trigger = trigger_at(workflow, trigger_index, CronTrigger)
    if trigger is None:
        raise LookupError(f"triggers[{trigger_index}] is not a cron trigger")
    return cron_maths.next_fire_times(trigger.cron, trigger.timezone,
                                      after=after or timezone.now(), count=count)


class CronHandler(TriggerHandler):
    spec = CronTrigger
    scheduled = True
    task_name = TASK_NAMES[TriggerKind.CRON.value]

    def schedule(self, trigger: CronTrigger, *, state: TriggerState) -> dict:
        return {"interval": _interval(RETRY_SECONDS), "crontab": None,
                "start_time": _next_cron_fire(trigger, after=_cron_floor(state))}

    def state_identity(self, trigger: CronTrigger) -> dict:
        return {"cron": " ".join(trigger.cron.split()), "timezone": trigger.timezone}

    def fire(self, *, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
        return cron_fire(workflow_id=workflow_id, trigger_index=trigger_index, now=now)


# --- any registered type -----------------------------------------------------------------------------------------


def trigger_fire(*, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
    """Fire the workflow's trigger at `trigger_index` through its type's handler (the generic beat task)."""
    workflow = Workflow.objects.filter(id=workflow_id).only("id", "enabled", "current_version_id").first()
    if workflow is None or not workflow.enabled or workflow.current_version_id is None:
        return []
    triggers = spec_for_version(workflow.current_version_id).triggers
    if not 0 <= trigger_index < len(triggers):
        log.warning("workflow %s has no trigger at index %s; stale periodic task?", workflow_id, trigger_index)
        return []
    handler = default_registry().handler(triggers[trigger_index].type)
    return handler.fire(workflow_id=workflow_id, trigger_index=trigger_index, now=now)

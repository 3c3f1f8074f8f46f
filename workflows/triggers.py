"""Keep a workflow's cron and poll triggers in step with its definition, and fire cron triggers.

Cron and poll triggers become django-celery-beat periodic tasks named `flowforge:<workflow id>:<type>:<index>`
(task `workflows.fire_cron` / `workflows.fire_poll`, kwargs `{"workflow_id", "trigger_index"}`); webhooks need
no state beyond the workflow's token. `sync_triggers` runs inside `workflow_save`'s transaction and
`remove_triggers` inside `workflow_delete`'s (and from a `pre_delete` signal, so the admin's delete and
cascades leave no schedule behind).

Who decides what (cron): beat's crontab only decides *when to wake up*; `cron_fire` decides *which scheduled
instant that is*, with `workflows.cron` and its DST policy, and records it in `TriggerState` with a
compare-and-swap, so a duplicate beat message, a beat restarted mid-minute or a crontab that wakes more often
than the expression (see `_beat_fields`) never creates a second run for one instant.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from runs.models import TriggerKind
from workflows import cron as cron_maths
from workflows.definition import WorkflowSpec

from .models import PollSeenKey, TriggerState, Workflow

log = logging.getLogger(__name__)

TASK_NAMES = {"cron": "workflows.fire_cron", "poll": "workflows.fire_poll"}
# A worker whose clock runs slightly behind beat's must still see the instant beat woke up for.
CLOCK_SKEW = timedelta(seconds=5)


def task_prefix(workflow_id: int) -> str:
    return f"flowforge:{workflow_id}:"


def trigger_key(trigger: dict) -> str:
    """Identity of a trigger's state: what it watches, not where it sits in the list.

    Editing a cron expression or zone, or a poll's action/inputs/items/key, starts a fresh state (a new cron
    trigger is armed from the edit; a new poll source is primed again); changing `every`, `catchup` or the
    order of the triggers keeps it.
    """
    kind = trigger["type"]
    if kind == "cron":
        identity = {"cron": " ".join(str(trigger.get("cron", "")).split()), "timezone": trigger.get("timezone", "UTC")}
    else:
        identity = {name: trigger.get(name) for name in ("action", "inputs", "items", "key")}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f"{kind}:{digest}"


# --- sync ------------------------------------------------------------------------------------------------------


def sync_triggers(workflow: Workflow, spec: WorkflowSpec) -> None:
    """Create, update or remove the periodic tasks of `workflow` so they match `spec.triggers`."""
    now = timezone.now()
    prefix = task_prefix(workflow.id)
    existing = {task.name: task for task in PeriodicTask.objects.filter(name__startswith=prefix)}
    wanted: set[str] = set()
    keys: set[str] = set()
    for index, trigger in enumerate(spec.triggers):
        kind = trigger.get("type")
        if kind not in TASK_NAMES:
            continue
        name = f"{prefix}{kind}:{index}"
        key = trigger_key(trigger)
        wanted.add(name)
        keys.add(key)
        schedule = {"crontab": _crontab_for(trigger), "interval": None} if kind == "cron" else {
            "crontab": None, "interval": _interval_for(trigger)}
        previous = existing.get(name)
        state, created = TriggerState.objects.get_or_create(workflow=workflow, trigger_key=key,
                                                            defaults={"armed_at": now})
        reenabled = previous is not None and not previous.enabled and workflow.enabled
        if reenabled and not created:
            # Fires missed while the workflow was disabled are not caught up: it was off on purpose.
            TriggerState.objects.filter(id=state.id).update(armed_at=now)
        _save_periodic_task(previous, name=name, task=TASK_NAMES[kind], enabled=workflow.enabled,
                            kwargs={"workflow_id": workflow.id, "trigger_index": index}, **schedule)
    for name, task in existing.items():
        if name not in wanted:
            task.delete()  # one by one, so django-celery-beat's signal tells beat to reload
    TriggerState.objects.filter(workflow=workflow).exclude(trigger_key__in=keys).delete()
    PollSeenKey.objects.filter(workflow=workflow).exclude(trigger_key__in=keys).delete()


def remove_triggers(workflow: Workflow) -> None:
    """Delete every periodic task of `workflow` (its trigger state goes with the workflow's rows)."""
    for task in PeriodicTask.objects.filter(name__startswith=task_prefix(workflow.id)):
        task.delete()


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


def _interval_for(trigger: dict) -> IntervalSchedule:
    every = max(1, math.ceil(trigger.get("every", 300)))
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    return schedule


def _crontab_for(trigger: dict) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = _beat_fields(trigger["cron"])
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone=trigger.get("timezone", "UTC"),
    )
    return schedule


def _beat_fields(expression: str) -> list[str]:
    """The five fields as celery's crontab can take them: the same, or a superset that wakes more often.

    Celery's crontab lacks croniter's extensions (`L`, `#`, day-of-week 7) and ANDs day-of-month with
    day-of-week where cron ORs them; such fields widen to `*`. The extra wake-ups are harmless: `cron_fire`
    only ever runs instants the expression really has.
    """
    from celery.schedules import crontab

    fields = cron_maths._normalise(expression)  # validated split, @aliases expanded
    names = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    if fields[2] != "*" and fields[4] != "*":
        fields[2] = fields[4] = "*"
    for index, name in enumerate(names):
        try:
            crontab(**{name: fields[index]})
        except (ValueError, TypeError):
            fields[index] = "*"
    return fields


# --- cron ------------------------------------------------------------------------------------------------------


def trigger_at(workflow: Workflow, index: int, kind: str) -> dict | None:
    from workflows.services import spec_for_version

    if workflow.current_version_id is None:
        return None
    triggers = spec_for_version(workflow.current_version_id).triggers
    if not 0 <= index < len(triggers) or triggers[index].get("type") != kind:
        return None
    return triggers[index]


def cron_fire(*, workflow_id: int, trigger_index: int, now: datetime | None = None) -> list[int]:
    """Start the run(s) due for a cron trigger at `now`; returns the new run ids (none when already fired).

    The run's `trigger.scheduled_at` is the most recent fire time <= now in the trigger's zone (DST policy of
    `workflows.cron`). With `catchup: true` it is every fire time missed since the last one, at most
    `max_catchup` (default 1), oldest first. Fire times before the trigger was armed (created, edited or
    re-enabled) never run.
    """
    from runs.services import run_create

    now = now or timezone.now()
    workflow = Workflow.objects.filter(id=workflow_id).only("id", "enabled", "current_version_id", "name",
                                                            "updated_at").first()
    if workflow is None or not workflow.enabled:
        return []
    trigger = trigger_at(workflow, trigger_index, "cron")
    if trigger is None:
        log.warning("workflow %s has no cron trigger at index %s; stale periodic task?", workflow_id, trigger_index)
        return []
    zone = trigger.get("timezone", "UTC")
    state, _ = TriggerState.objects.get_or_create(workflow=workflow, trigger_key=trigger_key(trigger),
                                                  defaults={"armed_at": workflow.updated_at})
    floor = max(state.last_fired_at or state.armed_at, state.armed_at)
    limit = trigger.get("max_catchup", 1) if trigger.get("catchup") else 1
    due = cron_maths.missed_fire_times(trigger["cron"], zone, last_run=floor, now=now + CLOCK_SKEW, limit=limit)
    if not due:
        return []
    with transaction.atomic():
        # Compare-and-swap on the value read above: of two fires racing for these instants, one wins.
        guard = ({"last_fired_at__isnull": True} if state.last_fired_at is None
                 else {"last_fired_at": state.last_fired_at})
        if not TriggerState.objects.filter(id=state.id, **guard).update(last_fired_at=due[-1]):
            return []
        runs = [
            run_create(workflow=workflow, trigger_kind=TriggerKind.CRON,
                       trigger={"scheduled_at": instant.isoformat(), "timezone": zone, "kind": "cron"})
            for instant in due
        ]
    return [run.id for run in runs]


def cron_preview(workflow: Workflow, trigger_index: int, count: int = 10, *,
                 after: datetime | None = None) -> list[datetime]:
    """The next `count` fire times of a cron trigger, as aware datetimes in the trigger's zone.

    Raises LookupError when the workflow's current definition has no cron trigger at `trigger_index`.
    """
    trigger = trigger_at(workflow, trigger_index, "cron")
    if trigger is None:
        raise LookupError(f"triggers[{trigger_index}] is not a cron trigger")
    return cron_maths.next_fire_times(trigger["cron"], trigger.get("timezone", "UTC"),
                                      after=after or timezone.now(), count=count)

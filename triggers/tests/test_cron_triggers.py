"""Cron triggers on django-celery-beat: schedules follow the definition; a fire runs each instant once."""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from runs.models import WorkflowRun
from triggers.models import TriggerState
from triggers.schedules import RETRY_SECONDS, cron_fire, cron_preview, trigger_key
from workflows.models import Workflow
from workflows.services import workflow_delete, workflow_save
from workflows.trigger_specs import CronTrigger, PollTrigger

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def definition(*triggers, name="scheduled", **extra) -> dict:
    return {"name": name, "triggers": list(triggers),
            "tasks": {"a": {"action": "transform.jinja", "inputs": {"value": 1}}}, **extra}


def cron(expression="0 9 * * 1-5", zone="Europe/Berlin", **options) -> dict:
    return {"type": "cron", "cron": expression, "timezone": zone, **options}


def poll(every=60) -> dict:
    return {"type": "poll", "every": every, "action": "http.request", "inputs": {"url": "http://127.0.0.1:9/x"},
            "items": "{{ output.json }}", "key": "{{ item.id }}"}


def tasks_of(workflow) -> dict[str, PeriodicTask]:
    return {t.name: t for t in PeriodicTask.objects.filter(name__startswith=f"flowforge:{workflow.id}:")
            .select_related("crontab", "interval")}


def arm(workflow, at: datetime) -> None:
    """Pretend the triggers were armed at `at`, so fires after it are due."""
    TriggerState.objects.filter(workflow=workflow).update(armed_at=at, last_fired_at=None)


def scheduled(run_ids) -> list[str]:
    runs = WorkflowRun.objects.filter(id__in=run_ids).order_by("id")
    return [run.trigger["scheduled_at"] for run in runs]


# --- sync ------------------------------------------------------------------------------------------------------


def test_saving_a_workflow_creates_one_periodic_task_per_cron_and_poll_trigger():
    workflow = workflow_save(source=definition(cron(), {"type": "webhook"}, poll(every=90)))
    tasks = tasks_of(workflow)
    assert set(tasks) == {f"flowforge:{workflow.id}:cron:0", f"flowforge:{workflow.id}:poll:2"}
    cron_task = tasks[f"flowforge:{workflow.id}:cron:0"]
    assert cron_task.task == "workflows.fire_cron" and cron_task.enabled
    assert json.loads(cron_task.kwargs) == {"workflow_id": workflow.id, "trigger_index": 0}
    assert cron_task.crontab is None and cron_task.interval.every == RETRY_SECONDS
    assert cron_task.start_time == cron_preview(workflow, 0, count=1)[0]  # beat wakes at the preview's instant
    poll_task = tasks[f"flowforge:{workflow.id}:poll:2"]
    assert poll_task.task == "workflows.fire_poll" and poll_task.interval.every == 90
    assert poll_task.interval.period == "seconds" and poll_task.crontab is None


def test_editing_the_triggers_updates_and_removes_exactly_the_right_tasks():
    workflow = workflow_save(source=definition(cron(), cron("*/5 * * * *", "UTC")))
    assert len(tasks_of(workflow)) == 2
    workflow = workflow_save(source=definition(cron("30 6 * * *", "America/New_York")), workflow=workflow)
    tasks = tasks_of(workflow)
    assert list(tasks) == [f"flowforge:{workflow.id}:cron:0"]
    start = tasks[f"flowforge:{workflow.id}:cron:0"].start_time
    assert start.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "06:30"
    assert TriggerState.objects.filter(workflow=workflow).count() == 1
    workflow = workflow_save(source=definition(), workflow=workflow)
    assert tasks_of(workflow) == {}
    assert not TriggerState.objects.filter(workflow=workflow).exists()


def test_saving_an_unchanged_definition_does_not_touch_the_periodic_task():
    workflow = workflow_save(source=definition(cron()))
    before = tasks_of(workflow)[f"flowforge:{workflow.id}:cron:0"].date_changed
    workflow_save(source=definition(cron()), workflow=workflow)
    assert tasks_of(workflow)[f"flowforge:{workflow.id}:cron:0"].date_changed == before


def test_disabling_a_workflow_disables_its_schedules_and_enabling_restores_them():
    workflow = workflow_save(source=definition(cron(), poll()))
    workflow = workflow_save(source=definition(cron(), poll()), workflow=workflow, enabled=False)
    assert [t.enabled for t in tasks_of(workflow).values()] == [False, False]
    workflow = workflow_save(source=definition(cron(), poll()), workflow=workflow, enabled=True)
    assert [t.enabled for t in tasks_of(workflow).values()] == [True, True]


def test_deleting_a_workflow_leaves_no_schedule_behind_whichever_way_it_is_deleted():
    first = workflow_save(source=definition(cron(), name="one"))
    second = workflow_save(source=definition(cron(), poll(), name="two"))
    workflow_delete(workflow=first)
    Workflow.objects.filter(id=second.id).delete()  # as the admin's bulk delete does
    assert not PeriodicTask.objects.filter(name__startswith="flowforge:").exists()


def test_schedules_no_task_uses_any_more_are_deleted_when_triggers_change():
    stale = CrontabSchedule.objects.create(minute="0", hour="9", timezone="Europe/Berlin")
    workflow = workflow_save(source=definition(poll(every=77)))
    PeriodicTask.objects.filter(name=f"flowforge:{workflow.id}:poll:0").update(interval=None, crontab=stale)
    workflow = workflow_save(source=definition(poll(every=78)), workflow=workflow)
    assert not CrontabSchedule.objects.filter(id=stale.id).exists()
    workflow_save(source=definition(cron()), workflow=workflow)
    assert not IntervalSchedule.objects.filter(every=78).exists()
    assert IntervalSchedule.objects.filter(every=RETRY_SECONDS).exists()


# --- firing ----------------------------------------------------------------------------------------------------


def test_a_fire_creates_one_cron_run_for_the_scheduled_instant_and_a_duplicate_fire_creates_none():
    workflow = workflow_save(source=definition(cron("0 9 * * *")))
    arm(workflow, datetime(2026, 6, 1, tzinfo=UTC))
    beat_woke = datetime(2026, 6, 10, 9, 0, 0, 400000, tzinfo=BERLIN)
    run_ids = cron_fire(workflow_id=workflow.id, trigger_index=0, now=beat_woke)
    assert scheduled(run_ids) == ["2026-06-10T09:00:00+02:00"]
    run = WorkflowRun.objects.get(id=run_ids[0])
    assert run.trigger_kind == "cron" and run.status == "running" and run.trigger["kind"] == "cron"
    assert cron_fire(workflow_id=workflow.id, trigger_index=0, now=beat_woke + timedelta(seconds=3)) == []
    assert WorkflowRun.objects.filter(workflow=workflow).count() == 1


def test_without_catchup_a_late_fire_runs_only_the_most_recent_instant():
    workflow = workflow_save(source=definition(cron("0 * * * *", "UTC")))
    arm(workflow, datetime(2026, 6, 10, 0, 30, tzinfo=UTC))
    run_ids = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 6, 10, 5, 10, tzinfo=UTC))
    assert scheduled(run_ids) == ["2026-06-10T05:00:00+00:00"]


def test_catchup_runs_the_missed_instants_bounded_by_max_catchup_oldest_first():
    workflow = workflow_save(source=definition(cron("0 * * * *", "UTC", catchup=True, max_catchup=3)))
    arm(workflow, datetime(2026, 6, 10, 0, 30, tzinfo=UTC))
    run_ids = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 6, 10, 5, 0, 1, tzinfo=UTC))
    assert scheduled(run_ids) == ["2026-06-10T03:00:00+00:00", "2026-06-10T04:00:00+00:00",
                                  "2026-06-10T05:00:00+00:00"]
    later = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 6, 10, 6, 0, 2, tzinfo=UTC))
    assert scheduled(later) == ["2026-06-10T06:00:00+00:00"]


def test_instants_before_the_trigger_was_armed_never_run():
    workflow = workflow_save(source=definition(cron("0 9 * * *", catchup=True, max_catchup=5)))
    arm(workflow, datetime(2026, 6, 10, 9, 30, tzinfo=BERLIN))
    assert cron_fire(workflow_id=workflow.id, trigger_index=0,
                     now=datetime(2026, 6, 10, 10, 0, tzinfo=BERLIN)) == []


def test_a_fire_for_a_disabled_workflow_or_a_stale_index_does_nothing():
    workflow = workflow_save(source=definition(cron("* * * * *")))
    arm(workflow, datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 6, 10, 9, 0, 1, tzinfo=UTC)
    assert cron_fire(workflow_id=workflow.id, trigger_index=5, now=now) == []
    Workflow.objects.filter(id=workflow.id).update(enabled=False)
    assert cron_fire(workflow_id=workflow.id, trigger_index=0, now=now) == []
    assert cron_fire(workflow_id=999999, trigger_index=0, now=now) == []


def test_a_wall_time_in_the_spring_forward_gap_runs_once_at_the_end_of_the_gap():
    workflow = workflow_save(source=definition(cron("30 2 * * *", "Europe/Berlin")))
    arm(workflow, datetime(2026, 3, 28, 12, tzinfo=UTC))
    # Celery's crontab maps the missing 02:30 to 03:30 CEST; whenever beat wakes, the instant is 03:00.
    run_ids = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 3, 29, 1, 30, 1, tzinfo=UTC))
    assert scheduled(run_ids) == ["2026-03-29T03:00:00+02:00"]


def test_a_wall_time_in_the_fall_back_overlap_runs_once_even_if_beat_wakes_twice():
    workflow = workflow_save(source=definition(cron("30 2 * * *", "Europe/Berlin")))
    arm(workflow, datetime(2026, 10, 24, 12, tzinfo=UTC))
    first = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 10, 25, 0, 30, 1, tzinfo=UTC))
    assert scheduled(first) == ["2026-10-25T02:30:00+02:00"]
    second = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 10, 25, 1, 30, 1, tzinfo=UTC))
    assert second == []


def test_new_york_spring_forward_runs_the_missing_hour_once():
    workflow = workflow_save(source=definition(cron("15 2 * * *", "America/New_York")))
    arm(workflow, datetime(2026, 3, 7, tzinfo=UTC))
    run_ids = cron_fire(workflow_id=workflow.id, trigger_index=0, now=datetime(2026, 3, 8, 7, 15, 1, tzinfo=UTC))
    assert scheduled(run_ids) == ["2026-03-08T03:00:00-04:00"]


def test_editing_the_expression_arms_a_fresh_trigger_state():
    workflow = workflow_save(source=definition(cron("0 9 * * *")))
    old_key = trigger_key(CronTrigger(cron="0 9 * * *", timezone="Europe/Berlin"))
    workflow = workflow_save(source=definition(cron("0 10 * * *")), workflow=workflow)
    keys = list(TriggerState.objects.filter(workflow=workflow).values_list("trigger_key", flat=True))
    assert keys == [trigger_key(CronTrigger(cron="0 10 * * *", timezone="Europe/Berlin"))] and old_key not in keys


def test_cron_preview_lists_the_next_fire_times_in_the_trigger_zone():
    workflow = workflow_save(source=definition({"type": "webhook"}, cron("30 2 * * *", "Europe/Berlin")))
    times = cron_preview(workflow, 1, count=3, after=datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert [t.isoformat() for t in times] == ["2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                                              "2026-03-30T02:30:00+02:00"]
    assert len(cron_preview(workflow, 1)) == 10
    with pytest.raises(LookupError):
        cron_preview(workflow, 0)


# --- django-celery-beat's own scheduler --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_database_scheduler_sends_the_fire_task_which_creates_one_run(monkeypatch):
    """Drives django-celery-beat's real DatabaseScheduler.tick(); only the broker hand-off is captured."""
    from django.utils import timezone
    from django_celery_beat.schedulers import DatabaseScheduler

    from automation.celery import app
    from triggers import tasks

    workflow = workflow_save(source=definition(cron("* * * * *", "Europe/Berlin"), name="every-minute"))
    TriggerState.objects.filter(workflow=workflow).update(armed_at=timezone.now() - timedelta(minutes=10))
    PeriodicTask.objects.filter(name=f"flowforge:{workflow.id}:cron:0").update(
        last_run_at=timezone.now() - timedelta(minutes=2), start_time=timezone.now() - timedelta(minutes=1))

    sent: list[dict] = []
    monkeypatch.setattr(tasks.fire_cron, "apply_async",
                        lambda args=None, kwargs=None, **options: sent.append(kwargs))
    scheduler = DatabaseScheduler(app=app)
    try:
        for _ in range(10):
            scheduler.tick()
            if sent:
                break
    finally:
        scheduler.close()
    assert sent == [{"workflow_id": workflow.id, "trigger_index": 0}]

    tasks.fire_cron.run(**sent[0])  # what the worker does with the message
    tasks.fire_cron.run(**sent[0])  # a duplicate delivery of the same message
    runs = list(WorkflowRun.objects.filter(workflow=workflow))
    assert len(runs) == 1 and runs[0].trigger_kind == "cron"
    instant = datetime.fromisoformat(runs[0].trigger["scheduled_at"])
    assert instant.second == 0 and instant.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    assert timezone.now() - timedelta(minutes=1, seconds=5) <= instant <= timezone.now() + timedelta(seconds=5)


# --- eight days of the beat path on a fake clock -----------------------------------------------------------------


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(("expression", "zone", "start"), [
    ("*/15 * * * *", "America/New_York", datetime(2026, 10, 28, tzinfo=UTC)),  # fall-back night 2026-11-01
    ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 24, tzinfo=UTC)),  # spring gap 2026-03-29
    ("0 * * * *", "Australia/Lord_Howe", datetime(2026, 9, 30, tzinfo=UTC)),  # 30-minute gap 2026-10-04
    ("30 * * * *", "Europe/London", datetime(2026, 3, 26, tzinfo=UTC)),
    ("0 9 * * 1-1", "Europe/Berlin", datetime(2026, 11, 3, tzinfo=UTC)),
    ("30-30 1 * * *", "America/New_York", datetime(2026, 10, 28, tzinfo=UTC)),
])
@pytest.mark.django_db(transaction=True)
def test_eight_days_of_beat_create_exactly_the_previews_fires_at_the_previews_instants(
        monkeypatch, expression, zone, start):
    """django-celery-beat's real DatabaseScheduler on a fake clock; the worker is cron_fire at the same clock."""
    from django_celery_beat import models as beat_models, schedulers
    from django_celery_beat.schedulers import DatabaseScheduler

    from automation.celery import app
    from triggers import tasks

    clock = FakeClock(start)
    monkeypatch.setattr(beat_models, "now", clock)
    monkeypatch.setattr(schedulers.ModelEntry, "_default_now", lambda self: clock())
    monkeypatch.setattr(app, "now", clock)
    sent: list[tuple[datetime, dict]] = []
    monkeypatch.setattr(tasks.fire_cron, "apply_async",
                        lambda args=None, kwargs=None, **options: sent.append((clock(), kwargs)))

    workflow = workflow_save(source=definition(cron(expression, zone)))
    TriggerState.objects.filter(workflow=workflow).update(armed_at=start)
    PeriodicTask.objects.filter(name=f"flowforge:{workflow.id}:cron:0").update(
        start_time=cron_preview(workflow, 0, count=1, after=start)[0])
    end = start + timedelta(days=8)
    preview = [t for t in cron_preview(workflow, 0, count=1000, after=start) if t <= end]

    scheduler = DatabaseScheduler(app=app, max_interval=300)
    wakeups, lateness = 0, []
    try:
        while clock.now < end + timedelta(minutes=1):
            delay = scheduler.tick()
            wakeups += 1
            assert wakeups < 20000, (clock.now, delay)
            while sent:
                woke, message = sent.pop(0)
                for run_id in cron_fire(now=woke, **message):  # the worker, at the instant beat sent it
                    scheduled_at = datetime.fromisoformat(WorkflowRun.objects.get(id=run_id).trigger["scheduled_at"])
                    lateness.append((woke - scheduled_at).total_seconds())
            clock.now += timedelta(microseconds=math.ceil(delay * 1e6))  # beat's sleep; never a zero step
    finally:
        scheduler.close()

    runs = WorkflowRun.objects.filter(workflow=workflow).order_by("id")
    created = [t for t in (datetime.fromisoformat(run.trigger["scheduled_at"]) for run in runs) if t <= end]
    assert [t.isoformat() for t in created] == [t.isoformat() for t in preview]
    assert lateness and max(lateness) <= 1.0 and min(lateness) >= 0
    print(f"{expression!r} {zone}: {len(created)} fires, {wakeups} beat ticks, max lateness {max(lateness)} s")


def test_typed_triggers_keep_the_state_keys_of_schedules_saved_before_them():
    # Keys computed by the dict-based code: a changed key would re-arm every cron and re-prime every poll.
    cron_trigger = CronTrigger(cron="0  9 * * 1-5", timezone="Europe/Berlin")
    feed = PollTrigger(action="http.request", inputs={"url": "http://x/feed"}, key="{{ item.id }}")
    bare = PollTrigger(action="transform.jinja")

    assert trigger_key(cron_trigger) == "cron:a7790786c33900b24dc3"
    assert trigger_key(feed) == "poll:f842e3d912642f66f540"
    assert trigger_key(bare) == "poll:ee464dd0096b11bc0de4"

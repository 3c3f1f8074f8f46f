"""Cron triggers on django-celery-beat: schedules follow the definition; a fire runs each instant once."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import PeriodicTask

from runs.models import WorkflowRun
from workflows.models import TriggerState, Workflow
from workflows.services import workflow_delete, workflow_save
from workflows.triggers import _beat_fields, cron_fire, cron_preview, trigger_key

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
    schedule = cron_task.crontab
    assert (schedule.minute, schedule.hour, schedule.day_of_month, schedule.month_of_year, schedule.day_of_week) \
        == ("0", "9", "*", "*", "1-5")
    assert str(schedule.timezone) == "Europe/Berlin"
    poll_task = tasks[f"flowforge:{workflow.id}:poll:2"]
    assert poll_task.task == "workflows.fire_poll" and poll_task.interval.every == 90
    assert poll_task.interval.period == "seconds" and poll_task.crontab is None


def test_editing_the_triggers_updates_and_removes_exactly_the_right_tasks():
    workflow = workflow_save(source=definition(cron(), cron("*/5 * * * *", "UTC")))
    assert len(tasks_of(workflow)) == 2
    workflow = workflow_save(source=definition(cron("30 6 * * *", "America/New_York")), workflow=workflow)
    tasks = tasks_of(workflow)
    assert list(tasks) == [f"flowforge:{workflow.id}:cron:0"]
    schedule = tasks[f"flowforge:{workflow.id}:cron:0"].crontab
    assert (schedule.minute, schedule.hour, str(schedule.timezone)) == ("30", "6", "America/New_York")
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


def test_beat_fields_widen_what_celery_cannot_express():
    assert _beat_fields("0 9 1 * 1") == ["0", "9", "*", "*", "*"]  # cron ORs the two day fields
    assert _beat_fields("0 0 L * *") == ["0", "0", "*", "*", "*"]
    assert _beat_fields("0 9 * * 5-7") == ["0", "9", "*", "*", "*"]
    assert _beat_fields("@hourly") == ["0", "*", "*", "*", "*"]
    assert _beat_fields("*/15 8-18 * jan-mar mon-fri") == ["*/15", "8-18", "*", "jan-mar", "mon-fri"]


# --- firing ----------------------------------------------------------------------------------------------------


def test_a_fire_creates_one_cron_run_for_the_scheduled_instant_and_a_duplicate_fire_creates_none():
    workflow = workflow_save(source=definition(cron("0 9 * * *")))
    arm(workflow, datetime(2026, 6, 1, tzinfo=UTC))
    beat_woke = datetime(2026, 6, 10, 9, 0, 0, 400000, tzinfo=BERLIN)
    run_ids = cron_fire(workflow_id=workflow.id, trigger_index=0, now=beat_woke)
    assert scheduled(run_ids) == ["2026-06-10T09:00:00+02:00"]
    run = WorkflowRun.objects.get(id=run_ids[0])
    assert run.trigger_kind == "cron" and run.status == "queued" and run.trigger["kind"] == "cron"
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
    old_key = trigger_key(cron("0 9 * * *"))
    workflow = workflow_save(source=definition(cron("0 10 * * *")), workflow=workflow)
    keys = list(TriggerState.objects.filter(workflow=workflow).values_list("trigger_key", flat=True))
    assert keys == [trigger_key(cron("0 10 * * *"))] and old_key not in keys


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
    from workflows import tasks

    workflow = workflow_save(source=definition(cron("* * * * *", "Europe/Berlin"), name="every-minute"))
    TriggerState.objects.filter(workflow=workflow).update(armed_at=timezone.now() - timedelta(minutes=10))
    PeriodicTask.objects.filter(name=f"flowforge:{workflow.id}:cron:0").update(
        last_run_at=timezone.now() - timedelta(minutes=2))

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

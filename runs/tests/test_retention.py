"""Run-history retention: by age (failed kept longer), by count, per-workflow overrides, in batches, never
touching unfinished runs."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import TaskRun, WorkflowRun
from runs.retention import history_storage, policy_for, prune_runs
from runs.tests.operator_fixtures import alice, make_run, make_workflow  # noqa: F401

pytestmark = pytest.mark.django_db


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def retention(settings):
    settings.AUTOMATION_RETENTION_DAYS = 30
    settings.AUTOMATION_RETENTION_FAILED_DAYS = 90
    settings.AUTOMATION_RETENTION_MAX_RUNS = 10000
    return settings


def remaining() -> set[int]:
    return set(WorkflowRun.objects.values_list("id", flat=True))


def test_old_successful_runs_go_and_failed_ones_are_kept_longer(alice, retention):
    workflow = make_workflow(alice)
    old_ok = make_run(workflow, "succeeded", {"task_A": "succeeded"}, created_at=days_ago(40))
    old_cancelled = make_run(workflow, "cancelled", created_at=days_ago(40))
    recent_ok = make_run(workflow, "succeeded", created_at=days_ago(10))
    failed_60 = make_run(workflow, "failed", {"task_B": "failed"}, created_at=days_ago(60))
    failed_100 = make_run(workflow, "failed", {"task_B": "failed"}, created_at=days_ago(100))
    result = prune_runs()
    assert remaining() == {recent_ok.id, failed_60.id}
    assert result == {"runs": 3, "task_runs": 2, "workflows": 1}
    assert not TaskRun.objects.filter(run_id__in=[old_ok.id, failed_100.id, old_cancelled.id]).exists()


def test_unfinished_runs_are_never_touched_however_old(alice, retention):
    retention.AUTOMATION_RETENTION_MAX_RUNS = 1
    workflow = make_workflow(alice)
    queued = make_run(workflow, "queued", created_at=days_ago(400))
    running = make_run(workflow, "running", {"task_A": "running"}, created_at=days_ago(400))
    newest = make_run(workflow, "succeeded")
    prune_runs()
    assert remaining() == {queued.id, running.id, newest.id}


def test_only_the_newest_runs_are_kept_beyond_the_count_limit(alice, retention):
    retention.AUTOMATION_RETENTION_MAX_RUNS = 3
    workflow, other = make_workflow(alice, name="one"), make_workflow(alice, name="two")
    runs = [make_run(workflow, "succeeded", {"task_A": "succeeded"}).id for _ in range(5)]
    others = [make_run(other, "succeeded").id for _ in range(2)]
    prune_runs()
    assert remaining() == set(runs[-3:]) | set(others)


def test_a_workflow_overrides_the_global_age_and_count(alice, retention):
    strict = make_workflow(alice, name="strict")
    strict.retention_days, strict.retention_max_runs = 2, 2
    strict.save()
    relaxed = make_workflow(alice, name="relaxed")
    relaxed.retention_days = 365
    relaxed.save()
    strict_old = make_run(strict, "succeeded", created_at=days_ago(3))
    strict_runs = [make_run(strict, "succeeded", created_at=days_ago(1)).id for _ in range(3)]
    relaxed_old = make_run(relaxed, "succeeded", created_at=days_ago(200))
    relaxed_failed = make_run(relaxed, "failed", created_at=days_ago(300))
    assert policy_for(strict).failed_days == 90 and policy_for(relaxed).failed_days == 365
    prune_runs()
    assert strict_old.id not in remaining()
    assert remaining() == set(strict_runs[-2:]) | {relaxed_old.id, relaxed_failed.id}


def test_pruning_works_in_small_batches(alice, retention):
    workflow = make_workflow(alice)
    for _ in range(7):
        make_run(workflow, "succeeded", {"task_A": "succeeded", "task_B": "succeeded"}, created_at=days_ago(45))
    keep = make_run(workflow, "succeeded")
    result = prune_runs(batch_size=2)
    assert result["runs"] == 7 and result["task_runs"] == 14
    assert remaining() == {keep.id}


def test_the_parent_of_a_retry_that_has_not_started_is_kept(alice, retention):
    workflow = make_workflow(alice)
    parent = make_run(workflow, "failed", {"task_B": "failed"}, created_at=days_ago(200))
    child = make_run(workflow, "queued", parent=parent)
    prune_runs()
    assert remaining() == {parent.id, child.id}
    WorkflowRun.objects.filter(id=child.id).update(status="succeeded")
    prune_runs()
    assert remaining() == {child.id}
    assert WorkflowRun.objects.get(id=child.id).parent_id is None


def test_storage_used_by_a_workflows_history_is_measured(alice):
    workflow = make_workflow(alice)
    make_run(workflow, "succeeded", {"task_A": "succeeded", "task_B": "succeeded"})
    used = history_storage(workflow.id)
    assert used["runs"] == 1 and used["task_runs"] == 2 and used["bytes"] > 40
    assert history_storage(workflow.id + 1000)["bytes"] == 0


def test_the_prune_task_is_registered_under_its_name():
    from automation.celery import app
    from runs import tasks

    assert tasks.prune.name == "runs.prune"
    assert "runs.prune" in app.tasks

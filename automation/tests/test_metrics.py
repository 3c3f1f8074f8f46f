"""/metrics exposes runs and task runs by state, recent durations and queue depths in Prometheus text."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


@pytest.fixture
def history():
    workflow = workflow_save(source={"name": "metrics", "tasks": {"a": {"run": "true"}, "b": {"run": "true"}}})
    now = timezone.now()

    def run(status: str, *tasks: tuple[str, str, float | None]) -> WorkflowRun:
        created = WorkflowRun.objects.create(workflow=workflow, workflow_version=workflow.current_version,
                                             status=status)
        for index, (task_status, queue, seconds) in enumerate(tasks):
            started = now - timedelta(seconds=60) if seconds is not None else None
            TaskRun.objects.create(run=created, task_id=f"t{index}", status=task_status, queue=queue,
                                   started_at=started,
                                   finished_at=started + timedelta(seconds=seconds) if seconds is not None else None)
        return created

    run("succeeded", ("succeeded", "default", 1.0), ("succeeded", "default", 3.0))
    run("failed", ("failed", "default", 2.0), ("skipped", "default", None))
    run("running", ("running", "default", None), ("queued", "heavy", None))
    run("queued")
    old = run("succeeded", ("succeeded", "default", 500.0))
    TaskRun.objects.filter(run=old).update(started_at=now - timedelta(hours=3), finished_at=now - timedelta(hours=2))
    WorkflowRun.objects.filter(id=old.id).update(created_at=now - timedelta(hours=3))
    return workflow


def test_metrics_count_runs_and_task_runs_by_state(client, broker, history):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.content.decode())
    assert samples['flowforge_runs{status="succeeded"}'] == 2
    assert samples['flowforge_runs{status="failed"}'] == 1
    assert samples['flowforge_runs{status="running"}'] == 1
    assert samples['flowforge_runs{status="queued"}'] == 1
    assert samples['flowforge_runs{status="cancelled"}'] == 0
    assert samples['flowforge_task_runs{status="succeeded"}'] == 3
    assert samples['flowforge_task_runs{status="queued"}'] == 1
    assert samples['flowforge_task_runs{status="pending"}'] == 0


def test_metrics_summarise_durations_of_the_last_hour_only(client, broker, history):
    samples = parse(client.get("/metrics").content.decode())
    assert samples["flowforge_task_duration_seconds_count"] == 3
    assert samples["flowforge_task_duration_seconds_sum"] == pytest.approx(6.0)
    assert samples['flowforge_task_duration_seconds{quantile="0.5"}'] == pytest.approx(2.0)
    assert samples['flowforge_task_duration_seconds{quantile="0.99"}'] == pytest.approx(3.0)


def test_metrics_report_queue_depth_in_the_database_and_in_redis(client, broker, history):
    broker.lpush("default", b"{}", b"{}")
    broker.lpush("default\x06\x163", b"{}")
    samples = parse(client.get("/metrics").content.decode())
    assert samples['flowforge_queued_task_runs{queue="heavy"}'] == 1
    assert samples['flowforge_queued_task_runs{queue="default"}'] == 0
    assert samples['flowforge_broker_queue_length{queue="default"}'] == 3
    assert samples['flowforge_broker_queue_length{queue="heavy"}'] == 0
    assert samples["flowforge_broker_up"] == 1


def test_metrics_still_answer_when_redis_is_down(client, settings, history):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert samples["flowforge_broker_up"] == 0
    assert not any(name.startswith("flowforge_broker_queue_length") for name in samples)


def test_metrics_lines_follow_the_exposition_format(client, broker, history):
    text = client.get("/metrics").content.decode()
    assert text.endswith("\n")
    for line in text.splitlines():
        assert re.fullmatch(r"# (HELP|TYPE) \w+ .+|\w+(\{(\w+=\"[^\"]*\",?)+\})? (-?[0-9.e+]+|NaN)", line), line


def test_metrics_require_the_bearer_token_when_one_is_configured(client, broker, settings, history):
    settings.METRICS_TOKEN = "s3cret-token"
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def test_metrics_on_an_empty_database_report_zeros(client, broker):
    samples = parse(client.get("/metrics").content.decode())
    assert samples["flowforge_task_duration_seconds_count"] == 0
    assert samples['flowforge_runs{status="running"}'] == 0

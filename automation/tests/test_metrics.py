"""/metrics exposes runs and task runs by state, recent durations and queue depths in Prometheus text."""
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from automation import health
from runs.models import TaskRun, WorkflowRun
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scraper-token"


@pytest.fixture
def scraper(settings) -> Client:
    """Prometheus: no session, the configured bearer token."""
    settings.METRICS_TOKEN = TOKEN
    return Client(headers={"Authorization": f"Bearer {TOKEN}"})


def login(client: Client, username: str, **flags) -> Client:
    client.force_login(get_user_model().objects.create_user(username, password="pw", **flags))
    return client


def assert_refused(response, status: int, message: str) -> None:
    assert response.status_code == status, response.content
    assert response.json() == {"errors": [{"path": "", "message": message}]}
    assert "flowforge_" not in response.content.decode()


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


def test_metrics_count_runs_and_task_runs_by_state(scraper, broker, history):
    response = scraper.get("/metrics")
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


def test_metrics_summarise_durations_of_the_last_hour_only(scraper, broker, history):
    samples = parse(scraper.get("/metrics").content.decode())
    assert samples["flowforge_task_duration_seconds_count"] == 3
    assert samples["flowforge_task_duration_seconds_sum"] == pytest.approx(6.0)
    assert samples['flowforge_task_duration_seconds{quantile="0.5"}'] == pytest.approx(2.0)
    assert samples['flowforge_task_duration_seconds{quantile="0.99"}'] == pytest.approx(3.0)


def test_metrics_report_queue_depth_in_the_database_and_in_redis(scraper, broker, history):
    broker.lpush("default", b"{}", b"{}")
    broker.lpush("default\x06\x163", b"{}")
    samples = parse(scraper.get("/metrics").content.decode())
    assert samples['flowforge_queued_task_runs{queue="heavy"}'] == 1
    assert samples['flowforge_queued_task_runs{queue="default"}'] == 0
    assert samples['flowforge_broker_queue_length{queue="default"}'] == 3
    assert samples['flowforge_broker_queue_length{queue="heavy"}'] == 0
    assert samples["flowforge_broker_up"] == 1


def test_metrics_still_answer_when_redis_is_down(scraper, settings, history):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = scraper.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert samples["flowforge_broker_up"] == 0
    assert not any(name.startswith("flowforge_broker_queue_length") for name in samples)


def test_metrics_lines_follow_the_exposition_format(scraper, broker, history):
    text = scraper.get("/metrics").content.decode()
    assert text.endswith("\n")
    for line in text.splitlines():
        assert re.fullmatch(r"# (HELP|TYPE) \w+ .+|\w+(\{(\w+=\"[^\"]*\",?)+\})? (-?[0-9.e+]+|NaN)", line), line


def test_metrics_on_an_empty_database_report_zeros(scraper, broker):
    samples = parse(scraper.get("/metrics").content.decode())
    assert samples["flowforge_task_duration_seconds_count"] == 0
    assert samples['flowforge_runs{status="running"}'] == 0


# --- who may read them -------------------------------------------------------------------------------------

ANONYMOUS = "authentication required: send Authorization: Bearer <METRICS_TOKEN> or log in as staff"


@pytest.mark.parametrize("token", ["", TOKEN])
def test_metrics_refuse_an_anonymous_caller_with_401_and_a_bearer_challenge(client, settings, history, token):
    settings.METRICS_TOKEN = token

    response = client.get("/metrics")

    assert_refused(response, 401, ANONYMOUS)
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


@pytest.mark.parametrize("header", ["Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"Token {TOKEN}", "Bearer ",
                                    TOKEN])
def test_metrics_refuse_a_wrong_token_with_401(client, settings, history, header):
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", HTTP_AUTHORIZATION=header)

    assert_refused(response, 401, "invalid metrics token")
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


@pytest.mark.parametrize("header", ["Bearer ", "Bearer", "Bearer x"])
def test_an_empty_metrics_token_matches_no_bearer_header(client, settings, history, header):
    settings.METRICS_TOKEN = ""

    assert_refused(client.get("/metrics", HTTP_AUTHORIZATION=header), 401, "invalid metrics token")


def test_metrics_answer_the_configured_bearer_token(client, broker, settings, history):
    settings.METRICS_TOKEN = TOKEN

    for scheme in ("Bearer", "bearer"):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"{scheme} {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize("token", ["", TOKEN])
def test_metrics_answer_a_logged_in_staff_member(client, broker, settings, history, token):
    settings.METRICS_TOKEN = token

    response = login(client, "operator", is_staff=True).get("/metrics")

    assert response.status_code == 200
    assert parse(response.content.decode())['flowforge_runs{status="succeeded"}'] == 2


def test_metrics_refuse_a_logged_in_user_who_is_not_staff_with_403(client, settings, history):
    settings.METRICS_TOKEN = TOKEN

    response = login(client, "someone").get("/metrics")

    assert_refused(response, 403, "metrics are for staff members and the scraper's token")
    assert "WWW-Authenticate" not in response


def test_metrics_refuse_an_inactive_staff_member(client, settings, history):
    user = get_user_model().objects.create_user("former", password="pw", is_staff=True)
    client.force_login(user)
    get_user_model().objects.filter(id=user.id).update(is_active=False)

    assert_refused(client.get("/metrics"), 401, ANONYMOUS)  # Django no longer counts the session as logged in


def test_metrics_compare_the_token_in_constant_time(monkeypatch, client, settings, history):
    """hmac.compare_digest on fixed-length digests: the time does not depend on where a guess goes wrong."""
    compared = []
    real = health.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(health.hmac, "compare_digest", spy)
    settings.METRICS_TOKEN = TOKEN

    client.get("/metrics", HTTP_AUTHORIZATION="Bearer s")
    client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert len(compared) == 2
    assert all(len(a) == len(b) == 32 for a, b in compared)

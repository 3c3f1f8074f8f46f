"""The admin as the operator's home: app order, the dashboard's figures, View site, favicon, the Run-now
banner, Add workflow's example and the actions page."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from runs.models import TaskRun
from runs.tests.operator_fixtures import alice, make_run, make_workflow, staff  # noqa: F401
from workflows import cron
from workflows.admin import EXAMPLE_DEFINITION
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

CRON = """
name: "Weekday report"
triggers:
  - {type: cron, cron: "0 9 * * 1-5", timezone: "Europe/Paris"}
tasks:
  report: {run: "echo report"}
"""


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_the_index_shows_workflows_and_runs_first_and_the_internals_last(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    positions = [html.index(f'class="app-{label} module') for label in
                 ("workflows", "runs", "connectors", "auth", "django_celery_beat", "authtoken", "social_django")]
    assert positions == sorted(positions)
    assert html.index('id="ff-internals"') < html.index('class="app-django_celery_beat module')
    assert html.index('id="ff-internals"') > html.index('class="app-auth module')


def test_the_sidebar_of_every_admin_page_lists_workflows_and_runs_first(admin_client):
    apps = admin_client.get(reverse("admin:runs_workflowrun_changelist")).context["available_apps"]
    labels = [app["app_label"] for app in apps]
    assert labels[:2] == ["workflows", "runs"] and labels[-1] == "social_django"


def test_view_site_opens_the_builder(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert re.search(r'<a href="/builder/">View site</a>', html)
    assert admin_client.get("/builder/").status_code == 200


def test_a_favicon_is_served_and_linked_from_the_admin(admin_client, client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', html).group(1)
    redirect = client.get("/favicon.ico")
    assert redirect.status_code == 302 and redirect["Location"] == icon
    served = client.get(icon)
    assert served.status_code == 200 and served["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(served.streaming_content)


def test_the_dashboard_shows_durations_like_the_run_pages(admin_client, alice):
    run = make_run(make_workflow(alice), "succeeded", {"task_A": "succeeded"})
    task = TaskRun.objects.get(run=run)
    TaskRun.objects.filter(id=task.id).update(finished_at=task.started_at + timedelta(milliseconds=110))
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert re.search(r'<td class="ff-num">0\.11 s</td>', html)
    assert "0:00:00.11" not in html


def test_next_fires_are_the_cron_engines_next_fire_shown_on_the_minute(admin_client, alice):
    workflow = make_workflow(alice, CRON)
    task = PeriodicTask.objects.get(name=f"flowforge:{workflow.id}:cron:0")
    expected = cron.next_fire_time("0 9 * * 1-5", "Europe/Paris", after=datetime.now(dt_timezone.utc))
    assert task.start_time == expected  # beat wakes at the cron engine's next fire (workflows/triggers.py)
    html = admin_client.get(reverse("admin:index")).content.decode()
    row = re.search(r'<table class="ff-table" id="ff-next-fires">.*?</table>', html, re.S).group(0)
    assert "Weekday report" in row and "cron 0 9 * * 1-5 (Europe/Paris)" in row
    assert f'{expected.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M} UTC</time>' in row
    assert re.search(r":\d\d:\d\d", re.sub(r'datetime="[^"]*"', "", row)) is None  # no seconds shown


def test_the_workflow_page_shows_each_cron_triggers_next_fire(admin_client, alice):
    workflow = make_workflow(alice, CRON)
    expected = cron.next_fire_time("0 9 * * 1-5", "Europe/Paris", after=datetime.now(dt_timezone.utc))
    html = admin_client.get(reverse("admin:workflows_workflow_change", args=[workflow.id])).content.decode()
    assert "0 9 * * 1-5 — At 09:00, Monday through Friday (Europe/Paris)" in html
    assert f"{expected.astimezone(dt_timezone.utc):%Y-%m-%d %H:%M} UTC" in html


def test_the_index_costs_the_same_queries_with_more_workflows_and_schedules(admin_client, alice,
                                                                           django_assert_max_num_queries):
    for index in range(2):
        make_run(make_workflow(alice, CRON, name=f"report {index}"), "succeeded", {"task_A": "succeeded"})
    with django_assert_max_num_queries(40) as few:
        admin_client.get(reverse("admin:index"))
    for index in range(2, 8):
        make_run(make_workflow(alice, CRON, name=f"report {index}"), "failed", {"task_A": "failed"})
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(reverse("admin:index"))


def test_the_run_now_banner_is_shown_once_and_names_the_run_for_the_live_page(admin_client, alice):
    workflow = make_workflow(alice)
    page = admin_client.post(reverse("admin:workflows_workflow_run", args=[workflow.id]), {"payload": "{}"},
                             follow=True)
    run_id = page.context["run"].pk
    assert re.search(rf'<li class="ff-run-banner ff-run-{run_id} success">Run {run_id} running.</li>',
                     page.content.decode())
    assert f'data-run-id="{run_id}"' in page.content.decode()
    again = admin_client.get(reverse("admin:runs_workflowrun_change", args=[run_id])).content.decode()
    assert "ff-run-banner" not in again


def test_add_workflow_starts_from_a_valid_example_and_links_the_actions(admin_client, staff):
    page = admin_client.get(reverse("admin:workflows_workflow_add")).content.decode()
    assert "name: My workflow" in page and "action: http.request" in page
    assert f'href="{reverse("admin:workflows_workflow_actions")}"' in page and 'href="/api/actions/"' in page
    saved = admin_client.post(reverse("admin:workflows_workflow_add"), {
        "name": "", "definition_text": EXAMPLE_DEFINITION, "enabled": "on", "owner": "", "retention_days": "",
        "retention_max_runs": "", "based_on_version": ""})
    assert saved.status_code == 302
    assert Workflow.objects.get(name="My workflow").definition["tasks"]["report"]["depends_on"] == ["fetch"]


def test_the_actions_page_lists_every_action_with_its_inputs(admin_client):
    html = admin_client.get(reverse("admin:workflows_workflow_actions")).content.decode()
    assert 'id="action-httprequest"' in html and "<code>url</code>" in html and "required" in html
    assert 'id="action-shellrun"' in html and 'id="action-transformjinja"' in html


def test_a_misspelt_action_in_the_admin_editor_gets_a_suggestion(admin_client):
    page = admin_client.post(reverse("admin:workflows_workflow_add"), {
        "name": "", "definition_text": "name: x\ntasks:\n  a: {action: shel.run, inputs: {command: ls}}\n",
        "enabled": "on", "owner": "", "retention_days": "", "retention_max_runs": "", "based_on_version": ""})
    assert page.status_code == 200
    assert "tasks.a.action: unknown action &#x27;shel.run&#x27; (did you mean &#x27;shell.run&#x27;?)" in \
        page.content.decode()

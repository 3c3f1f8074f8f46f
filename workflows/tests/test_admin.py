"""The workflow admin: list, change page panels, validated saves through workflow_save, Run now, actions."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from runs.models import WorkflowRun
from runs.tests.operator_fixtures import INVALID, PIPELINE, alice, make_run, make_workflow, staff  # noqa: F401
from workflows.models import Workflow, WorkflowVersion
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def form_data(workflow: Workflow | None = None, **overrides) -> dict:
    data = {"name": "", "definition_text": PIPELINE, "enabled": "on", "owner": "", "retention_days": "",
            "retention_max_runs": "", "based_on_version": workflow.version if workflow else ""}
    data.update(overrides)
    return data


def test_the_workflow_list_shows_last_run_status_and_run_count(admin_client, alice):
    workflow = make_workflow(alice)
    make_run(workflow, "succeeded")
    make_run(workflow, "failed")
    page = admin_client.get(reverse("admin:workflows_workflow_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Data Pipeline" in html and 'ff-status-failed">failed<' in html
    assert f"?workflow__id__exact={workflow.id}\">2</a>" in html


def test_the_workflow_list_with_several_workflows_shows_each_ones_figures_in_a_fixed_number_of_queries(
        admin_client, alice, django_assert_max_num_queries):
    busy, idle, other = (make_workflow(alice, name=name) for name in ("Busy", "Idle", "Other"))
    make_run(busy, "failed")
    make_run(busy, "succeeded")
    make_run(other, "failed")
    with django_assert_max_num_queries(12) as captured:
        page = admin_client.get(reverse("admin:workflows_workflow_changelist"))
    assert page.status_code == 200
    sql = " ".join(query["sql"].upper() for query in captured.captured_queries)
    assert "UNION" not in sql  # SQLite refuses LIMIT inside a compound statement's branches
    figures = {w.name: (w._runs_count, w._last_run_status) for w in page.context["cl"].result_list}
    assert figures == {"Busy": (2, "succeeded"), "Idle": (0, None), "Other": (1, "failed")}


def test_the_change_page_shows_graph_webhook_builder_link_and_yaml(admin_client, alice):
    workflow = make_workflow(alice)
    page = admin_client.get(reverse("admin:workflows_workflow_change", args=[workflow.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<svg class="ff-graph"' in html
    for task in ("task_A", "task_B", "task_D", "task_E"):
        assert f'data-task="{task}"' in html
    assert html.count('class="ff-edge"') == 4
    assert workflow.webhook_path in html and "ff-copy" in html
    assert f'href="/builder/{workflow.id}/"' in html
    assert reverse("admin:workflows_workflow_run", args=[workflow.id]) in html
    assert 'class="ff-code"' in html and "task_A:" in html  # the definition as YAML text
    assert "Storage used" in html and "No schedules." in html


def test_adding_a_valid_yaml_definition_saves_version_one_owned_by_the_operator(admin_client, staff):
    response = admin_client.post(reverse("admin:workflows_workflow_add"), form_data())
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow = Workflow.objects.get()
    assert workflow.name == "Data Pipeline" and workflow.version == 1 and workflow.owner == staff
    assert workflow.current_version.definition["tasks"]["task_B"]["depends_on"] == ["task_A"]


def test_adding_an_invalid_definition_shows_the_path_named_error_and_stores_nothing(admin_client):
    response = admin_client.post(reverse("admin:workflows_workflow_add"), form_data(definition_text=INVALID))
    assert response.status_code == 200
    html = response.content.decode()
    assert "tasks.task_B.depends_on: unknown task &#x27;task_Z&#x27;" in html
    assert "errorlist" in html
    assert not Workflow.objects.exists() and not WorkflowVersion.objects.exists()


def test_a_json_definition_is_accepted_and_unparsable_text_is_an_error(admin_client):
    json_source = '{"name": "J", "tasks": {"a": {"run": "echo a"}}}'
    assert admin_client.post(reverse("admin:workflows_workflow_add"),
                             form_data(definition_text=json_source)).status_code == 302
    response = admin_client.post(reverse("admin:workflows_workflow_add"),
                                 form_data(definition_text="tasks: [unclosed"))
    assert response.status_code == 200 and "line" in response.context["adminform"].form.errors["definition_text"][0]
    assert Workflow.objects.count() == 1


def test_editing_bumps_the_version_and_shows_a_diff(admin_client, alice):
    workflow = make_workflow(alice)
    changed = PIPELINE.replace("Finalizing", "All done")
    url = reverse("admin:workflows_workflow_change", args=[workflow.id])
    response = admin_client.post(url, form_data(workflow, name="Data Pipeline", definition_text=changed,
                                                owner=alice.id, retention_days="7"))
    assert response.status_code == 302, response.content.decode()[:3000]
    workflow.refresh_from_db()
    assert workflow.version == 2 and workflow.owner == alice and workflow.retention_days == 7
    html = admin_client.get(url).content.decode()
    assert "ff-diff-del" in html and "ff-diff-add" in html and "All done" in html
    assert "v2" in html and "v1" in html


def test_an_edit_based_on_a_stale_version_is_refused(admin_client, alice):
    workflow = make_workflow(alice)
    stale = form_data(workflow, name="Data Pipeline")
    workflow_save(source=PIPELINE.replace("Archiving", "Archive"), workflow=workflow)  # someone else saves v2
    response = admin_client.post(reverse("admin:workflows_workflow_change", args=[workflow.id]),
                                 dict(stale, definition_text=PIPELINE.replace("echo", "printf")))
    assert response.status_code == 200 and "changed meanwhile" in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.version == 2


def test_a_name_taken_by_another_workflow_of_the_owner_is_an_error(admin_client, alice):
    make_workflow(alice, name="Taken")
    response = admin_client.post(reverse("admin:workflows_workflow_add"), form_data(name=" taken", owner=alice.id))
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Workflow.objects.count() == 1


def test_run_now_creates_a_run_with_the_payload_and_opens_its_page(admin_client, alice):
    workflow = make_workflow(alice)
    url = reverse("admin:workflows_workflow_run", args=[workflow.id])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"payload": '{"user_id": 42}'})
    run = WorkflowRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:runs_workflowrun_change", args=[run.id])
    assert run.trigger == {"body": {"user_id": 42}, "kind": "manual"} and run.trigger_kind == "manual"


def test_run_now_with_invalid_json_shows_the_error_and_runs_nothing(admin_client, alice):
    workflow = make_workflow(alice)
    response = admin_client.post(reverse("admin:workflows_workflow_run", args=[workflow.id]), {"payload": "{nope"})
    assert response.status_code == 400 and "not valid JSON" in response.content.decode()
    assert not WorkflowRun.objects.exists()


def test_run_now_needs_a_post_with_csrf(client, staff, alice):
    from django.test import Client

    workflow = make_workflow(alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff)
    response = strict.post(reverse("admin:workflows_workflow_run", args=[workflow.id]), {"payload": "{}"})
    assert response.status_code == 403 and not WorkflowRun.objects.exists()


def test_enable_and_disable_actions(admin_client, alice):
    workflow = make_workflow(alice)
    changelist = reverse("admin:workflows_workflow_changelist")
    admin_client.post(changelist, {"action": "disable_workflows", "_selected_action": [workflow.id]})
    workflow.refresh_from_db()
    assert workflow.enabled is False and workflow.version == 1
    admin_client.post(changelist, {"action": "enable_workflows", "_selected_action": [workflow.id]})
    workflow.refresh_from_db()
    assert workflow.enabled is True


def test_the_workflows_schedules_are_listed(admin_client, alice):
    workflow = make_workflow(alice)
    crontab = CrontabSchedule.objects.create(minute="0", hour="9", day_of_week="1-5")
    PeriodicTask.objects.create(name=f"flowforge:{workflow.id}:cron:0", task="workflows.fire_cron", crontab=crontab)
    PeriodicTask.objects.create(name="flowforge:999:cron:0", task="workflows.fire_cron", crontab=crontab)
    html = admin_client.get(reverse("admin:workflows_workflow_change", args=[workflow.id])).content.decode()
    assert f"flowforge:{workflow.id}:cron:0" in html and "flowforge:999:" not in html


def test_the_admin_index_shows_the_dashboard(admin_client, alice):
    workflow = make_workflow(alice)
    make_run(workflow, "failed", {"task_A": "succeeded", "task_B": "failed"})
    make_run(workflow, "succeeded", {"task_A": "succeeded"})
    make_run(workflow, "running", {"task_A": "queued"})
    page = admin_client.get(reverse("admin:index"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="ff-dashboard"' in html and "Failure rate per workflow" in html
    assert "33.3 %" in html  # one failed of three runs in the window
    assert "Slowest tasks" in html and "Queue depth" in html and "<h1" in html


def test_staff_without_the_run_view_permission_get_no_dashboard_of_other_users_runs(client, alice):
    make_run(make_workflow(alice, name="alice-private"), "failed", {"task_A": "failed"})
    client.force_login(get_user_model().objects.create_user("ops", password="pw", is_staff=True))
    html = client.get(reverse("admin:index")).content.decode()
    assert 'id="ff-dashboard"' not in html and "alice-private" not in html


def test_the_login_and_logged_out_pages_have_the_admin_look(client, staff):
    login = client.get("/accounts/login/")
    assert login.status_code == 200 and "Flowforge" in login.content.decode()
    response = client.post("/accounts/login/", {"username": "operator", "password": "pw-operator"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    out = client.post("/accounts/logout/")
    assert out.status_code == 200 and "You are logged out" in out.content.decode()

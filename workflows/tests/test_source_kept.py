"""A definition's text is kept as written (comments, layout, quoting) through the admin, the API and export."""
from __future__ import annotations

import html
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from runs.tests.operator_fixtures import alice, staff  # noqa: F401
from workflows.models import Workflow
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db

SOURCE = """# Nightly report: fetch, then report.   Keep this header.
name: Commented report   # the name the API and exportworkflow use

tasks:
  # always first
  fetch: { run: "echo 'fetching'" }

  report:
    run: >-
      echo 'reporting'
    depends_on: [ fetch ]     # after fetch
"""


def admin_textarea(client, workflow: Workflow) -> str:
    page = client.get(reverse("admin:workflows_workflow_change", args=[workflow.id])).content.decode()
    # Django's Textarea writes a newline after the opening tag, which browsers drop.
    body = re.search(r'<textarea name="definition_text"[^>]*>\n(.*?)</textarea>', page, re.S).group(1)
    return html.unescape(body)


def exported(name: str) -> str:
    out = StringIO()
    call_command("exportworkflow", name, stdout=out)
    return out.getvalue()


def admin_form(workflow: Workflow | None, text: str) -> dict:
    return {"name": "", "definition_text": text, "enabled": "on", "owner": "", "retention_days": "",
            "retention_max_runs": "", "based_on_version": workflow.version if workflow else ""}


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_a_commented_definition_saved_in_the_admin_comes_back_byte_for_byte_from_the_page_and_export(
        admin_client):
    # A browser submits the textarea's line breaks as CRLF.
    response = admin_client.post(reverse("admin:workflows_workflow_add"),
                                 admin_form(None, SOURCE.replace("\n", "\r\n")))
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow = Workflow.objects.get()

    assert admin_textarea(admin_client, workflow) == SOURCE
    assert exported("Commented report") == SOURCE
    assert workflow.definition["tasks"]["report"]["depends_on"] == ["fetch"]


def test_a_commented_yaml_string_created_and_updated_through_the_api_comes_back_as_written(admin_client, alice):
    api = APIClient()
    api.force_authenticate(alice)
    created = api.post("/api/workflows/", {"definition": SOURCE}, format="json")
    assert created.status_code == 201, created.json()
    workflow = Workflow.objects.get(id=created.json()["id"])
    assert admin_textarea(admin_client, workflow) == SOURCE
    assert exported("Commented report") == SOURCE

    edited = SOURCE.replace("echo 'reporting'", "echo 'reporting v2'  ")
    updated = api.put(f"/api/workflows/{workflow.id}/", {"definition": edited, "version": 1}, format="json")
    assert updated.status_code == 200, updated.json()
    workflow.refresh_from_db()
    assert workflow.version == 2
    assert admin_textarea(admin_client, workflow) == edited
    assert exported("Commented report") == edited

    # An update without a definition (here only `enabled`) keeps the text.
    assert api.patch(f"/api/workflows/{workflow.id}/", {"enabled": False}, format="json").status_code == 200
    assert exported("Commented report") == edited


def test_an_exported_source_reimports_to_the_same_definition_without_a_new_version(tmp_path, alice):
    workflow = workflow_save(source=SOURCE, owner=alice)
    path = tmp_path / "exported.yaml"
    path.write_text(exported("Commented report"), encoding="utf-8")

    call_command("importworkflow", str(path), "--owner", "alice", stdout=StringIO())

    again = Workflow.objects.get(id=workflow.id)
    assert again.definition == workflow.definition and again.version == 1 and again.source == SOURCE


def test_editing_only_a_comment_keeps_the_version_and_shows_the_new_comment(admin_client, alice):
    workflow = workflow_save(source=SOURCE, owner=alice)
    recommented = SOURCE.replace("# always first", "# always first, it feeds the report")

    response = admin_client.post(reverse("admin:workflows_workflow_change", args=[workflow.id]),
                                 admin_form(workflow, recommented))

    assert response.status_code == 302, response.content.decode()[:2000]
    workflow.refresh_from_db()
    assert workflow.version == 1 and workflow.current_version.source == recommented
    assert admin_textarea(admin_client, workflow) == recommented


def test_the_admin_version_diff_compares_the_texts_as_written(admin_client, alice):
    workflow = workflow_save(source=SOURCE, owner=alice)
    workflow_save(source=SOURCE.replace("echo 'reporting'", "echo 'done'") + "# trailing note\n",
                  workflow=workflow)

    page = admin_client.get(reverse("admin:workflows_workflow_change", args=[workflow.id])).content.decode()

    history = html.unescape(page[page.index('class="ff-versions"'):])
    assert "+# trailing note" in history
    assert "-      echo 'reporting'" in history and "+      echo 'done'" in history


def test_a_definition_sent_as_an_object_exports_as_rendered_yaml_and_an_equal_object_keeps_the_text(alice):
    workflow = workflow_save(source=SOURCE, owner=alice)
    same = dict(workflow.definition)
    workflow_save(source=same, workflow=workflow, enabled=False)  # e.g. the admin's "disable" action
    assert exported("Commented report") == SOURCE

    changed = {**same, "tasks": {"only": {"run": "echo only"}}}
    workflow = workflow_save(source=changed, workflow=workflow)
    text = exported("Commented report")
    assert workflow.source == "" and "#" not in text
    assert text.startswith("name: Commented report\n") and "only:" in text


def test_a_workflow_renamed_apart_from_its_definition_exports_under_its_own_name(tmp_path, alice):
    workflow = workflow_save(source=SOURCE, owner=alice, name="Renamed")
    path = tmp_path / "exported.yaml"
    path.write_text(exported("Renamed"), encoding="utf-8")

    call_command("importworkflow", str(path), "--owner", "alice", stdout=StringIO())

    assert list(Workflow.objects.values_list("id", flat=True)) == [workflow.id]

"""`manage.py bootstrap_demo`: demo admin on first start, missing examples created, existing ones never touched."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from workflows.models import Workflow
from workflows.services import workflow_save

pytestmark = pytest.mark.django_db
EXAMPLES = Path("/work/shared/examples")


def bootstrap(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("bootstrap_demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def examples(tmp_path) -> Path:
    if EXAMPLES.is_dir():
        return EXAMPLES
    (tmp_path / "first.yaml").write_text('name: "First"\nsteps:\n  - {name: Hello, run: "echo hi"}\n')
    (tmp_path / "invalid-x.yaml").write_text("name: x\n")
    (tmp_path / "schedule.yaml").write_text("jobs: []\n")
    return tmp_path


def test_it_creates_the_demo_admin_with_a_warning_and_imports_the_valid_examples(examples, monkeypatch):
    monkeypatch.delenv("FLOWFORGE_ADMIN_PASSWORD", raising=False)
    out, err = bootstrap(str(examples))
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    assert "WARNING" in err and "not imported" not in err
    valid = [p for p in examples.iterdir() if p.suffix in (".yaml", ".json") and not p.name.startswith("invalid-")
             and p.name != "schedule.yaml"]
    assert Workflow.objects.count() == len(valid) > 0
    assert set(Workflow.objects.values_list("owner", flat=True)) == {admin.id}


def test_running_it_again_changes_nothing(examples, monkeypatch):
    monkeypatch.setenv("FLOWFORGE_ADMIN_PASSWORD", "s3cret-demo")
    bootstrap(str(examples))
    versions = dict(Workflow.objects.values_list("name", "version"))
    out, err = bootstrap(str(examples))
    assert dict(Workflow.objects.values_list("name", "version")) == versions
    assert "exists; left as it is" in out and "imported" not in out and not err
    assert User.objects.get(username="admin").check_password("s3cret-demo") and User.objects.count() == 1


def test_an_existing_superuser_means_no_demo_user(db):
    User.objects.create_superuser("root", password="x")
    out, _ = bootstrap()
    assert "Superuser 'root' exists" in out and not User.objects.filter(username="admin").exists()


def test_an_example_the_operator_edited_keeps_its_edit_and_version_on_the_next_start(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWFORGE_ADMIN_PASSWORD", "s3cret-demo")
    (tmp_path / "pipeline.yaml").write_text(
        'name: "Data Pipeline"\ntasks:\n  task_A: {run: "echo a"}\n  task_B: {run: "echo b", depends_on: [task_A]}\n')
    bootstrap(str(tmp_path))
    example = Workflow.objects.get(name="Data Pipeline")
    edited = dict(example.definition)
    edited["tasks"] = {**edited["tasks"], "added_in_builder": {"run": "echo new", "depends_on": ["task_B"]}}
    edited["triggers"] = [{"type": "cron", "cron": "*/5 * * * *"}]
    workflow_save(source=edited, owner=example.owner, workflow=example, expected_version=1)

    out, err = bootstrap(str(tmp_path))

    example.refresh_from_db()
    assert example.version == 2 and example.definition == edited and example.current_version.version == 2
    assert PeriodicTask.objects.filter(name__startswith=f"flowforge:{example.id}:", enabled=True).count() == 1
    assert "'Data Pipeline' exists; left as it is" in out and "updated" not in out and not err


def test_a_missing_example_is_created_beside_the_existing_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWFORGE_ADMIN_PASSWORD", "s3cret-demo")
    (tmp_path / "first.yaml").write_text('name: "First"\nsteps:\n  - {name: Hello, run: "echo hi"}\n')
    bootstrap(str(tmp_path))
    (tmp_path / "second.yaml").write_text('name: "Second"\nsteps:\n  - {name: Hello, run: "echo hi"}\n')

    out, _ = bootstrap(str(tmp_path))

    assert "'Second' imported" in out and "'First' exists" in out
    assert sorted(Workflow.objects.values_list("name", "version")) == [("First", 1), ("Second", 1)]


def test_another_users_workflow_of_the_same_name_is_neither_touched_nor_in_the_way(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWFORGE_ADMIN_PASSWORD", "s3cret-demo")
    bob = User.objects.create_user("bob", password="pw-bob")
    theirs = workflow_save(source='name: "First"\ntasks:\n  mine: {run: "echo bob"}\n', owner=bob)
    (tmp_path / "first.yaml").write_text('name: "First"\nsteps:\n  - {name: Hello, run: "echo hi"}\n')

    out, err = bootstrap(str(tmp_path))

    admin = User.objects.get(username="admin")
    assert "'First' imported" in out and "not imported" not in err
    theirs.refresh_from_db()
    assert theirs.owner == bob and theirs.version == 1 and list(theirs.definition["tasks"]) == ["mine"]
    assert Workflow.objects.filter(name="First", owner=admin).exists()


REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_repository_examples_bin_start_imports_include_the_control_flow_ones(monkeypatch):
    monkeypatch.setenv("FLOWFORGE_ADMIN_PASSWORD", "s3cret-demo")
    out, err = bootstrap(str(REPO_EXAMPLES))
    assert "not imported" not in err, err
    admin = User.objects.get(username="admin")
    names = set(Workflow.objects.filter(owner=admin).values_list("name", flat=True))
    assert {"Approve and file invoices", "Import that fails", "Alert on failure"} <= names
    mapped = Workflow.objects.get(name="Approve and file invoices").definition["tasks"]["file_invoice"]
    assert mapped["for_each"] == "{{ trigger.body.invoices }}" and mapped["max_parallel"] == 2
    assert Workflow.objects.get(name="Import that fails").definition["on_failure"] == "Alert on failure"

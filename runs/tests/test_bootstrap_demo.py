"""`manage.py bootstrap_demo`: demo admin on first start, examples imported, idempotent."""
from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from workflows.models import Workflow

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
    assert "unchanged" in out and "imported" not in out and not err
    assert User.objects.get(username="admin").check_password("s3cret-demo") and User.objects.count() == 1


def test_an_existing_superuser_means_no_demo_user(db):
    User.objects.create_superuser("root", password="x")
    out, _ = bootstrap()
    assert "Superuser 'root' exists" in out and not User.objects.filter(username="admin").exists()

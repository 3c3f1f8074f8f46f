"""importworkflow / exportworkflow round trip (SPEC §5)."""
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command

from workflows.models import Workflow

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"


@pytest.fixture(autouse=True)
def superuser(db) -> User:
    """importworkflow's default owner."""
    return User.objects.create_superuser("root", password="pw-root")


def test_export_reimports_to_the_same_definition(tmp_path):
    call_command("importworkflow", str(EXAMPLES / "fail-and-skip.yaml"), stdout=StringIO())
    original = Workflow.objects.get(name="Fail and skip")
    out = StringIO()
    call_command("exportworkflow", "Fail and skip", stdout=out)
    exported = tmp_path / "exported.yaml"
    exported.write_text(out.getvalue())
    call_command("importworkflow", str(exported), stdout=StringIO())
    again = Workflow.objects.get(name="Fail and skip")
    assert again.definition == original.definition
    assert again.version == original.version == 1
    assert yaml.safe_load(out.getvalue())["tasks"]["task_E"]["trigger_rule"] == "all_done"


def test_import_updates_by_name_and_bumps_the_version(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text("name: Nightly\ntasks:\n  a: {run: 'echo 1'}\n")
    call_command("importworkflow", str(path), stdout=StringIO())
    path.write_text("name: Nightly\ntasks:\n  a: {run: 'echo 2'}\n")
    call_command("importworkflow", str(path), stdout=StringIO())
    workflow = Workflow.objects.get(name="Nightly")
    assert workflow.version == 2
    assert [v.version for v in workflow.versions.all()] == [2, 1]


def test_invalid_file_is_refused_with_the_path_and_stores_nothing():
    err = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("importworkflow", str(EXAMPLES / "invalid-cycle.yaml"), stderr=err, stdout=StringIO())
    assert exited.value.code == 1
    assert "tasks.a.depends_on: dependency cycle: a -> b -> c -> a" in err.getvalue()
    assert not Workflow.objects.exists()


def test_import_without_owner_gives_the_workflows_to_the_first_superuser(tmp_path, superuser):
    path = tmp_path / "wf.yaml"
    path.write_text("name: Nightly\ntasks:\n  a: {run: 'echo 1'}\n")
    call_command("importworkflow", str(path), stdout=StringIO())
    assert Workflow.objects.get(name="Nightly").owner == superuser


def test_import_updates_by_name_only_within_the_owner(tmp_path, superuser):
    bob = User.objects.create_user("bob")
    path = tmp_path / "wf.yaml"
    path.write_text("name: Nightly\ntasks:\n  a: {run: 'echo 1'}\n")
    call_command("importworkflow", str(path), stdout=StringIO())
    path.write_text("name: ' nightly'\ntasks:\n  a: {run: 'echo 2'}\n")
    call_command("importworkflow", "--owner", "bob", str(path), stdout=StringIO())
    call_command("importworkflow", "--owner", "bob", str(path), stdout=StringIO())
    mine, bobs = Workflow.objects.get(owner=superuser), Workflow.objects.get(owner=bob)
    assert (mine.name, mine.version, mine.definition["tasks"]["a"]["run"]) == ("Nightly", 1, "echo 1")
    assert (bobs.name, bobs.version, bobs.definition["tasks"]["a"]["run"]) == ("nightly", 1, "echo 2")


def test_import_on_a_database_with_no_superuser_creates_ownerless_workflows_and_says_so(tmp_path, superuser):
    superuser.delete()
    path = tmp_path / "wf.yaml"
    path.write_text("name: Nightly\ntasks:\n  a: {run: 'echo 1'}\n")
    err = StringIO()
    call_command("importworkflow", str(path), stderr=err, stdout=StringIO())
    call_command("importworkflow", str(path), stderr=StringIO(), stdout=StringIO())  # updates, never duplicates
    assert "--owner" in err.getvalue()
    assert list(Workflow.objects.values_list("name", "owner", "version")) == [("Nightly", None, 1)]


def test_export_asks_for_the_owner_when_several_users_have_the_name(tmp_path):
    User.objects.create_user("bob")
    path = tmp_path / "wf.yaml"
    path.write_text("name: Nightly\ntasks:\n  a: {run: 'echo 1'}\n")
    call_command("importworkflow", str(path), stdout=StringIO())
    call_command("importworkflow", "--owner", "bob", str(path), stdout=StringIO())
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("exportworkflow", "Nightly", stderr=err, stdout=StringIO())
    assert "--owner" in err.getvalue()
    out = StringIO()
    call_command("exportworkflow", "--owner", "bob", "NIGHTLY", stdout=out)
    assert yaml.safe_load(out.getvalue())["name"] == "Nightly"

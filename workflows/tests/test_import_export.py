"""importworkflow / exportworkflow round trip (SPEC §5)."""
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from workflows.models import Workflow

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"


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

"""`manage.py runworkflow` as a user runs it: a subprocess printing the seed's format."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT.parent / "shared" / "examples"


def runworkflow(path, tmp_path, *extra):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3", "AUTOMATION_VAR_DIR": str(tmp_path / "var"),
           "AUTOMATION_FILES_ROOT": str(tmp_path / "files"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "manage.py", "runworkflow", str(path), *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_data_pipeline_prints_the_plan_and_succeeds(tmp_path):
    result = runworkflow(EXAMPLES / "data-pipeline.yaml", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[PLAN] Execution order: task_A -> [task_B, task_D] -> task_C -> task_E"
    assert "[SUCCESS] Task task_E" in lines and "    Finalizing" in lines
    assert lines.index("[SUCCESS] Task task_A") < lines.index("[RUNNING] Task task_B")


def test_fail_and_skip_exits_non_zero_and_skips_the_dependent(tmp_path):
    result = runworkflow(EXAMPLES / "fail-and-skip.yaml", tmp_path)
    assert result.returncode == 1
    assert "[FAILED] Task task_B: exit code 3: boom" in result.stdout
    assert "[SKIPPED] Task task_C" in result.stdout
    assert "[SUCCESS] Task task_D" in result.stdout and "[SUCCESS] Task task_E" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["invalid-cycle", "invalid-unknown-action", "invalid-unknown-dependency"])
def test_invalid_examples_exit_non_zero_with_one_line(tmp_path, name):
    result = runworkflow(EXAMPLES / f"{name}.yaml", tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_input_payload_becomes_trigger_body(tmp_path):
    path = tmp_path / "greet.yaml"
    path.write_text("name: greet\ntasks:\n  hi: {action: transform.jinja, inputs: {value: 'hi {{ trigger.body.who }}'}}\n")
    result = runworkflow(path, tmp_path, "--input", '{"who": "Ada"}')
    assert result.returncode == 0
    assert '"value": "hi Ada"' in result.stdout

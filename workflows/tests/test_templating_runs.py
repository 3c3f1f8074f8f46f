"""Template problems end as an ordinary failed task naming the path: on the command line (no traceback) and on
a real Celery worker (failed on its first attempt, never "worker lost"); shell commands print values as data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from automation.testing import wait_for_run
from runs.models import TaskRun

ROOT = Path(__file__).resolve().parents[2]
LEAKS = {
    "a": {"action": "transform.jinja", "inputs": {"value": {"rows": [{"name": "n"}]}}},
    "in_list": {"depends_on": ["a"], "action": "transform.jinja",
                "inputs": {"value": "{{ [steps.a.output.value.nme] }}"}},
    "in_map": {"depends_on": ["a"], "action": "transform.jinja",
               "inputs": {"value": "{{ steps.a.output.value.rows|map(attribute='nme')|list }}"}},
    "method": {"depends_on": ["a"], "action": "transform.jinja",
               "inputs": {"value": "{{ steps.a.output.value.rows[0].items }}"}},
    "in_when": {"depends_on": ["a"], "action": "transform.jinja", "when": "{{ {'k': steps.a.output.value.nme} }}",
                "inputs": {"value": 1}},
    "idioms": {"depends_on": ["a"], "action": "transform.jinja", "inputs": {"value": (
        "{% for k, v in steps.a.output.value.rows[0].items() %}{{ k }}={{ v }}{% endfor %}"
        " {{- steps.a.output.value.get('rows')|length }} }}")}},
}
ERRORS = {
    "in_list": "inputs.value: steps.a.output.value.nme is undefined",
    "in_map": "inputs.value: steps.a.output.value.rows[0].nme is undefined",
    "method": "inputs.value: `{{ steps.a.output.value.rows[0].items }}` gives `items`, a method, not a value: "
              "call it, `items()`",
    "in_when": "when: steps.a.output.value.nme is undefined",
}


def test_runworkflow_reports_template_problems_as_failed_tasks_without_a_traceback(tmp_path):
    path = tmp_path / "leaks.json"
    path.write_text(json.dumps({"name": "leaks", "tasks": LEAKS}))
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3", "AUTOMATION_VAR_DIR": str(tmp_path / "var"),
           "AUTOMATION_FILES_ROOT": str(tmp_path / "files"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "manage.py", "runworkflow", str(path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for task_id, error in ERRORS.items():
        assert f"[FAILED] Task {task_id}: could not run: template error: {error}\n" in result.stdout, result.stdout
    assert "[SUCCESS] Task idioms" in result.stdout and '"value": "name=n1 }}"' in result.stdout


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_fails_template_problems_on_the_first_attempt_and_quotes_shell_values_as_data(
        client, start_worker, tmp_path):
    client.force_login(get_user_model().objects.create_user("operator", password="pw", is_staff=True))
    start_worker("w1")
    pwn = tmp_path / "pwn"
    tasks = {**{task_id: {**task, "retries": 2, "retry_delay": 0.1} for task_id, task in LEAKS.items()},
             "say": {"action": "shell.run", "inputs": {"command": 'echo "done: {{ trigger.body.name }}"'}}}
    created = client.post("/api/workflows/", {"definition": {"name": "leaks", "tasks": tasks}},
                          content_type="application/json")
    assert created.status_code == 201, created.json()
    started = client.post(f"/api/workflows/{created.json()['id']}/run/", {"name": f"it's $(touch {pwn})"},
                          content_type="application/json")
    run = wait_for_run(started.json()["run_id"], timeout=60)

    assert run.status == "failed"
    runs = {t.task_id: t for t in TaskRun.objects.filter(run=run)}
    for task_id, error in ERRORS.items():
        assert (runs[task_id].status, runs[task_id].error) == ("failed", f"could not run: template error: {error}")
        assert runs[task_id].failure == "template_error"
        assert [a["status"] for a in runs[task_id].attempts] == ["failed"]  # not retried, never "lost"
    assert runs["idioms"].output == {"value": "name=n1 }}"}
    assert runs["say"].output["stdout"] == f"done: it's $(touch {pwn})\n"
    assert not pwn.exists()

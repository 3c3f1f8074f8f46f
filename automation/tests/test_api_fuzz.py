"""Schemathesis against the live API: every operation of /api/schema/, with a user's token, all checks, a bounded
number of examples. No request may end in a 5xx, and every answer must be one the schema documents.

The database holds a workflow of that user and a finished (failed) run of it, so the detail, retry and rerun
endpoints are also fed real ids. Starting runs only queues them (no worker runs here); they answer 202.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone

from runs.models import TaskRun, WorkflowRun
from runs.states import RunStatus, TaskStatus
from workflows.services import workflow_save

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ST = Path(sys.executable).with_name("st")
MAX_EXAMPLES = 12
SEED = 20240601
DEFINITION = {
    "name": "fuzzed",
    "tasks": {
        "fetch": {"action": "transform.jinja", "inputs": {"value": "{{ trigger.body }}"}},
        "report": {"action": "transform.jinja", "inputs": {"value": "done"}, "depends_on": ["fetch"]},
    },
}


def seed_history(user) -> tuple[int, int]:
    """A workflow of `user` and a run of it that has finished: one task succeeded, the next failed."""
    workflow = workflow_save(source=DEFINITION, owner=user)
    now = timezone.now()
    run = WorkflowRun.objects.create(workflow=workflow, workflow_version=workflow.current_version,
                                     status=RunStatus.FAILED, trigger={"body": {"n": 1}}, started_at=now,
                                     finished_at=now)
    TaskRun.objects.create(run=run, task_id="fetch", status=TaskStatus.SUCCEEDED, attempt=1, output={"value": "x"},
                           logs="fetched\n", started_at=now, finished_at=now)
    TaskRun.objects.create(run=run, task_id="report", status=TaskStatus.FAILED, attempt=1, error="boom",
                           started_at=now, finished_at=now)
    return workflow.id, run.id


def schemathesis_config(path: Path, *, workflow_id: int, run_id: int) -> Path:
    """The token as the `tokenAuth` scheme (so the auth checks know which credential to leave out), and half of
    the generated ids the seeded ones, so detail endpoints reach real objects too.

    Some validity is beyond JSON Schema, so a schema-valid request may still be refused with 400 there: a
    definition (known actions, no cycles, unique names), credentials that are wrong, a rerun's `from_task` that
    is not a task of the run's version."""
    path.write_text(f"""
[auth.openapi.tokenAuth]
api_key = "Token ${{FLOWFORGE_FUZZ_TOKEN}}"

[[operations]]
include-operation-id = ["workflows_create", "workflows_update", "workflows_partial_update",
                        "workflows_validate_create", "auth_token_create", "runs_rerun_create"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[dictionaries.workflow_ids]
values = ["{workflow_id}"]

[dictionaries.run_ids]
values = ["{run_id}"]

[dictionaries.task_ids]
values = ["fetch", "report"]

[[operations]]
include-path-regex = "^/api/workflows/\\\\{{id\\\\}}/"
parameters = {{ "path.id" = {{ dictionary = "workflow_ids", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/api/runs/\\\\{{id\\\\}}/"
[operations.parameters]
"path.id" = {{ dictionary = "run_ids", probability = 0.5 }}
"path.task_id" = {{ dictionary = "task_ids", probability = 0.5 }}
""")
    return path


def server_errors(records: list[logging.LogRecord]) -> list[str]:
    """`METHOD path: last line of the traceback` for each request the server failed with an exception."""
    found = []
    for record in records:
        if record.name != "django.request" or record.levelno < logging.ERROR or not record.exc_info:
            continue
        request = getattr(record, "request", None)
        where = f"{request.method} {request.get_full_path()}" if request is not None else record.getMessage()
        found.append(f"{where}: {traceback.format_exception(*record.exc_info)[-1].strip()}")
    return sorted(set(found))


def failure_summary(report_path: Path) -> str:
    """One line per kind of failure Schemathesis found, with the operations it found it on."""
    if not report_path.exists():
        return "(no report)"
    report = json.loads(report_path.read_text())
    lines = [f"{group['code']} {group['title']} x{group['count']}: {', '.join(group['operations'])}"
             for group in report["failures"]]
    lines += [f"error: {group['title']} x{group['count']}" for group in report["errors"]]
    return "\n".join(lines)


def test_fuzzing_the_live_api_finds_no_server_error_and_no_answer_outside_the_schema(
        live_server, broker, tmp_path, caplog):
    user = get_user_model().objects.create_user("fuzzer", password="fuzz-pw-1234")
    workflow_id, run_id = seed_history(user)
    token = requests.post(f"{live_server.url}/api/auth/token/", json={"username": "fuzzer", "password": "fuzz-pw-1234"},
                          timeout=10).json()["token"]
    config = schemathesis_config(tmp_path / "schemathesis.toml", workflow_id=workflow_id, run_id=run_id)
    report = tmp_path / "report.json"

    with caplog.at_level(logging.ERROR, logger="django.request"):
        finished = subprocess.run(
            [str(ST), "--no-color", "--config-file", str(config), "run", f"{live_server.url}/api/schema/",
             "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
             "--request-timeout", "10",
             "--report", "json", "--report-json-path", str(report), "--output-truncate", "true"],
            cwd=tmp_path, capture_output=True, text=True, timeout=240,
            env={**os.environ, "FLOWFORGE_FUZZ_TOKEN": token},
        )

    print(finished.stdout, finished.stderr)  # every failure with its curl reproduction, shown when this fails
    errors = server_errors(caplog.records)
    assert errors == [], "server errors:\n" + "\n".join(errors)
    assert finished.returncode == 0, failure_summary(report)

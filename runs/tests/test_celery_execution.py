"""Runs executed by real Celery worker processes on PostgreSQL + Redis, started through the HTTP API."""
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model

from automation.testing import wait_for, wait_for_run
from runs.models import TaskRun, WorkflowRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"


@pytest.fixture
def api(client):
    user = get_user_model().objects.create_user("operator", password="pw", is_staff=True)
    client.force_login(user)
    return client


def create_and_run(api, definition, body=None) -> int:
    created = api.post("/api/workflows/", {"definition": definition}, content_type="application/json")
    assert created.status_code == 201, created.json()
    started = api.post(f"/api/workflows/{created.json()['id']}/run/", body or {}, content_type="application/json")
    assert started.status_code == 202
    return started.json()["run_id"]


def tasks_of(run_id: int) -> dict[str, TaskRun]:
    return {t.task_id: t for t in TaskRun.objects.filter(run_id=run_id)}


def test_shared_examples_give_the_same_results_as_the_cli(api, start_worker):
    start_worker("w1")
    start_worker("w2")
    runs = {name: create_and_run(api, (EXAMPLES / f"{name}.yaml").read_text())
            for name in ("first-workflow", "data-pipeline", "fail-and-skip")}

    first = wait_for_run(runs["first-workflow"])
    assert first.status == "succeeded"
    tasks = tasks_of(first.id)
    assert tasks["say_hello"].output["stdout"] == "Hello, World!\n"
    assert tasks["say_hello"].logs == "Hello, World!"
    assert all(t.status == "succeeded" and t.attempt == 1 for t in tasks.values())

    pipeline = wait_for_run(runs["data-pipeline"])
    assert pipeline.status == "succeeded"
    tasks = tasks_of(pipeline.id)
    assert tasks["task_E"].output["stdout"] == "Finalizing\n"
    assert tasks["task_E"].started_at >= max(tasks["task_C"].finished_at, tasks["task_D"].finished_at)

    failed = wait_for_run(runs["fail-and-skip"])
    assert failed.status == "failed"
    states = {task_id: t.status for task_id, t in tasks_of(failed.id).items()}
    assert states == {"task_A": "succeeded", "task_B": "failed", "task_C": "skipped", "task_D": "succeeded",
                      "task_E": "succeeded"}
    assert tasks_of(failed.id)["task_B"].error == "exit code 3: boom"
    assert tasks_of(failed.id)["task_B"].output["stderr"] == "boom\n"

    detail = api.get(f"/api/runs/{failed.id}/").json()
    assert detail["status"] == "failed"
    assert {t["task_id"]: t["status"] for t in detail["tasks"]} == states


def test_independent_branches_run_on_two_workers_at_once(api, start_worker):
    start_worker("w1")
    start_worker("w2")
    definition = yaml.safe_load((EXAMPLES / "data-pipeline.yaml").read_text())
    for task_id in ("task_B", "task_D"):
        definition["tasks"][task_id]["run"] = "sleep 1; " + definition["tasks"][task_id]["run"]
    run = wait_for_run(create_and_run(api, definition))
    assert run.status == "succeeded"
    tasks = tasks_of(run.id)
    b, d = tasks["task_B"], tasks["task_D"]
    assert b.started_at < d.finished_at and d.started_at < b.finished_at, "task_B and task_D did not overlap"
    assert b.worker != d.worker


def test_a_killed_worker_does_not_strand_the_run(api, start_worker, tmp_path):
    marker = tmp_path / "started-once"
    effects = tmp_path / "effects"
    command = (f"echo attempt >> {effects}; "
               f"if [ -e {marker} ]; then echo finished; else touch {marker}; sleep 120; fi")
    doomed = start_worker("doomed")
    run_id = create_and_run(api, {"name": "long", "tasks": {"slow": {"run": command}}})
    wait_for(lambda: marker.exists(), message="the first attempt to start")
    doomed.kill()

    start_worker("rescuer")
    run = wait_for_run(run_id, timeout=60)
    task = tasks_of(run_id)["slow"]
    assert run.status == "succeeded"
    assert task.attempt == 2
    assert [a["status"] for a in task.attempts] == ["lost", "succeeded"]
    assert "lost" in task.logs
    assert task.output["stdout"] == "finished\n"
    assert effects.read_text().count("attempt") == 2


def test_a_flaky_task_succeeds_on_its_third_attempt_with_growing_backoff(api, start_worker, tmp_path):
    start_worker("w1")
    counter = tmp_path / "count"
    command = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    run_id = create_and_run(api, {"name": "flaky", "tasks": {
        "flaky": {"run": command, "retries": 2, "retry_delay": 0.5}}})
    run = wait_for_run(run_id)
    task = tasks_of(run_id)["flaky"]
    assert run.status == "succeeded"
    assert task.attempt == 3
    assert [a["status"] for a in task.attempts] == ["failed", "failed", "succeeded"]
    starts = [a["started_at"] for a in task.attempts]
    ends = [a["finished_at"] for a in task.attempts]
    from datetime import datetime
    gap = [(datetime.fromisoformat(starts[i + 1]) - datetime.fromisoformat(ends[i])).total_seconds()
           for i in range(2)]
    assert gap[0] >= 0.5 and gap[1] >= 1.0 and gap[1] > gap[0]


def test_retry_reruns_only_failed_and_skipped_tasks(api, start_worker, tmp_path):
    start_worker("w1")
    gate = tmp_path / "gate"
    effects = tmp_path / "effects"
    run_id = create_and_run(api, {"name": "gated", "tasks": {
        "prepare": {"run": f"echo prepare >> {effects}; echo prepared"},
        "check": {"run": f"test -e {gate}", "depends_on": ["prepare"]},
        "publish": {"run": "echo published", "depends_on": ["check"]},
    }})
    assert wait_for_run(run_id).status == "failed"
    assert tasks_of(run_id)["publish"].status == "skipped"

    gate.touch()
    retried = api.post(f"/api/runs/{run_id}/retry/")
    assert retried.status_code == 202
    new_run = wait_for_run(retried.json()["run_id"])
    assert new_run.status == "succeeded"
    assert new_run.parent_id == run_id
    tasks = tasks_of(new_run.id)
    assert tasks["prepare"].output["stdout"] == "prepared\n"
    assert tasks["publish"].output["stdout"] == "published\n"
    assert effects.read_text().count("prepare") == 1, "the succeeded task was executed again"


def test_rerun_from_a_task_executes_it_and_everything_downstream(api, start_worker, tmp_path):
    start_worker("w1")
    effects = tmp_path / "effects"
    run_id = create_and_run(api, {"name": "chain", "tasks": {
        "a": {"run": f"echo a >> {effects}"},
        "b": {"run": f"echo b >> {effects}", "depends_on": ["a"]},
        "c": {"run": f"echo c >> {effects}; echo {{{{ trigger.body.tag }}}}", "depends_on": ["b"]},
    }}, body={"tag": "one"})
    assert wait_for_run(run_id).status == "succeeded"
    response = api.post(f"/api/runs/{run_id}/rerun/", {"from_task": "b", "trigger": {"body": {"tag": "two"}}},
                        content_type="application/json")
    assert response.status_code == 202
    rerun = wait_for_run(response.json()["run_id"])
    assert rerun.status == "succeeded"
    assert effects.read_text().split() == ["a", "b", "c", "b", "c"]
    assert tasks_of(rerun.id)["c"].output["stdout"].endswith("two\n")


def test_cancel_stops_queued_tasks(api, start_worker, tmp_path):
    start_worker("w1")
    run_id = create_and_run(api, {"name": "cancellable", "tasks": {
        "slow": {"run": "sleep 2; echo done"}, "after": {"run": "echo never", "depends_on": ["slow"]}}})
    wait_for(lambda: tasks_of(run_id).get("slow") and tasks_of(run_id)["slow"].status == "running",
             message="the slow task to run")
    assert api.post(f"/api/runs/{run_id}/cancel/").status_code == 202
    assert WorkflowRun.objects.get(id=run_id).status == "cancelled"
    wait_for(lambda: tasks_of(run_id)["slow"].status == "cancelled", message="the running task to return")
    assert tasks_of(run_id)["after"].status == "cancelled"


def test_concurrency_limit_keeps_extra_runs_queued(api, start_worker):
    start_worker("w1", concurrency=2)
    created = api.post("/api/workflows/", {"definition": {"name": "one at a time", "concurrency": 1,
                                                           "tasks": {"t": {"run": "sleep 0.5"}}}},
                       content_type="application/json").json()
    run_ids = [api.post(f"/api/workflows/{created['id']}/run/").json()["run_id"] for _ in range(3)]
    runs = [wait_for_run(run_id) for run_id in run_ids]
    assert all(r.status == "succeeded" for r in runs)
    for earlier, later in zip(runs, runs[1:]):
        assert later.started_at >= earlier.finished_at

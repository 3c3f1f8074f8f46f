"""for_each and flow.wait in the in-process runner and `runworkflow` (SPEC §9), on SQLite with no broker."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path


from connectors.base import ActionConfig
from runs.local import LocalRunner
from runs.states import RunStatus, TaskStatus
from workflows.definition import compile_definition

from . import fake_actions

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self):
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def plan(self, levels):
        pass

    def task_started(self, task_id, attempt):
        with self.lock:
            self.lines.append(f"start {task_id}")

    def task_finished(self, task_id, result, will_retry):
        with self.lock:
            self.lines.append(f"{result.status} {task_id}")

    def task_skipped(self, task_id, reason):
        with self.lock:
            self.lines.append(f"skipped {task_id}: {reason}")


def run(tasks: dict, **kwargs):
    registry = fake_actions.registry()
    spec = compile_definition({"name": "each", "tasks": tasks}, registry)
    recorder = Recorder()
    result = LocalRunner(spec, registry=registry, config=ActionConfig(), reporter=recorder, **kwargs).run()
    return result, recorder


def test_for_each_runs_at_most_max_parallel_items_at_once_and_keeps_item_order():
    result, recorder = run({"each": {"action": "test.outcome", "for_each": "{{ [5, 4, 3, 2, 1, 0, 6] }}",
                                     "max_parallel": 3,
                                     "inputs": {"sleep": "{{ item / 40 }}", "value": "{{ index }}:{{ item }}",
                                                "key": "k{{ index }}"}}})
    assert result.status == RunStatus.SUCCEEDED
    record = result.tasks["each"]
    assert [o["value"] for o in record.output] == ["0:5", "1:4", "2:3", "3:2", "4:1", "5:0", "6:6"]
    moments = sorted([(i.started_at, 1) for i in record.items] + [(i.finished_at, -1) for i in record.items])
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    assert peak == 3
    assert "succeeded each[6]" in recorder.lines


def test_a_failing_item_fails_the_task_naming_its_index_and_skips_what_depends_on_it():
    result, _ = run({
        "each": {"action": "test.outcome", "for_each": "{{ [1, 2, 3] }}",
                 "inputs": {"fail": "{{ index == 2 }}", "key": "f{{ index }}"}},
        "after": {"action": "test.outcome", "depends_on": ["each"]},
    })
    assert result.status == RunStatus.FAILED
    assert result.tasks["each"].status == TaskStatus.FAILED
    assert result.tasks["each"].error.startswith("item 2 failed: asked to fail")
    assert result.tasks["after"].status == TaskStatus.SKIPPED


def test_an_empty_list_skips_the_task_and_a_non_list_fails_naming_the_expression():
    result, recorder = run({"empty": {"action": "test.outcome", "for_each": "{{ [] }}"},
                            "text": {"action": "test.outcome", "for_each": "{{ 'abc' }}"}})
    assert result.tasks["empty"].status == TaskStatus.SKIPPED
    assert "skipped empty: for_each: the list is empty" in recorder.lines
    assert result.tasks["text"].status == TaskStatus.FAILED
    assert "`{{ 'abc' }}` gave str 'abc', not a list" in result.tasks["text"].error


def test_more_items_than_the_limit_fails_the_task_before_any_item_runs():
    result, recorder = run({"many": {"action": "test.outcome", "for_each": "{{ range(6) | list }}"}}, max_items=5)
    assert result.tasks["many"].status == TaskStatus.FAILED
    assert "6 items, more than the limit of 5" in result.tasks["many"].error
    assert not any(line.startswith("start many[") for line in recorder.lines)


def test_a_later_task_reads_the_list_of_item_outputs():
    result, _ = run({
        "each": {"action": "transform.jinja", "for_each": "{{ ['a', 'b'] }}", "inputs": {"value": "{{ item }}!"}},
        "join": {"action": "transform.jinja", "depends_on": ["each"],
                 "inputs": {"value": "{{ steps.each.output | map(attribute='value') | join(',') }}"}},
    })
    assert result.tasks["join"].output == {"value": "a!,b!"}


def test_every_item_has_its_own_idempotency_key():
    result, _ = run({"each": {"action": "transform.jinja", "for_each": "{{ [0, 0] }}",
                              "inputs": {"value": "{{ task.idempotency_key }}"}},
                     "one": {"action": "transform.jinja", "inputs": {"value": "{{ task.idempotency_key }}"}}})
    keys = [o["value"] for o in result.tasks["each"].output] + [result.tasks["one"].output["value"]]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)


def test_flow_wait_sleeps_in_the_cli_runner_then_succeeds_with_its_time():
    started = time.monotonic()
    result, _ = run({"nap": {"action": "flow.wait", "inputs": {"seconds": 0.5}}})
    assert 0.45 <= time.monotonic() - started < 2
    assert result.tasks["nap"].status == TaskStatus.SUCCEEDED
    assert datetime.fromisoformat(result.tasks["nap"].output["waited_until"])


def cli(tmp_path, definition: dict, *args) -> subprocess.CompletedProcess:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(definition))
    env = {"DJANGO_SETTINGS_MODULE": "automation.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "AUTOMATION_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "manage.py", "runworkflow", str(path), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_runworkflow_runs_items_in_parallel_prints_each_and_waits(tmp_path):
    definition = {"name": "cli each", "tasks": {
        "notify": {"run": "sleep 0.4; echo item {{ item }}", "for_each": "{{ trigger.body.people }}",
                   "max_parallel": 4},
        "pause": {"action": "flow.wait", "inputs": {"seconds": 0.3}, "depends_on": ["notify"]},
    }}
    started = time.monotonic()
    done = cli(tmp_path, definition, "--input", json.dumps({"people": ["ann", "bob", "cy", "di"]}))
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    for index, name in enumerate(["ann", "bob", "cy", "di"]):
        assert f"[SUCCESS] Task notify[{index}]" in done.stdout
        assert f"item {name}" in done.stdout
    assert "[SUCCESS] Task pause" in done.stdout and "waited_until" in done.stdout
    assert elapsed < 0.4 * 4 + 0.3 + 4  # interpreter start-up aside, the four sleeps overlap


def test_runworkflow_refuses_a_task_that_needs_the_server(tmp_path):
    done = cli(tmp_path, {"name": "ask", "tasks": {"ok": {"action": "flow.approval", "inputs": {"message": "go?"}}}})
    assert done.returncode == 2
    assert "[REFUSED] Task ok: flow.approval needs the server" in done.stderr

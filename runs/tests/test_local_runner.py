"""The in-process runner: parallelism, retries, data flow, and a property test over random DAGs."""
import threading
import time

from hypothesis import given, settings, strategies as st

from connectors.base import ActionConfig
from runs.local import LocalRunner
from runs.states import FINAL_TASK, RunStatus, TaskStatus, rule_decision
from workflows.definition import compile_definition

from . import fake_actions


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.clock = 0

    def _add(self, kind, task_id):
        with self.lock:
            self.clock += 1
            self.events.append((kind, task_id, self.clock))

    def plan(self, levels):
        self.levels = levels

    def task_started(self, task_id, attempt):
        self._add("start", task_id)

    def task_finished(self, task_id, result, will_retry):
        self._add("retry" if will_retry else str(result.status), task_id)

    def task_skipped(self, task_id, reason):
        self._add("skipped", task_id)


def run(definition, **kwargs):
    registry = fake_actions.registry()
    spec = compile_definition(definition, registry)
    recorder = Recorder()
    runner = LocalRunner(spec, registry=registry, config=ActionConfig(), reporter=recorder, **kwargs)
    return runner.run(), recorder


def test_independent_branches_overlap_in_time():
    definition = {"name": "p", "tasks": {
        "a": {"action": "test.outcome"},
        "b": {"action": "test.outcome", "inputs": {"sleep": 0.3}, "depends_on": ["a"]},
        "d": {"action": "test.outcome", "inputs": {"sleep": 0.3}, "depends_on": ["a"]},
    }}
    started = time.monotonic()
    result, _ = run(definition)
    assert result.status == RunStatus.SUCCEEDED
    assert time.monotonic() - started < 0.55
    b, d = result.tasks["b"], result.tasks["d"]
    assert b.started_at < d.finished_at and d.started_at < b.finished_at


def test_retries_until_success_count_attempts():
    definition = {"name": "r", "tasks": {"flaky": {"action": "test.outcome", "retries": 2, "retry_delay": 0.01,
                                                     "inputs": {"fail_times": 2, "key": "flaky-local"}}}}
    result, _ = run(definition)
    assert result.status == RunStatus.SUCCEEDED
    assert result.tasks["flaky"].attempt == 3


def test_outputs_flow_into_downstream_inputs():
    definition = {"name": "d", "tasks": {
        "a": {"action": "test.outcome", "inputs": {"value": {"n": 41}}},
        "b": {"action": "transform.jinja", "depends_on": ["a"],
              "inputs": {"value": "{{ steps.a.output.value.n + 1 }}"}},
    }}
    result, _ = run(definition)
    assert result.tasks["b"].output == {"value": 42}


def test_when_false_skips_the_task_and_the_run_still_succeeds():
    definition = {"name": "w", "tasks": {"a": {"action": "test.outcome", "when": "{{ trigger.body.go }}"}}}
    result, _ = run(definition, trigger={"body": {"go": False}})
    assert result.tasks["a"].status == TaskStatus.SKIPPED
    assert result.status == RunStatus.SUCCEEDED


def test_timeout_fails_the_attempt():
    definition = {"name": "t", "tasks": {"slow": {"action": "test.outcome", "timeout": 0.1,
                                                    "inputs": {"sleep": 1}}}}
    result, _ = run(definition)
    assert result.tasks["slow"].status == TaskStatus.FAILED
    assert result.tasks["slow"].error == "timed out after 0.1s"


RULES = ["all_success", "all_done", "one_failed", "one_success"]


@st.composite
def random_dags(draw):
    size = draw(st.integers(min_value=1, max_value=9))
    tasks = {}
    for index in range(size):
        deps = draw(st.lists(st.integers(min_value=0, max_value=index - 1), unique=True, max_size=3)) if index else []
        tasks[f"t{index}"] = {
            "action": "test.outcome",
            "inputs": {"fail": draw(st.booleans()), "key": f"prop-{index}"},
            "depends_on": [f"t{d}" for d in deps],
            "trigger_rule": draw(st.sampled_from(RULES)),
        }
    return {"name": "random", "tasks": tasks}


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_random_dags_respect_dependencies_and_final_states(definition):
    result, recorder = run(definition)
    tasks = definition["tasks"]
    first = {}
    for kind, task_id, clock in recorder.events:
        first.setdefault((kind, task_id), clock)
    ends = {task_id: clock for kind, task_id, clock in recorder.events if kind != "start"}
    for task_id, task in tasks.items():
        record = result.tasks[task_id]
        assert record.status in FINAL_TASK
        upstream = [str(result.tasks[d].status) for d in task["depends_on"]]
        if ("start", task_id) in first:
            start = first[("start", task_id)]
            ended_before = [d for d in task["depends_on"] if ends[d] < start]
            if task["trigger_rule"] in ("all_success", "all_done"):
                assert ended_before == task["depends_on"], f"{task_id} started before all its upstream ended"
            elif task["depends_on"]:
                wanted = TaskStatus.SUCCEEDED if task["trigger_rule"] == "one_success" else TaskStatus.FAILED
                assert any(result.tasks[d].status == wanted for d in ended_before)
            if task["trigger_rule"] == "all_success":
                assert all(s == "succeeded" for s in upstream)
            assert rule_decision(task["trigger_rule"], upstream) == "run"
            assert record.status == (TaskStatus.FAILED if task["inputs"]["fail"] else TaskStatus.SUCCEEDED)
        else:
            assert record.status == TaskStatus.SKIPPED
            assert rule_decision(task["trigger_rule"], upstream) == "skip"
    statuses = [r.status for r in result.tasks.values()]
    expected = RunStatus.FAILED if TaskStatus.FAILED in statuses else RunStatus.SUCCEEDED
    assert result.status == expected

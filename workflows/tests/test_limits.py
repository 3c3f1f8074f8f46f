"""SPEC §11 limits on definitions: size, aliases, nesting and task count are refused early and cheaply."""
from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from rest_framework.test import APIClient

from connectors.registry import default_registry
from runs.tests.operator_fixtures import alice  # noqa: F401
from workflows.definition import InvalidDefinition, compile_definition
from workflows.limits import MAX_DEFINITION_BYTES, MAX_TASKS
from workflows.models import Workflow


def alias_bomb(levels: int = 6, width: int = 10) -> str:
    """`levels * width` aliases in a few hundred bytes that expand to width**(levels+1) leaves."""
    lines = ["name: bomb", "l0: &l0 [" + ", ".join("x" * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "\n".join([*lines, "tasks: {a: {run: 'true'}}", ""])


def problems(source) -> list[str]:
    with pytest.raises(InvalidDefinition) as caught:
        compile_definition(source, default_registry())
    return [str(p) for p in caught.value.problems]


def cheaply(call) -> tuple[float, int]:
    """(seconds, peak bytes allocated) of `call()`; time measured without tracemalloc's overhead."""
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        call()
        return seconds, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_yaml_alias_bomb_under_any_alias_count_is_refused_in_under_a_second_and_little_memory():
    bomb = alias_bomb()
    assert len(bomb) < 500 and bomb.count("*") == 60
    (message,) = problems(bomb)
    assert "too many aliases" in message and f"{MAX_DEFINITION_BYTES:,} bytes" in message
    seconds, peak = cheaply(lambda: problems(bomb))
    assert seconds < 1 and peak < 50 * 2**20


def test_yaml_aliases_that_stay_small_are_still_accepted():
    source = ("name: shared inputs\ndefaults: &h {method: GET, url: 'https://example.com'}\n"
              "tasks:\n  a: {action: http.request, inputs: *h}\n  b: {action: http.request, inputs: *h}\n")
    with pytest.raises(InvalidDefinition) as caught:  # `defaults` is an unknown key, the aliases are fine
        compile_definition(source, default_registry())
    assert [p.path for p in caught.value.problems] == ["defaults"]


def test_a_yaml_alias_inside_the_node_it_names_is_refused():
    (message,) = problems("name: loop\ntasks: &t {a: {run: 'true'}, b: *t}\n")
    assert "refers to a node that contains it" in message


@pytest.mark.parametrize("source", [
    "name: big\ntasks: {a: {run: 'true'}}\n# " + "x" * MAX_DEFINITION_BYTES,
    ("name: big\ntasks: {a: {run: 'true'}}\n# " + "x" * MAX_DEFINITION_BYTES).encode(),
    {"name": "big", "tasks": {"a": {"run": "echo " + "x" * MAX_DEFINITION_BYTES}}},
    "name: big\ntasks: {a: {run: 'true'}}\n# " + "é" * (MAX_DEFINITION_BYTES // 2),  # 2 bytes each in UTF-8
], ids=["text", "bytes", "mapping", "multibyte-text"])
def test_a_definition_over_256_kib_is_refused_before_parsing(source):
    (message,) = problems(source)
    assert message == f"the definition is larger than {MAX_DEFINITION_BYTES:,} bytes (256 KiB)"


@pytest.mark.parametrize("source", [
    '{"name": "deep", "tasks": {"a": {"run": "true"}}, "x": ' + "[" * 1000 + "]" * 1000 + "}",
    "name: deep\ntasks: {a: {run: 'true'}}\nx: " + "[" * 1000 + "]" * 1000 + "\n",
    {"name": "deep", "tasks": {"a": {"run": "true"}}, "x": json.loads("[" * 900 + "]" * 900)},
], ids=["json-text", "yaml-text", "mapping"])
def test_nesting_deeper_than_64_levels_is_refused_without_a_recursion_error(source):
    (message,) = problems(source)
    assert "nested more than 64 levels deep" in message


def test_steps_are_capped_at_1000_tasks_like_tasks_are():
    steps = [{"name": f"s{index}", "run": "t"} for index in range(MAX_TASKS + 1)]
    started = time.perf_counter()
    assert problems({"name": "long", "steps": steps}) == ["steps: at most 1,000 tasks per workflow, got 1,001 steps"]
    assert time.perf_counter() - started < 0.1
    tasks = {f"t{index}": {"run": "t"} for index in range(MAX_TASKS + 1)}
    assert problems({"name": "wide", "tasks": tasks}) == ["tasks: at most 1,000 tasks per workflow, got 1,001"]


def test_a_cycle_through_950_tasks_is_reported_not_a_recursion_error():
    tasks = {f"t{index}": {"run": "t", "depends_on": [f"t{(index + 1) % 950}"]} for index in range(950)}
    (message,) = problems({"name": "ring", "tasks": tasks})
    assert message.startswith("tasks.t0.depends_on: dependency cycle: t0 -> t949 -> t948")


def thousand_task_dag() -> dict:
    return {"name": "wide dag", "tasks": {
        f"t{index}": {"action": "http.request", "depends_on": [f"t{d}" for d in range(max(0, index - 3), index)],
                      "inputs": {"method": "GET", "url": "https://example.com/{{ run.id }}/" + str(index)}}
        for index in range(MAX_TASKS)}}


def test_a_valid_1000_task_dag_compiles_in_under_half_a_second():
    dag = thousand_task_dag()
    compile_definition(dag, default_registry())  # warm the action registry
    started = time.perf_counter()
    spec = compile_definition(dag, default_registry())
    levels = spec.levels()
    assert time.perf_counter() - started < 0.5
    assert len(spec.tasks) == MAX_TASKS and len(levels) == MAX_TASKS


@pytest.mark.django_db
def test_the_api_refuses_an_alias_bomb_with_a_400_and_stores_nothing(alice):
    client = APIClient()
    client.force_authenticate(alice)
    started = time.perf_counter()
    response = client.post("/api/workflows/", {"definition": alias_bomb()}, format="json")
    assert time.perf_counter() - started < 1
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert "too many aliases" in error["message"]
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_the_api_validates_a_1000_task_dag_and_refuses_1001_steps(alice):
    client = APIClient()
    client.force_authenticate(alice)
    valid = client.post("/api/workflows/validate/", {"definition": thousand_task_dag()}, format="json")
    assert valid.status_code == 200 and len(valid.json()["plan"]) == MAX_TASKS
    steps = [{"name": f"s{index}", "run": "t"} for index in range(MAX_TASKS + 1)]
    refused = client.post("/api/workflows/validate/", {"definition": {"name": "s", "steps": steps}}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == [{"path": "steps",
                                         "message": "at most 1,000 tasks per workflow, got 1,001 steps"}]

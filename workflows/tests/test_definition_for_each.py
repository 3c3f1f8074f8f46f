"""for_each, max_parallel and on_failure in definitions (SPEC §9): accepted shapes and path-named refusals."""
import pytest

from connectors.registry import default_registry
from workflows.definition import InvalidDefinition, compile_definition


def compile_tasks(tasks: dict, **workflow):
    return compile_definition({"name": "each", "tasks": tasks, **workflow}, default_registry())


def problems(tasks: dict, **workflow) -> list[str]:
    with pytest.raises(InvalidDefinition) as caught:
        compile_tasks(tasks, **workflow)
    return [str(p) for p in caught.value.problems]


def test_a_for_each_task_keeps_its_expression_and_max_parallel_defaults_to_ten():
    spec = compile_tasks({"each": {"action": "transform.jinja", "for_each": "{{ trigger.body.people }}",
                                   "inputs": {"value": "{{ index }}: {{ item.name }}"}}})
    assert spec.tasks["each"].for_each == "{{ trigger.body.people }}"
    assert spec.tasks["each"].max_parallel == 10


def test_for_each_must_be_a_template_string():
    assert problems({"each": {"run": "echo", "for_each": [1, 2]}}) == [
        'tasks.each.for_each: must be a template string yielding a list, e.g. "{{ steps.fetch.output.json.items }}"']
    assert problems({"each": {"run": "echo", "for_each": "people"}})[0].startswith("tasks.each.for_each: must be")


def test_max_parallel_must_be_a_positive_integer_and_needs_for_each():
    assert problems({"each": {"run": "echo", "for_each": "{{ [1] }}", "max_parallel": 0}}) == [
        "tasks.each.max_parallel: must be an integer >= 1, got 0"]
    assert problems({"each": {"run": "echo", "max_parallel": 2}}) == [
        "tasks.each.max_parallel: only applies to a task with `for_each`"]


def test_item_and_index_outside_a_for_each_task_are_refused_where_they_are_used():
    assert problems({"a": {"action": "transform.jinja", "inputs": {"value": "{{ item.id }}"}},
                     "b": {"run": "echo {{ index }}", "when": "{{ item }}"}}) == [
        "tasks.a.inputs.value: `item` is only available in a task with `for_each`",
        "tasks.b.run: `index` is only available in a task with `for_each`",
        "tasks.b.when: `item` is only available in a task with `for_each`",
    ]


def test_the_for_each_expression_itself_cannot_read_item():
    assert problems({"each": {"run": "echo", "for_each": "{{ item.children }}"}}) == [
        "tasks.each.for_each: `item` is not defined yet: the list is computed before any item"]


def test_a_steps_workflow_takes_for_each_too():
    spec = compile_definition({"name": "s", "steps": [{"name": "Loop", "run": "echo {{ item }}",
                                                       "for_each": "{{ [1, 2] }}", "max_parallel": 2}]},
                              default_registry())
    assert spec.tasks["loop"].max_parallel == 2


def test_on_failure_names_a_workflow():
    assert compile_tasks({"a": {"run": "echo"}}, on_failure="alert").on_failure == "alert"
    assert problems({"a": {"run": "echo"}}, on_failure=["alert"]) == [
        "on_failure: must be the name of a workflow, got ['alert']"]

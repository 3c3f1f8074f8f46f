"""Parsing and validation of definitions: every shape of SPEC §1 and every rejection names its path."""
from pathlib import Path

import pytest

from connectors.registry import default_registry
from workflows.definition import InvalidDefinition, compile_definition

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples"


def problems(source) -> list[str]:
    with pytest.raises(InvalidDefinition) as caught:
        compile_definition(source, default_registry())
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("name", ["first-workflow", "data-pipeline", "fail-and-skip", "webhook-to-file",
                                  "workflow-with-actions", "workflow-with-expressions"])
def test_every_valid_shared_example_compiles(name):
    spec = compile_definition((EXAMPLES / f"{name}.yaml").read_text(), default_registry())
    assert spec.tasks


@pytest.mark.parametrize("name, expected", [
    ("invalid-cycle", "tasks.a.depends_on: dependency cycle: a -> b -> c -> a"),
    ("invalid-unknown-action", "tasks.send.action: unknown action 'slack.sendd'"),
    ("invalid-unknown-dependency", "tasks.task_B.depends_on: unknown task 'task_Z'"),
])
def test_invalid_shared_examples_are_refused_with_the_path(name, expected):
    assert problems((EXAMPLES / f"{name}.yaml").read_text()) == [expected]


def test_steps_become_a_chain_with_slugified_ids():
    spec = compile_definition({"name": "x", "steps": [{"name": "Say Hello", "run": "echo hi"},
                                                      {"name": "Show Date!", "run": "date"}]}, default_registry())
    assert list(spec.tasks) == ["say_hello", "show_date"]
    assert spec.tasks["show_date"].depends_on == ("say_hello",)
    assert spec.tasks["say_hello"].action == "shell.run"
    assert spec.tasks["say_hello"].inputs == {"command": "echo hi"}


def test_json_and_yaml_give_the_same_spec():
    yaml_text = "name: a\ntasks:\n  t: {run: 'echo 1'}\n"
    json_text = '{"name": "a", "tasks": {"t": {"run": "echo 1"}}}'
    assert compile_definition(yaml_text, default_registry()) == compile_definition(json_text, default_registry())


def test_yaml_syntax_error_names_line_and_column():
    (message,) = problems("name: a\ntasks:\n  t: {run: 'echo 1'\n")
    assert "line" in message and "column" in message


def test_all_problems_are_collected_at_once():
    found = problems({"name": "", "colour": "red", "tasks": {
        "a": {"action": "http.request", "inputs": {"method": "GETT", "url": "http://x"}, "retries": -1},
        "b": {"run": "echo {{ oops", "depends_on": ["zz"], "trigger_rule": "sometimes"},
    }})
    assert "name: required: a non-empty string" in found
    assert "colour: unknown key 'colour'" in found
    assert "tasks.a.inputs.method: 'GETT' is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS" in found
    assert any(p.startswith("tasks.a.retries: must be an integer >= 0") for p in found)
    assert any(p.startswith("tasks.b.run: template syntax error") for p in found)
    assert "tasks.b.depends_on: unknown task 'zz'" in found
    assert any(p.startswith("tasks.b.trigger_rule: 'sometimes' is not one of") for p in found)


def test_workflow_without_tasks_is_refused():
    assert problems({"name": "empty"}) == [
        "tasks: required: a workflow needs at least one task (`tasks:` mapping or `steps:` list)"]


def test_templated_inputs_are_not_type_checked_at_save_time():
    spec = compile_definition({"name": "t", "tasks": {"a": {"action": "http.request", "inputs": {
        "url": "{{ trigger.body.url }}", "timeout": "{{ trigger.body.timeout }}"}}}}, default_registry())
    assert spec.tasks["a"].inputs["timeout"] == "{{ trigger.body.timeout }}"


def test_missing_required_input_is_refused():
    assert problems({"name": "t", "tasks": {"a": {"action": "http.request", "inputs": {}}}}) == [
        "tasks.a.inputs: 'url' is a required property"]


def test_malformed_cron_and_timezone_are_refused():
    found = problems({"name": "t", "triggers": [{"type": "cron", "cron": "61 * * * *", "timezone": "Mars/Base"}],
                      "tasks": {"a": {"run": "true"}}})
    assert [p.split(":")[0] for p in found] == ["triggers[0].cron", "triggers[0].timezone"]


def test_unsafe_yaml_tags_are_refused():
    (message,) = problems("name: !!python/object/apply:os.system ['touch /tmp/pwn']\ntasks: {}\n")
    assert message.startswith("invalid YAML")


def test_yaml_alias_bomb_is_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join(f"*{chr(97 + i)}" for _ in range(9)) + "]\n"
        for i in range(20))
    (message,) = problems(bomb)
    assert "too many aliases" in message

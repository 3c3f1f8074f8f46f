"""`shell.run` and templates: each `{{ }}` in a command is escaped for where it lands, and runs through the real
/bin/sh stay inert: nothing a value holds (`;`, `$(...)`, backticks, quotes, newlines) runs."""
from __future__ import annotations

import itertools

import pytest

from connectors.base import ActionConfig
from connectors.registry import ActionRegistry
from runs.executor import execute_attempt, template_context
from runs.states import TaskStatus
from workflows.definition import TaskSpec

REGISTRY = ActionRegistry(use_entry_points=False)
HOSTILE = [
    "x; touch {pwn}",
    "$(touch {pwn})",
    "`touch {pwn}`",
    "a\ntouch {pwn}",
    "'; touch {pwn}; '",
    '"; touch {pwn}; "',
    '\\"; touch {pwn}; #',
    "'\"$(touch {pwn})\"'",
    "\\$(touch {pwn})",
    "\\",
    "$((6*7)) ${{HOME}} * ~ !",
    "",
]
PLACES = {
    "unquoted": ("printf '%s' {{{{ trigger.body.value }}}}", "{value}"),
    "double quotes": ('printf \'%s\' "{{{{ trigger.body.value }}}}"', "{value}"),
    "text in double quotes": ('printf \'%s\' "pre {{{{ trigger.body.value }}}} post"', "pre {value} post"),
    "single quotes": ("printf '%s' '{{{{ trigger.body.value }}}}'", "{value}"),
    "text in single quotes": ("printf '%s' 'pre {{{{ trigger.body.value }}}} post'", "pre {value} post"),
    "inside a word": ("printf '%s' x{{{{ trigger.body.value }}}}y", "x{value}y"),
    "command substitution in double quotes": (
        "printf '%s' \"$(printf '%s' {{{{ trigger.body.value }}}})\"", "{value}"),
}


def run_shell(command: str, body: dict) -> object:
    task = TaskSpec(id="sh", action="shell.run", inputs={"command": command}, timeout=20)
    context = template_context(trigger={"body": body}, task_results={}, run={"id": 1, "workflow": "w"})
    return execute_attempt(task, template_context=context, registry=REGISTRY, config=ActionConfig(), run_id=1)


def test_a_value_inside_double_quotes_prints_without_added_quotes():
    result = run_shell('echo "done: {{ trigger.body.name }}"', {"name": "value"})
    assert result.status == TaskStatus.SUCCEEDED, result.error
    assert result.output["stdout"] == "done: value\n"
    assert result.inputs["command"] == 'echo "done: value"'


@pytest.mark.parametrize("place, payload", list(itertools.product(PLACES, HOSTILE)))
def test_a_hostile_value_is_printed_as_data_and_runs_nothing_wherever_it_stands(tmp_path, place, payload):
    pwn = tmp_path / "pwn"
    value = payload.format(pwn=pwn)
    command, expected = PLACES[place]
    result = run_shell(command.format(), {"value": value})
    assert result.status == TaskStatus.SUCCEEDED, result.error
    expected_stdout = expected.format(value=value)
    if place.startswith("command substitution"):
        expected_stdout = expected_stdout.rstrip("\n")  # what $(...) does to any output
    assert result.output["stdout"] == expected_stdout
    assert not pwn.exists()


@pytest.mark.parametrize("command, where", [
    ("echo `echo {{ trigger.body.value }}`", "inside backticks"),
    ("echo ${{ trigger.body.value }}", "right after `$`"),
    ("echo \"${{ trigger.body.value }}\"", "right after `$`"),
    ("echo \\{{ trigger.body.value }}", "right after a backslash"),
    ("echo \"\\{{ trigger.body.value }}\"", "right after a backslash"),
    ("echo ${X:-{{ trigger.body.value }}}", "inside `${...}`"),
    ("echo $(( {{ trigger.body.value }} ))", "inside `$((...))`"),
    ("echo hi # {{ trigger.body.value }}", "inside a shell comment"),
    ("cat <<EOF\n{{ trigger.body.value }}\nEOF", "after a here-document"),
    ("{% filter lower %}echo {{ trigger.body.value }}{% endfilter %}", "cannot write into a shell command"),
])
def test_a_value_where_no_escaping_is_safe_fails_the_task_naming_why_and_runs_nothing(tmp_path, command, where):
    pwn = tmp_path / "pwn"
    result = run_shell(command, {"value": f"$(touch {pwn})\ntouch {pwn}"})
    assert result.status == TaskStatus.FAILED
    assert result.error.startswith("could not run: template error: inputs.command: ") and where in result.error, \
        result.error
    assert not pwn.exists()


def test_a_value_captured_in_a_set_block_is_escaped_as_one_value(tmp_path):
    pwn = tmp_path / "pwn"
    command = ('{% set line %}say "{{ trigger.body.value }}"{% endset %}'
               "printf '%s' {{ line }} \"{{ line }}\"")
    result = run_shell(command, {"value": f"; touch {pwn}"})
    assert result.status == TaskStatus.SUCCEEDED, result.error
    assert result.output["stdout"] == f'say "; touch {pwn}"' * 2
    assert not pwn.exists()


def test_loops_and_whitespace_control_build_commands_as_in_jinja(tmp_path):
    command = ('{%- for name in trigger.body.names -%}\n'
               '  printf \'%s|\' "{{ name }}" \'{{ name }}\' {{ name }};\n'
               '{%- endfor %}')
    result = run_shell(command, {"names": ["a b", "it's", "$HOME"]})
    assert result.status == TaskStatus.SUCCEEDED, result.error
    assert result.output["stdout"] == "a b|a b|a b|it's|it's|it's|$HOME|$HOME|$HOME|"


def test_a_value_passed_through_env_is_data_even_where_a_template_would_be_refused(tmp_path):
    pwn = tmp_path / "pwn"
    value = f"$(touch {pwn})\n`touch {pwn}`; touch {pwn}"
    command = "cat <<EOF\n$NAME\nEOF\nprintf '%s' \"${NAME:-unset}\""
    task = TaskSpec(id="sh", action="shell.run", timeout=20,
                    inputs={"command": command, "env": {"NAME": "{{ trigger.body.value }}"}})
    context = template_context(trigger={"body": {"value": value}}, task_results={}, run={"id": 1, "workflow": "w"})
    result = execute_attempt(task, template_context=context, registry=REGISTRY, config=ActionConfig(), run_id=1)
    assert result.status == TaskStatus.SUCCEEDED, result.error
    assert result.output["stdout"] == f"{value}\n{value}"
    assert not pwn.exists()
